"""Four-eyes decisions on the risk controls: a second risk manager with rights on the scope approves (the
change applied through risk.services, in the decision's transaction) or rejects, with a reason.

The policy and the pending changes are the approvals app's (below risk); the gate that creates them is in
risk.services. Deciding needs the scope rules (risk.access) and applying needs the risk services: it lives here.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from accounts.models import User
from approvals import services as approvals
from approvals.models import Approval, ChangeKind, ChangeStatus, PendingChange
from core.exceptions import ItirpError
from risk import access, services, store
from risk.scopes import FIRM, Scope, ScopeError

LIST_PERMS = ("risk.manage_limits", "audit.view_audit_trail")


class DecisionForbidden(ItirpError):
    status_code = 403
    code = "permission_denied"


def may_list(user: User) -> bool:
    """Risk managers and up: those who manage limits, compliance (the audit trail) and admin."""
    return bool(user.is_authenticated and (user.is_superuser or any(user.has_perm(p) for p in LIST_PERMS)))


def _scope(change: PendingChange) -> Scope | None:
    try:
        return Scope.parse(change.scope)
    except ScopeError:
        return None


def visible(user: User, change: PendingChange) -> bool:
    """A risk manager sees the changes on the scopes they manage; compliance and admin see all."""
    scope = _scope(change)
    return scope is not None and access.can_view_scope(user, scope)


def may_decide(user: User, change: PendingChange) -> bool:
    """A risk manager (or admin) with rights on the scope, other than the requester; a release of the firm
    needs the kill switch's permission too."""
    scope = _scope(change)
    if scope is None or not access.can_manage_scope(user, scope):
        return False
    if scope == FIRM and change.kind == ChangeKind.STATE_RELEASE and not user.has_perm("risk.toggle_kill_switch"):
        return False
    return change.requested_by_id != user.pk


def _authorize(user: User, change: PendingChange) -> None:
    if change.requested_by_id is not None and change.requested_by_id == user.pk:
        raise DecisionForbidden("The requester of a change cannot decide it: a second risk manager must.")
    if not may_decide(user, change):
        raise DecisionForbidden(f"You do not manage {change.scope}.")


def change_approve(*, actor: User, change_id: uuid.UUID | str, reason: Any) -> PendingChange:
    """Approve a pending change and apply it: LIMITS_CHANGED or TRADING_STATE_CHANGED (and, for the firm,
    KILL_SWITCH_DEACTIVATED) as any change writes them, naming requester and approver, then CHANGE_APPROVED;
    one transaction. 400 without a reason, 404 unknown, 403 for the requester or one without rights on the
    scope, 409 if already decided or expired (an expiry found now is kept)."""
    reason = approvals.decision_reason(reason)
    approvals.changes_expire(change_id=change_id)
    with transaction.atomic():
        store.lock()  # the risk lock first, as every risk write takes it, then the change's row
        change = approvals.change_lock(change_id)
        _authorize(actor, change)
        scope = Scope.parse(change.scope)
        approval = Approval(
            change_id=change.change_id,
            requested_by=change.requested_by.username if change.requested_by else "system",
            approved_by=actor.username,
        )
        if change.status == ChangeStatus.PENDING:  # else change_close answers 409 below, before anything applies
            _apply(change, scope=scope, actor=actor, approval=approval)
        return approvals.change_close(change, actor=actor, status=ChangeStatus.APPROVED, reason=reason)


def _apply(change: PendingChange, *, scope: Scope, actor: User, approval: Approval) -> None:
    data = change.change
    if change.kind == ChangeKind.LIMIT_RAISE:
        services.scope_limits_update(
            actor=actor, scope=scope, changes=data["limits"], reason=change.reason, approval=approval
        )
    elif data.get("via") == "kill_switch":
        services.kill_switch_state_set(actor=actor, enabled=False, reason=change.reason, approval=approval)
    else:
        # A release cancels no order (only HALTED does), so the risk write alone is the whole action.
        services.trading_state_write(
            actor=actor, scope=scope, state=data["state"], reason=change.reason, approval=approval
        )


def change_reject(*, actor: User, change_id: uuid.UUID | str, reason: Any) -> PendingChange:
    """Reject a pending change with a reason (CHANGE_REJECTED); nothing of it is applied. The same 400 / 404 /
    403 / 409 as approving."""
    reason = approvals.decision_reason(reason)
    approvals.changes_expire(change_id=change_id)
    with transaction.atomic():
        change = approvals.change_lock(change_id)
        _authorize(actor, change)
        return approvals.change_close(change, actor=actor, status=ChangeStatus.REJECTED, reason=reason)
