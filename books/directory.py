"""Book codes, ids and desks as the order path needs them, without a query per order.

A book's code and desk never change once it exists (its desk's figures are sums of its rows), so a process
keeps the table in memory and reads it again only when asked for a book it does not know (one created since).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from books.models import Book


@dataclass(frozen=True, slots=True)
class BookRef:
    id: int
    code: str
    desk: str

    @property
    def scope(self) -> str:
        return f"book:{self.code}"

    @property
    def desk_scope(self) -> str:
        return f"desk:{self.desk}"


_lock = threading.Lock()
_by_id: dict[int, BookRef] = {}
_by_code: dict[str, BookRef] = {}


def _load() -> None:
    refs = [BookRef(pk, code, desk) for pk, code, desk in Book.objects.values_list("pk", "code", "desk__code")]
    with _lock:
        _by_id.clear()
        _by_code.clear()
        _by_id.update({ref.id: ref for ref in refs})
        _by_code.update({ref.code: ref for ref in refs})


def by_id(book_id: int) -> BookRef:
    ref = _by_id.get(book_id)
    if ref is None:
        _load()
        ref = _by_id[book_id]
    return ref


def by_code(code: str) -> BookRef | None:
    ref = _by_code.get(code)
    if ref is None:
        _load()
        ref = _by_code.get(code)
    return ref


def forget() -> None:
    """Drop what this process knows (tests that recreate the books between cases)."""
    with _lock:
        _by_id.clear()
        _by_code.clear()
