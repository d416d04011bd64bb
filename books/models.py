"""Desks and books. A book belongs to one desk for its whole life (the risk aggregates of a desk are sums of
its books' rows, kept as they go), and has a currency. Codes are what the API and the scopes name:
`desk:<code>`, `book:<code>`.

Object permissions (django-guardian): `trade_book` and `view_book` on a book, `manage_desk` and `view_desk` on
a desk. `view_*` are Django's default model permissions, granted per object.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

CODE_PATTERN = r"^[A-Z0-9][A-Z0-9_.-]{0,31}$"
code_validator = RegexValidator(CODE_PATTERN, "Codes are 1-32 characters: capitals, digits, '_', '.', '-'.")
DEFAULT_DESK = "EQ"
DEFAULT_BOOK = "MAIN"


class Desk(models.Model):
    code = models.CharField(max_length=32, unique=True, validators=[code_validator])
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        permissions = [("manage_desk", "Can manage the desk's limits and trading states")]

    def __str__(self) -> str:
        return self.code


class Book(models.Model):
    code = models.CharField(max_length=32, unique=True, validators=[code_validator])
    name = models.CharField(max_length=100)
    desk = models.ForeignKey(Desk, on_delete=models.PROTECT, related_name="books")
    currency = models.CharField(
        max_length=3, default="USD", validators=[RegexValidator(r"^[A-Z]{3}$", "An ISO 4217 code: USD, EUR, ...")]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        permissions = [("trade_book", "Can submit orders in the book")]

    def __str__(self) -> str:
        return self.code
