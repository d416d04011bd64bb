"""Users with one role each, and the access tokens revoked before their expiry."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    TRADER = "TRADER", "Trader"
    RISK_MANAGER = "RISK_MANAGER", "Risk manager"
    COMPLIANCE = "COMPLIANCE", "Compliance"
    ADMIN = "ADMIN", "Admin"
    MARKET_DATA = "MARKET_DATA", "Market data feed"


class User(AbstractUser):
    """A person or program using ITIRP. Its role names the permission group it belongs to."""

    role = models.CharField(max_length=20, choices=Role.choices, default=Role.TRADER)
    # The book an order without `book` goes to. Loaded with the user by authentication, so resolving it
    # costs the order path nothing. Named by string: accounts does not import books' code.
    default_book = models.ForeignKey(
        "books.Book", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )

    class Meta:
        verbose_name = "user"
        verbose_name_plural = "users"


class RevokedAccessToken(models.Model):
    """An access token ended before its expiry (logout). Rows past expires_at can be purged."""

    jti = models.CharField(max_length=64, primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"revoked {self.jti}"
