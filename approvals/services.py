"""Four-eyes writes that need nothing of the risk domain: a change requested, closed (approved, rejected) and
expired, each with its event. Approving applies the change, so it lives above, in risk.four_eyes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from approvals import policy
from approvals.models import ChangeKind, ChangeStatus, PendingChange
from audit.models import EventType
from audit.services import event_record
from core.exceptions import Conflict, InvalidInput, NotFound

DECIDED_EVENT = {
    ChangeStatus.APPROVED: EventType.CHANGE_APPROVED,
    ChangeStatus.REJECTED: EventType.CHANGE_REJECTED,
    ChangeStatus.EXPIRED: EventType.CHANGE_EXPIRED,
}


class ChangeNotPending(Conflict):
    code = "change_not_pending"


def _username(user: User | None) -> str:
    return user.username if user is not None and getattr(user, "pk", None) else "system"


def change_payload(change: PendingChange) -> dict[str, Any]:
    return {
        "change_id": str(change.change_id),
        "kind": change.kind,
        "scope": change.scope,
        "requested_by": _username(change.requested_by),
        "reason": change.reason,
        "change": change.change,
    }


def change_request(
    *, actor: User | None, kind: ChangeKind, scope: str, change: dict[str, Any], reason: str
) -> PendingChange:
    """Keep a change that the policy holds back, with CHANGE_REQUESTED. Called by the risk services in their
    transaction, under the risk lock, instead of writing the change."""
    now = timezone.now()
    pending = PendingChange.objects.create(
        kind=kind,
        scope=scope,
        requested_by=actor if getattr(actor, "pk", None) else None,
        requested_at=now,
        reason=reason[:1000],
        change=change,
        expires_at=now + dt.timedelta(seconds=policy.expiry_seconds()),
    )
    pending.refresh_from_db()  # the JSON as stored (Decimals as strings), as every later reader sees it
    event_record(
        event_type=EventType.CHANGE_REQUESTED,
        actor=actor,
        payload={**change_payload(pending), "expires_at": pending.expires_at},
    )
    return pending


def decision_reason(reason: Any) -> str:
    """A decision's reason is required (400 without one)."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("A reason is required.", code="reason_required", fields={"reason": "A reason is required."})
    return reason.strip()[:1000]


def parse_change_id(change_id: uuid.UUID | str) -> uuid.UUID | None:
    try:
        return change_id if isinstance(change_id, uuid.UUID) else uuid.UUID(str(change_id))
    except ValueError:
        return None


def change_lock(change_id: uuid.UUID | str) -> PendingChange:
    """The change's row, locked (404 if there is none). Caller is in a transaction."""
    parsed = parse_change_id(change_id)
    change = (
        PendingChange.objects.select_for_update(of=("self",)).select_related("requested_by").filter(pk=parsed).first()
        if parsed is not None
        else None
    )
    if change is None:
        raise NotFound(f"No change {change_id}.", code="unknown_change")
    return change


def change_close(
    change: PendingChange, *, actor: User | None, status: ChangeStatus, reason: str, now: dt.datetime | None = None
) -> PendingChange:
    """Close a locked PENDING change with its event (409 if it is not pending, or has passed its expiry)."""
    now = now or timezone.now()
    if change.status != ChangeStatus.PENDING:
        raise ChangeNotPending(f"Change {change.change_id} is already {change.status}.")
    if status != ChangeStatus.EXPIRED and change.expires_at <= now:
        raise ChangeNotPending(f"Change {change.change_id} expired at {change.expires_at.isoformat()}.")
    change.status = status
    change.decided_by = actor if getattr(actor, "pk", None) else None
    change.decided_at = now
    change.decision_reason = reason[:1000]
    change.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
    event_record(
        event_type=DECIDED_EVENT[status],
        actor=actor,
        payload={**change_payload(change), "decided_by": _username(actor), "decision_reason": reason[:1000]},
    )
    return change


def changes_expire(*, now: dt.datetime | None = None, change_id: uuid.UUID | str | None = None) -> int:
    """Close every PENDING change past its expiry as EXPIRED, each with CHANGE_EXPIRED, in its own transaction
    (the beat task; and at decision time for the one change decided, before the decision's transaction, so an
    expiry found then is kept even though the decision is refused). Answers how many expired."""
    now = now or timezone.now()
    due = PendingChange.objects.filter(status=ChangeStatus.PENDING, expires_at__lte=now)
    if change_id is not None:
        parsed = parse_change_id(change_id)
        if parsed is None:
            return 0  # a malformed id expires nothing (the decision answers 404)
        due = due.filter(pk=parsed)
    expired = 0
    for pk in due.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            change = PendingChange.objects.select_for_update().get(pk=pk)
            if change.status == ChangeStatus.PENDING and change.expires_at <= now:
                change_close(change, actor=None, status=ChangeStatus.EXPIRED, reason="expired", now=now)
                expired += 1
    return expired
