"""Admin hygiene (issue 18.6): guardian's AnonymousUser hidden and unusable; framework internals for superusers
only; every change to the audit's beat schedules recorded; users with names; bulk deactivation with a reason."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from accounts import services
from accounts.models import User
from audit.models import Event
from core.exceptions import InvalidInput

pytestmark = pytest.mark.django_db

ANON = "AnonymousUser"


@pytest.fixture
def staff_admin(make_user: Any) -> Any:
    """An ADMIN role without superuser, given the framework tables' permissions through its group anyway."""
    from django.contrib.auth.models import Group, Permission

    user = make_user("admin2", "ADMIN")
    perms = Permission.objects.filter(content_type__app_label__in=["django_celery_beat", "token_blacklist", "axes"])
    Group.objects.get(name="ADMIN").permissions.add(*perms)
    return User.objects.get(pk=user.pk)  # fresh: no cached permissions


@pytest.fixture
def seal_task(db: Any) -> PeriodicTask:
    every, _ = IntervalSchedule.objects.get_or_create(every=10, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(name="audit-seal", task="audit.seal", interval=every)


# guardian's AnonymousUser


def test_anonymous_user_when_migrated_then_inactive_without_password(db: Any) -> None:
    anon = User.objects.get(username=ANON)
    assert not anon.is_active and not anon.has_usable_password() and not anon.is_staff


def test_anonymous_user_when_login_attempted_then_refused(api: Any) -> None:
    response = api.post("/api/v1/auth/login", {"username": ANON, "password": ""}, format="json")
    assert response.status_code in (400, 401)
    page = Client().post("/admin/login/", {"username": ANON, "password": ""})
    assert page.status_code == 200 and "_auth_user_id" not in page.wsgi_request.session


def test_anonymous_user_when_given_a_role_then_refused(admin_user: Any) -> None:
    anon = User.objects.get(username=ANON)
    with pytest.raises(InvalidInput):
        services.user_set_role(actor=admin_user, user=anon, role="RISK_MANAGER")
    with pytest.raises(InvalidInput):
        services.user_reactivate(actor=admin_user, user=anon)
    with pytest.raises(InvalidInput):
        services.user_set_password(actor=admin_user, user=anon, password="a-long-enough-passw0rd")
    anon.refresh_from_db()
    assert anon.role != "RISK_MANAGER" and not anon.is_active


def test_anonymous_user_when_user_lists_then_not_listed_nor_an_active_trader(
    admin_user: Any, trader: Any, staff_client: Any
) -> None:
    client = staff_client(admin_user)
    for url in ("/admin/accounts/user/", "/admin/accounts/user/?role__exact=TRADER&is_active__exact=1"):
        page = client.get(url).content.decode()
        assert ANON not in page and "trader1" in page, url
    assert not User.objects.filter(username=ANON, is_active=True).exists()
    anon = User.objects.get(username=ANON)
    assert client.get(f"/admin/accounts/user/{anon.pk}/change/").status_code == 302  # no such user here


# Framework internals: superusers only


@pytest.mark.parametrize(
    "url",
    [
        "/admin/django_celery_beat/periodictask/",
        "/admin/django_celery_beat/intervalschedule/",
        "/admin/django_celery_beat/crontabschedule/",
        "/admin/token_blacklist/outstandingtoken/",
        "/admin/token_blacklist/blacklistedtoken/",
        "/admin/axes/accessattempt/",
        "/admin/axes/accessfailurelog/",
    ],
)
def test_framework_pages_when_staff_admin_not_superuser_then_hidden(
    url: str, staff_admin: Any, admin_user: Any, staff_client: Any
) -> None:
    assert staff_client(staff_admin).get(url).status_code == 403
    assert staff_client(admin_user).get(url).status_code == 200


def test_admin_index_when_staff_admin_then_no_framework_sections(staff_admin: Any, staff_client: Any) -> None:
    page = staff_client(staff_admin).get("/admin/").content.decode()
    assert "Periodic tasks" not in page and "Blacklisted tokens" not in page and "Access attempts" not in page
    assert "Users" in page


# The audit's schedules: every change recorded


def test_audit_schedule_when_disabled_in_admin_then_recorded_with_actor(
    seal_task: PeriodicTask, admin_user: Any, staff_client: Any
) -> None:
    client = staff_client(admin_user)
    response = client.post(
        "/admin/django_celery_beat/periodictask/",
        {"action": "disable_tasks", "_selected_action": [str(seal_task.pk)]},
    )
    assert response.status_code == 302
    seal_task.refresh_from_db()
    assert not seal_task.enabled
    event = Event.objects.get(event_type="AUDIT_SCHEDULE_CHANGED", payload__action="changed")
    assert event.actor_username == "admin" and event.payload["changed"] == ["enabled"]
    assert event.payload["old"]["enabled"] is True and event.payload["new"]["enabled"] is False
    assert event.payload["new"]["task"] == "audit.seal"


def test_audit_schedule_when_toggled_then_recorded(seal_task: PeriodicTask, admin_user: Any, staff_client: Any) -> None:
    staff_client(admin_user).post(
        "/admin/django_celery_beat/periodictask/", {"action": "toggle_tasks", "_selected_action": [str(seal_task.pk)]}
    )
    assert Event.objects.filter(event_type="AUDIT_SCHEDULE_CHANGED", payload__action="changed").count() == 1


def test_audit_schedule_when_changed_or_deleted_outside_admin_then_recorded(seal_task: PeriodicTask) -> None:
    created = Event.objects.filter(event_type="AUDIT_SCHEDULE_CHANGED", payload__action="created")
    assert created.count() == 1  # made by the fixture
    seal_task.interval = IntervalSchedule.objects.create(every=3600, period=IntervalSchedule.SECONDS)
    seal_task.save()
    seal_task.interval.every = 86400
    seal_task.interval.save()  # the shared schedule row edited in place
    seal_task.delete()
    actions = list(
        Event.objects.filter(event_type="AUDIT_SCHEDULE_CHANGED")
        .order_by("sequence")
        .values_list("payload__action", flat=True)
    )
    assert actions == ["created", "changed", "schedule_changed", "deleted"]


def test_audit_schedule_when_beat_bookkeeping_or_other_task_then_nothing_recorded(seal_task: PeriodicTask) -> None:
    from django.utils import timezone

    before = Event.objects.filter(event_type="AUDIT_SCHEDULE_CHANGED").count()
    seal_task.last_run_at, seal_task.total_run_count = timezone.now(), 7
    seal_task.save()
    other = PeriodicTask.objects.create(name="sweep", task="orders.sweep_stuck", interval=seal_task.interval)
    other.enabled = False
    other.save()
    assert Event.objects.filter(event_type="AUDIT_SCHEDULE_CHANGED").count() == before


# Names and bulk deactivation


def test_user_create_when_names_given_then_stored_and_listed(admin_user: Any, staff_client: Any) -> None:
    client = staff_client(admin_user)
    response = client.post(
        "/admin/accounts/user/add/",
        {
            "username": "ada",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.org",
            "role": "TRADER",
            "password1": "an-analytical-engine-1843",
            "password2": "an-analytical-engine-1843",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(username="ada").get_full_name() == "Ada Lovelace"
    assert "Ada Lovelace" in client.get("/admin/accounts/user/").content.decode()
    assert Event.objects.get(event_type="USER_CREATED", payload__username="ada").payload["last_name"] == "Lovelace"


def test_user_edit_when_names_changed_then_event_with_old_and_new(
    admin_user: Any, trader: Any, staff_client: Any
) -> None:
    response = staff_client(admin_user).post(
        f"/admin/accounts/user/{trader.pk}/change/",
        {"first_name": "Grace", "last_name": "Hopper", "email": "", "role": "TRADER", "is_active": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = Event.objects.get(event_type="USER_DETAILS_CHANGED")
    assert event.payload["changed"]["last_name"] == {"old": "", "new": "Hopper"}
    assert event.actor_username == "admin"


def test_bulk_deactivate_when_no_reason_then_asked_again_and_nothing_done(
    admin_user: Any, trader: Any, staff_client: Any
) -> None:
    client = staff_client(admin_user)
    body = {"action": "deactivate_users", "_selected_action": [str(trader.pk)], "confirm": "yes", "reason": "  "}
    response = client.post("/admin/accounts/user/", body)
    assert response.status_code == 200 and "A reason is required" in response.content.decode()
    trader.refresh_from_db()
    assert trader.is_active and not Event.objects.filter(event_type="USER_DEACTIVATED").exists()


def test_single_deactivate_when_no_reason_then_refused(admin_user: Any, trader: Any, staff_client: Any) -> None:
    response = staff_client(admin_user).post(f"/admin/accounts/user/{trader.pk}/change/", {"role": "TRADER"})
    assert response.status_code == 200 and "A reason is required" in response.content.decode()
    trader.refresh_from_db()
    assert trader.is_active
