"""A strict JSON parser that keeps numbers exact (Decimal, never float) and refuses NaN and Infinity."""

from __future__ import annotations

import decimal
import json
from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


class DecimalJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError("Request body is not valid UTF-8.") from exc
        try:
            return json.loads(text, parse_float=decimal.Decimal, parse_constant=_refuse_constant)
        except RecursionError as exc:
            raise ParseError("JSON nested too deeply.") from exc
        except ValueError as exc:
            raise ParseError(f"Invalid JSON: {exc}") from exc
