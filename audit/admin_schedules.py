"""django_celery_beat's admin pages, superusers only, with every change to the audit's schedules recorded
(audit/schedules.py): the signed-in user is the events' actor, and the bulk actions save row by row (the
framework's use queryset.update(), which no signal sees)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from audit import schedules
from core.admin import superuser_only


class RecordedBeatAdminMixin:
    """Binds the signed-in user as the actor of the schedule events for each page that may write."""

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with schedules.acting(request.user):
            return super().changeform_view(request, *args, **kwargs)  # type: ignore[misc]

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with schedules.acting(request.user):
            return super().changelist_view(request, *args, **kwargs)  # type: ignore[misc]

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with schedules.acting(request.user):
            return super().delete_view(request, *args, **kwargs)  # type: ignore[misc]


class RecordedPeriodicTaskAdminMixin(RecordedBeatAdminMixin):
    def _set_enabled(self, request: HttpRequest, queryset: QuerySet, enabled: bool | None, verb: str) -> None:
        with transaction.atomic():
            tasks = list(queryset.select_related(None).select_for_update().order_by("pk"))
            for task in tasks:
                task.enabled = (not task.enabled) if enabled is None else enabled
                if task.enabled is False:
                    task.last_run_at = None
                task.save()  # one by one: each save is seen, and recorded when it is an audit task
        self.message_user(request, f"{len(tasks)} task(s) {verb}.")  # type: ignore[attr-defined]

    @admin.action(description="Enable selected tasks")
    def enable_tasks(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_enabled(request, queryset, True, "enabled")

    @admin.action(description="Disable selected tasks")
    def disable_tasks(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_enabled(request, queryset, False, "disabled")

    @admin.action(description="Toggle activity of selected tasks")
    def toggle_tasks(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_enabled(request, queryset, None, "toggled")


superuser_only(
    admin.site,
    {"django_celery_beat"},
    extra={
        "PeriodicTask": RecordedPeriodicTaskAdminMixin,
        "IntervalSchedule": RecordedBeatAdminMixin,
        "CrontabSchedule": RecordedBeatAdminMixin,
        "SolarSchedule": RecordedBeatAdminMixin,
        "ClockedSchedule": RecordedBeatAdminMixin,
    },
)
