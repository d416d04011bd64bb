"""Four-eyes reads: the changes of a status, newest first."""

from __future__ import annotations

from django.db.models import QuerySet

from approvals.models import PendingChange


def changes_list(*, status: str | None = None) -> QuerySet[PendingChange]:
    changes = PendingChange.objects.select_related("requested_by", "decided_by")
    return changes.filter(status=status) if status else changes
