"""Changes to the audit's own beat schedules (audit.seal, audit.verify, audit.verify_full) recorded as events.

The rows belong to django_celery_beat, and are written by its admin pages, by beat itself when it starts (from
CELERY_BEAT_SCHEDULE) and by any script: only model signals see every such write, so this is the rare signal
that records (it decides nothing). The beat admin's bulk actions use queryset.update(), which sends no signal:
audit/admin_schedules.py replaces them with saves. Beat's own bookkeeping (last run, run count) is not a change.
A change made in SQL directly is not seen here; the seals and verifications themselves would show the gap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save

from audit.models import EventType
from audit.services import event_record

AUDIT_TASKS = frozenset({"audit.seal", "audit.verify", "audit.verify_full"})
SCHEDULE_KINDS = ("interval", "crontab", "solar", "clocked")
_acting: ContextVar[Any] = ContextVar("audit_schedule_actor", default=None)


@contextlib.contextmanager
def acting(user: Any) -> Iterator[None]:
    """Name who changes schedules in this block (the admin pages): the events' actor."""
    token = _acting.set(user)
    try:
        yield
    finally:
        _acting.reset(token)


def task_snapshot(task: Any) -> dict[str, Any]:
    """What decides when and whether a periodic task runs."""
    return {
        "name": task.name,
        "task": task.task,
        "enabled": task.enabled,
        "schedule": next((f"{k}: {getattr(task, k)}" for k in SCHEDULE_KINDS if getattr(task, f"{k}_id")), None),
        "one_off": task.one_off,
        "start_time": task.start_time.isoformat() if task.start_time else None,
        "expires": task.expires.isoformat() if task.expires else None,
        "args": task.args,
        "kwargs": task.kwargs,
    }


def _record(*, action: str, old: dict[str, Any] | None, new: dict[str, Any] | None, **extra: Any) -> None:
    changed = sorted(k for k in (new or old or {}) if (old or {}).get(k) != (new or {}).get(k))
    actor = _acting.get()
    with transaction.atomic():
        event_record(
            event_type=EventType.AUDIT_SCHEDULE_CHANGED,
            actor=actor if getattr(actor, "pk", None) else None,
            payload={"action": action, "changed": changed, "old": old, "new": new, **extra},
        )


def _task_pre_save(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw:
        return
    before = sender.objects.filter(pk=instance.pk).first() if instance.pk else None
    instance._audit_schedule_before = task_snapshot(before) if before is not None else None


def _task_post_save(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw:
        return
    old, new = getattr(instance, "_audit_schedule_before", None), task_snapshot(instance)
    if new["task"] not in AUDIT_TASKS and (old is None or old["task"] not in AUDIT_TASKS):
        return
    if old != new:
        _record(action="created" if old is None else "changed", old=old, new=new)


def _task_post_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
    if instance.task in AUDIT_TASKS:
        _record(action="deleted", old=task_snapshot(instance), new=None)


def _schedule_pre_save(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw or not instance.pk:
        return
    before = sender.objects.filter(pk=instance.pk).first()
    instance._audit_schedule_before = str(before) if before is not None else None


def _schedule_post_save(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    """A schedule row shared by an audit task, edited in place: the task now runs at other times."""
    old = getattr(instance, "_audit_schedule_before", None)
    if raw or created or old is None or old == str(instance):
        return
    from django_celery_beat.models import PeriodicTask  # noqa: PLC0415 - connected only once apps are ready

    kind = sender.__name__.replace("Schedule", "").lower()
    for task in PeriodicTask.objects.filter(task__in=AUDIT_TASKS, **{f"{kind}_id": instance.pk}).order_by("pk"):
        _record(
            action="schedule_changed",
            old={"name": task.name, "task": task.task, "schedule": f"{kind}: {old}"},
            new={"name": task.name, "task": task.task, "schedule": f"{kind}: {instance}"},
        )


def signals_connect() -> None:
    from django_celery_beat import models as beat  # noqa: PLC0415 - connected only once apps are ready

    uid = "audit.schedules"
    pre_save.connect(_task_pre_save, sender=beat.PeriodicTask, dispatch_uid=f"{uid}.task.pre")
    post_save.connect(_task_post_save, sender=beat.PeriodicTask, dispatch_uid=f"{uid}.task.post")
    post_delete.connect(_task_post_delete, sender=beat.PeriodicTask, dispatch_uid=f"{uid}.task.delete")
    for model in (beat.IntervalSchedule, beat.CrontabSchedule, beat.SolarSchedule, beat.ClockedSchedule):
        pre_save.connect(_schedule_pre_save, sender=model, dispatch_uid=f"{uid}.{model.__name__}.pre")
        post_save.connect(_schedule_post_save, sender=model, dispatch_uid=f"{uid}.{model.__name__}.post")
