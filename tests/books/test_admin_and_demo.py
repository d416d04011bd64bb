"""The desks and books back office (guardian's object permission pages, writing through the services) and the
demo data's books and grants."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.test import Client

from accounts.models import User
from audit.models import Event, EventType
from books.models import Book, Desk

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin_user: Any) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def test_book_list_shows_desk_and_currency(admin_client: Client, fx: Book) -> None:
    page = admin_client.get("/admin/books/book/").content.decode()
    assert "FXMAIN" in page and "EUR" in page and "MAIN" in page


def test_desk_added_in_admin_goes_through_the_service(admin_client: Client) -> None:
    response = admin_client.post("/admin/books/desk/add/", {"code": "RATES", "name": "Rates"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Desk.objects.filter(code="RATES").exists()
    assert Event.objects.get(event_type=EventType.DESK_CREATED).payload["desk"] == "RATES"


def test_book_added_in_admin_goes_through_the_service(admin_client: Client) -> None:
    desk = Desk.objects.get(code="EQ")
    response = admin_client.post(
        "/admin/books/book/add/", {"code": "EQ2", "name": "Two", "desk": desk.pk, "currency": "USD"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Event.objects.get(event_type=EventType.BOOK_CREATED).payload["book"] == "EQ2"


def test_object_permission_page_grants_and_revokes_through_the_services(
    admin_client: Client, trader: Any, fx: Book
) -> None:
    url = f"/admin/books/book/{fx.pk}/permissions/user-manage/{trader.pk}/"
    page = admin_client.get(url)
    assert page.status_code == 200, page.content.decode()[:2000]
    assert "trade_book" in page.content.decode() and "delete_book" not in page.content.decode()
    response = admin_client.post(url, {"permissions": ["trade_book", "view_book"]})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert trader.has_perm("books.trade_book", fx)
    assert Event.objects.filter(event_type=EventType.GRANT_ADDED).count() == 2
    admin_client.post(url, {"permissions": ["view_book"]})
    assert Event.objects.filter(event_type=EventType.GRANT_REVOKED).get().payload["permission"] == "trade"


def test_user_list_hides_guardians_anonymous_user(admin_client: Client) -> None:
    assert User.objects.filter(username="AnonymousUser").exists()
    page = admin_client.get("/admin/accounts/user/").content.decode()
    assert "AnonymousUser" not in page


def test_demo_users_all_granted_main_and_risk_managers_manage_eq(settings: Any) -> None:
    settings.DEBUG = True
    call_command("create_demo_users", stdout=StringIO())
    call_command("create_demo_users", stdout=StringIO())  # idempotent
    main = Book.objects.get(code="MAIN")
    names = ["trader1", "trader2", "risk1", "risk2", "compliance1", "admin"]
    users = {u.username: u for u in User.objects.filter(username__in=names)}
    assert set(users) == set(names)
    assert (users["trader2"].role, users["risk2"].role) == ("TRADER", "RISK_MANAGER")
    assert users["trader2"].check_password("trader234") and users["risk2"].check_password("risk234")
    for user in users.values():
        assert user.default_book == main and user.has_perm("books.trade_book", main), user.username
    for name in ("risk1", "risk2"):
        assert users[name].has_perm("books.manage_desk", main.desk)
    assert not users["trader1"].has_perm("books.manage_desk", main.desk)
    content_type = ContentType.objects.get_for_model(Desk)
    assert Event.objects.filter(event_type=EventType.GRANT_ADDED, payload__codename="books.manage_desk").count() == 2
    assert content_type.model == "desk"
