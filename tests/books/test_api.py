"""Desks, books and grants over the API (API.md "Desks and books"): who sees what, admins set them up, bad
input is a 400 and a caller without the right a 403 (recorded), with nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import Event, EventType
from books.models import Book, Desk

pytestmark = pytest.mark.django_db


def _events(kind: str) -> list[Event]:
    return list(Event.objects.filter(event_type=kind).order_by("sequence"))


def test_new_user_has_default_book_main_granted(trader: Any, main_book: Book) -> None:
    assert trader.default_book == main_book
    assert trader.has_perm("books.trade_book", main_book) and trader.has_perm("books.view_book", main_book)
    assert trader.has_perm("books.view_desk", main_book.desk)


def test_get_books_when_trader_then_only_granted_books(trader: Any, fx: Book, client_for: Any) -> None:
    response = client_for(trader).get("/api/v1/books")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "books": [{"code": "MAIN", "name": "Main book", "desk": "EQ", "currency": "USD"}],
        "total": 1,
    }


def test_get_books_and_desks_when_compliance_then_everything(compliance: Any, fx: Book, client_for: Any) -> None:
    client = client_for(compliance)
    assert [b["code"] for b in client.get("/api/v1/books").json()["books"]] == ["FXMAIN", "MAIN"]
    desks = client.get("/api/v1/desks").json()
    assert desks == {
        "desks": [
            {"code": "EQ", "name": "Equities", "books": ["MAIN"]},
            {"code": "FX", "name": "Foreign exchange", "books": ["FXMAIN"]},
        ],
        "total": 2,
    }


def test_get_desks_when_trader_then_granted_desk_with_viewable_books(trader: Any, fx: Book, client_for: Any) -> None:
    assert client_for(trader).get("/api/v1/desks").json() == {
        "desks": [{"code": "EQ", "name": "Equities", "books": ["MAIN"]}],
        "total": 1,
    }


def test_post_desk_and_book_when_admin_then_created_and_recorded(admin_user: Any, client_for: Any) -> None:
    client = client_for(admin_user)
    response = client.post("/api/v1/desks", {"code": "RATES", "name": "Rates"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {"code": "RATES", "name": "Rates", "books": []}
    response = client.post(
        "/api/v1/books", {"code": "GOVT", "name": "Govies", "desk": "RATES", "currency": "EUR"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json() == {"code": "GOVT", "name": "Govies", "desk": "RATES", "currency": "EUR"}
    assert Book.objects.get(code="GOVT").desk.code == "RATES"
    (desk_event,) = _events(EventType.DESK_CREATED)
    (book_event,) = _events(EventType.BOOK_CREATED)
    assert desk_event.actor_username == "admin" and desk_event.payload["desk"] == "RATES"
    assert book_event.payload["book"] == "GOVT" and book_event.payload["desk"] == "RATES"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/desks", {"code": "EQ", "name": "dup"}, "code"),
        ("/api/v1/desks", {"code": "bad code", "name": "x"}, "code"),
        ("/api/v1/desks", {"name": "no code"}, "code"),
        ("/api/v1/books", {"code": "MAIN", "name": "dup", "desk": "EQ"}, "code"),
        ("/api/v1/books", {"code": "NEW", "name": "x", "desk": "NOPE"}, "desk"),
        ("/api/v1/books", {"code": "NEW", "name": "x", "desk": "EQ", "currency": "usd"}, "currency"),
    ],
)
def test_post_desk_or_book_when_bad_then_400_and_nothing_written(
    admin_user: Any, client_for: Any, path: str, body: dict[str, Any], field: str
) -> None:
    client = client_for(admin_user)
    before = (Desk.objects.count(), Book.objects.count(), Event.objects.count())
    response = client.post(path, body, format="json")
    assert response.status_code == 400, response.content
    assert field in {entry["field"] for entry in response.json()["detail"]}
    assert (Desk.objects.count(), Book.objects.count(), Event.objects.count()) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/desks"),
        ("post", "/api/v1/books"),
        ("post", "/api/v1/books/MAIN/grants"),
        ("delete", "/api/v1/books/MAIN/grants?username=trader1&permission=trade"),
        ("post", "/api/v1/desks/EQ/grants"),
        ("delete", "/api/v1/desks/EQ/grants?username=trader1&permission=view"),
    ],
)
def test_setup_calls_when_not_admin_then_403_recorded_and_nothing_written(
    risk_manager: Any, trader: Any, client_for: Any, method: str, path: str
) -> None:
    body = {"code": "X", "name": "x", "desk": "EQ", "username": "trader1", "permission": "view"}
    before = (Desk.objects.count(), Book.objects.count())
    response = getattr(client_for(risk_manager), method)(path, body, format="json")
    assert response.status_code == 403, response.content
    assert (Desk.objects.count(), Book.objects.count()) == before
    assert Event.objects.filter(event_type=EventType.PERMISSION_DENIED).count() == 1
    assert not Event.objects.filter(event_type__in=[EventType.GRANT_ADDED, EventType.GRANT_REVOKED]).exists()


def test_book_grant_when_added_then_trader_sees_book_and_when_revoked_then_not(
    admin_user: Any, trader: Any, fx: Book, client_for: Any
) -> None:
    admin, own = client_for(admin_user), client_for(trader)
    response = admin.post("/api/v1/books/FXMAIN/grants", {"username": "trader1", "permission": "trade"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {"object": "book:FXMAIN", "username": "trader1", "permission": "trade"}
    assert [b["code"] for b in own.get("/api/v1/books").json()["books"]] == ["FXMAIN", "MAIN"]
    trader.refresh_from_db()
    assert trader.has_perm("books.trade_book", fx)
    response = admin.delete("/api/v1/books/FXMAIN/grants?username=trader1&permission=trade")
    assert response.status_code == 200, response.content
    assert [b["code"] for b in own.get("/api/v1/books").json()["books"]] == ["MAIN"]
    (added,) = _events(EventType.GRANT_ADDED)
    (revoked,) = _events(EventType.GRANT_REVOKED)
    assert added.payload["object"] == revoked.payload["object"] == "book:FXMAIN"
    assert added.payload["codename"] == "books.trade_book" and added.actor_username == "admin"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/v1/books/MAIN/grants", {"username": "trader1", "permission": "manage"}, 400),
        ("/api/v1/desks/EQ/grants", {"username": "trader1", "permission": "trade"}, 400),
        ("/api/v1/books/MAIN/grants", {"username": "nobody", "permission": "view"}, 400),
        ("/api/v1/books/NOPE/grants", {"username": "trader1", "permission": "view"}, 404),
    ],
)
def test_grant_when_bad_then_refused_and_nothing_written(
    admin_user: Any, trader: Any, client_for: Any, path: str, body: dict[str, str], status: int
) -> None:
    client = client_for(admin_user)
    before = Event.objects.count()
    response = client.post(path, body, format="json")
    assert response.status_code == status, response.content
    assert Event.objects.count() == before


def test_revoke_when_not_held_then_404_and_nothing_written(admin_user: Any, trader: Any, client_for: Any) -> None:
    response = client_for(admin_user).delete("/api/v1/desks/EQ/grants?username=trader1&permission=manage")
    assert response.status_code == 404, response.content
    assert not Event.objects.filter(event_type=EventType.GRANT_REVOKED).exists()


def test_desk_grant_manage_when_added_then_recorded(admin_user: Any, risk_manager: Any, client_for: Any) -> None:
    response = client_for(admin_user).post(
        "/api/v1/desks/EQ/grants", {"username": "risk1", "permission": "manage"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert risk_manager.has_perm("books.manage_desk", Desk.objects.get(code="EQ"))


def test_openapi_schema_documents_the_new_calls(client_for: Any, admin_user: Any) -> None:
    schema = client_for(admin_user).get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/v1/desks", "/api/v1/books", "/api/v1/risk/trading-state", "/api/v1/risk/limits/scopes"):
        assert any(p.rstrip("/") == path for p in paths), path


def test_get_books_when_risk_manager_manages_a_desk_then_its_books_too(
    risk_manager: Any, fx: Book, client_for: Any
) -> None:
    from books.services import grant_add

    grant_add(actor=None, obj=fx.desk, user=risk_manager, permission="manage")
    assert [b["code"] for b in client_for(risk_manager).get("/api/v1/books").json()["books"]] == ["FXMAIN", "MAIN"]


def test_get_books_when_new_book_on_own_desk_not_granted_then_not_seen(
    trader: Any, main_book: Book, client_for: Any
) -> None:
    Book.objects.create(code="EQ2", name="Other", desk=main_book.desk)
    assert [b["code"] for b in client_for(trader).get("/api/v1/books").json()["books"]] == ["MAIN"]
