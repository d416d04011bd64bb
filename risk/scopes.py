"""Scopes: what a limit, a trading state or a figure applies to (API.md, "Scopes").

Written `firm`, `desk:<code>`, `book:<code>`, `trader:<username>` or `symbol:<SYMBOL>` (`instrument:` is a
synonym of `symbol:`). Every order falls under five: the firm, its book's desk, its book, its trader and its
symbol. Pure: no Django, so the checks can use it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

KINDS = ("firm", "desk", "book", "trader", "symbol")
SYNONYMS = {"instrument": "symbol"}
# Keys: desk and book codes (books.models.CODE_PATTERN), usernames (Django's), symbols (the order serializer's).
_KEY = {
    "desk": re.compile(r"^[A-Z0-9][A-Z0-9_.-]{0,31}$"),
    "book": re.compile(r"^[A-Z0-9][A-Z0-9_.-]{0,31}$"),
    "trader": re.compile(r"^[\w.@+-]{1,150}$"),
    "symbol": re.compile(r"^[A-Z0-9][A-Z0-9._/-]{0,19}$"),
}


class ScopeError(ValueError):
    """A scope string that is not one (the API answers 400)."""


@dataclass(frozen=True, slots=True)
class Scope:
    kind: str
    key: str = ""

    @classmethod
    def parse(cls, text: str) -> Scope:
        return _parse(text)

    @classmethod
    def _parse(cls, text: str) -> Scope:
        text = (text or "").strip()
        if text == "firm":
            return FIRM
        kind, sep, key = text.partition(":")
        kind = SYNONYMS.get(kind, kind)
        if not sep or kind not in _KEY:
            raise ScopeError(
                f"Unknown scope {text!r}: use firm, desk:<code>, book:<code>, trader:<username> or symbol:<SYMBOL>"
            )
        if kind == "symbol":
            key = key.upper()
        if not _KEY[kind].match(key):
            raise ScopeError(f"Malformed scope {text!r}: {kind} {key!r} is not a valid {kind} key")
        return cls(kind, key)

    def __str__(self) -> str:
        return self.kind if self.kind == "firm" else f"{self.kind}:{self.key}"

    @property
    def limit_scope(self) -> str:
        """The RiskLimits.scope value (LimitScope) of this kind."""
        return self.kind.upper()


FIRM = Scope("firm")


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> Scope:
    """Scope.parse, remembered: the order path parses the same few scope strings in every batch."""
    return Scope._parse(text)


def desk(code: str) -> str:
    return f"desk:{code}"


def book(code: str) -> str:
    return f"book:{code}"


def trader(username: str) -> str:
    return f"trader:{username}"


def symbol(name: str) -> str:
    return f"symbol:{name}"
