"""seed_events: fills a benchmark database with coherent order flows, and refuses any other database."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from audit.models import Event

pytestmark = pytest.mark.django_db


def test_seed_events_when_not_a_bench_database_then_refused(db: Any) -> None:
    with pytest.raises(CommandError, match="benchmark database"):
        call_command("seed_events", "--count", "10")
    assert not Event.objects.filter(actor_username__startswith="bench_").exists()


def test_seed_events_when_run_then_count_and_coherent_trails(db: Any, compliance: Any) -> None:
    before = Event.objects.count()
    call_command("seed_events", "--count", "2000", "--traders", "3", "--allow-any-database", stdout=io.StringIO())
    seeded = Event.objects.filter(actor_username__startswith="bench_trader")
    assert seeded.count() == 2000
    assert Event.objects.count() == before + 2000 + 3  # + USER_CREATED of the 3 bench traders
    created = seeded.filter(event_type="ORDER_CREATED").values("order_id")
    order_id = created.first()["order_id"]
    trail = list(Event.objects.filter(order_id=order_id).order_by("sequence"))
    assert trail[0].event_type == "ORDER_CREATED" and trail[1].causation_id == trail[0].event_id
    assert [e.timestamp for e in trail] == sorted(e.timestamp for e in trail)
    per_order = seeded.exclude(order_id=None).values("order_id").annotate(n=Count("sequence"))
    assert max(row["n"] for row in per_order) <= 5
