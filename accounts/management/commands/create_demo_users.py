"""Create the demo users (idempotent). Refuses when DEBUG is off unless --force."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services
from accounts.models import Role, User
from books.models import Book
from books.services import book_create, default_book_assign, grant_add

DEMO_USERS = [
    ("trader1", "trader123", Role.TRADER, False),
    ("risk1", "risk123", Role.RISK_MANAGER, False),
    ("compliance1", "compliance123", Role.COMPLIANCE, False),
    ("admin", "admin123", Role.ADMIN, True),
    ("trader2", "trader234", Role.TRADER, False),
    ("risk2", "risk234", Role.RISK_MANAGER, False),
]


class Command(BaseCommand):
    help = (
        "Create the demo users trader1, trader2, risk1, risk2, compliance1 and admin with their well-known "
        "passwords, every one granted book MAIN (risk managers: desk EQ to manage); trader2 also trades book FLOW, "
        "so the two demo traders can trade with each other at the internal venue."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--force", action="store_true", help="create them even with DEBUG off")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "DEBUG is off: demo users with well-known passwords are refused. Use --force to create them anyway."
            )
        with transaction.atomic():
            for username, password, role, superuser in DEMO_USERS:
                user = User.objects.filter(username=username).first()
                if user is None:
                    services.user_create(
                        actor=None, username=username, password=password, role=role, is_superuser=superuser
                    )
                    self.stdout.write(f"created {username} ({role})")
                else:
                    if user.role != role:
                        services.user_set_role(actor=None, user=user, role=role)
                    if not user.check_password(password):
                        user.set_password(password)
                        user.save(update_fields=["password"])
                    self.stdout.write(f"exists  {username} ({role})")
                # every demo user trades MAIN (and views EQ); the risk managers manage EQ
                user = User.objects.get(username=username)
                book = default_book_assign(user)
                if role == Role.RISK_MANAGER and not user.has_perm("books.manage_desk", book.desk):
                    grant_add(actor=None, obj=book.desk, user=user, permission="manage")
                if username == "trader2":
                    # a second book: the internal venue never lets one book trade with itself
                    flow = Book.objects.filter(code="FLOW").first() or book_create(
                        actor=None, code="FLOW", name="Flow trading", desk_code=book.desk.code
                    )
                    if not user.has_perm("books.trade_book", flow):
                        grant_add(actor=None, obj=flow, user=user, permission="trade")
