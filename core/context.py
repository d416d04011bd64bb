"""Request-scoped context (correlation id, client address) carried in contextvars, readable anywhere."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

_correlation_id: ContextVar[uuid.UUID | None] = ContextVar("correlation_id", default=None)
_client_address: ContextVar[str | None] = ContextVar("client_address", default=None)


def parse_uuid(value: object) -> uuid.UUID | None:
    """A UUID from a header or task argument, or None when it is not a well-formed UUID."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def correlation_id() -> uuid.UUID:
    """The current correlation id; a new one is made (and kept) when none is bound."""
    current = _correlation_id.get()
    if current is None:
        current = uuid.uuid4()
        _correlation_id.set(current)
    return current


def bind(*, correlation: uuid.UUID | None = None, address: str | None = None) -> None:
    _correlation_id.set(correlation)
    _client_address.set(address)


def client_address() -> str | None:
    return _client_address.get()
