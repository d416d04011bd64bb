"""A change to the risk controls that waits for a second person's approval (four-eyes)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class ChangeKind(models.TextChoices):
    LIMIT_RAISE = "LIMIT_RAISE"
    STATE_RELEASE = "STATE_RELEASE"


class ChangeStatus(models.TextChoices):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class PendingChange(models.Model):
    """One requested change. `change` holds what approval applies: for LIMIT_RAISE {"limits": {name: new or
    null}, "old": {name: value}, "raised": [names]}; for STATE_RELEASE {"state": target, "previous": "HALTED",
    "via": "kill_switch" | "trading_state"}. Rows change status once (PENDING to one of the others), by
    approvals.services only, each step with its event."""

    change_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=20, choices=ChangeKind.choices)
    scope = models.CharField(max_length=80)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=ChangeStatus.choices, default=ChangeStatus.PENDING)
    reason = models.CharField(max_length=1000, blank=True, default="")
    change = models.JSONField(encoder=DjangoJSONEncoder)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(max_length=1000, blank=True, default="")
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-requested_at"]
        indexes = [models.Index(fields=["status", "expires_at"], name="approvals_status_expiry")]

    def __str__(self) -> str:
        return f"{self.kind} on {self.scope} ({self.status})"


@dataclass(frozen=True)
class Approval:
    """Passed to the risk services when an approved change is applied: the policy is not asked again, and the
    change's events name the requester and the approver."""

    change_id: uuid.UUID
    requested_by: str
    approved_by: str

    def payload(self) -> dict[str, str]:
        return {"change_id": str(self.change_id), "requested_by": self.requested_by, "approved_by": self.approved_by}
