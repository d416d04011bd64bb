"""Input and output shapes of the approvals API (API.md, Governance)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from approvals.models import ChangeKind, ChangeStatus, PendingChange


class ChangeOut(serializers.Serializer):
    change_id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=ChangeKind.choices)
    scope = serializers.CharField()
    requested_by = serializers.SerializerMethodField()
    requested_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=ChangeStatus.choices)
    reason = serializers.CharField()
    change = serializers.JSONField()
    expires_at = serializers.DateTimeField()
    decided_by = serializers.SerializerMethodField()
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_reason = serializers.CharField()

    def get_requested_by(self, obj: PendingChange) -> str | None:
        return obj.requested_by.username if obj.requested_by else None

    def get_decided_by(self, obj: PendingChange) -> str | None:
        return obj.decided_by.username if obj.decided_by else None


class ChangesOut(serializers.Serializer):
    approvals = ChangeOut(many=True)
    total = serializers.IntegerField()


class StatusIn(serializers.Serializer):
    status = serializers.ChoiceField(choices=ChangeStatus.choices, required=False)


class DecisionIn(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, error_messages={"required": "A reason is required."})

    def validate_reason(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("A reason is required.")
        return value.strip()


class PendingOut(serializers.Serializer):
    """The 202 of a change four-eyes holds back (the limits and trading-state calls)."""

    change_id = serializers.UUIDField()
    status = serializers.CharField()


def pending_answer(change: PendingChange) -> dict[str, Any]:
    return PendingOut({"change_id": change.change_id, "status": "PENDING_APPROVAL"}).data
