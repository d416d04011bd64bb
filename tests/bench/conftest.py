"""Fixtures of the bench harness's tests: its modules import one another as scripts (bench/ on sys.path)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def cost(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """bench/cost.py, imported as make bench imports it."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "bench"))  # the harness's own imports
    import cost

    yield cost
    sys.modules.pop("cost", None)
