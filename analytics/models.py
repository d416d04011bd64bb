"""Analytics data: each scheduled VaR run's figures per scope (the VaR history of the day)."""

from __future__ import annotations

from django.db import models

from risk.models import MONEY


class VarSnapshot(models.Model):
    """One scope's VaR and expected shortfall measured by the scheduled run (analytics.services.var_limits_check),
    with the scope's max_var at that moment and whether the VaR was over it. A measurement: the breach itself is
    recorded as a VAR_LIMIT_BREACHED event."""

    scope = models.CharField(max_length=80)
    taken_at = models.DateTimeField()
    method = models.CharField(max_length=12)
    confidence = models.DecimalField(max_digits=6, decimal_places=4)
    horizon_days = models.PositiveSmallIntegerField()
    var = models.DecimalField(**MONEY)
    expected_shortfall = models.DecimalField(**MONEY)
    max_var = models.DecimalField(max_digits=24, decimal_places=2, null=True, blank=True)
    observations = models.PositiveIntegerField()
    breached = models.BooleanField(default=False)

    class Meta:
        ordering = ["scope", "taken_at"]
        get_latest_by = "taken_at"
        indexes = [models.Index(fields=["scope", "taken_at"], name="var_snapshot_scope_time_idx")]

    def __str__(self) -> str:
        return f"VaR {self.scope} at {self.taken_at:%Y-%m-%d %H:%M:%S}"
