"""The dashboard's own data: the audit log of what staff did, and the analytics roll-ups.

These models were born in the `cpo` app; their tables keep the names they had there (`db_table`), and the move was
made in migration state only (cpo 0006, dashboard 0001), so no row was copied or lost."""

from django.conf import settings
from django.db import models

from cpo.models import ChargingStation, Location


class AuditLog(models.Model):
    """What a staff member did from the dashboard: a command sent to a station, a station created or accepted.

    `payload` is what was sent; `answer` the charger's reply, or `error` why there is none. Secrets never go here.
    The username is kept as text so the entry outlives the account.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="dashboard_audit_log"
    )
    username = models.CharField(max_length=150)
    station = models.ForeignKey(
        ChargingStation, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_log"
    )
    identity = models.CharField(max_length=48, blank=True, help_text="The station's identity at the time")
    action = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, blank=True)
    ok = models.BooleanField(default=False, help_text="The charger answered (whatever the answer said)")
    answer = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        db_table = "cpo_auditlog"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["station", "-created_at"], name="cpo_auditlo_station_b71a8c_idx")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.identity}"


# --- Analytics roll-ups (cpo.dashboard.services.analytics_rebuild) -------------------------------------------------
# Closed UTC days, aggregated once so the dashboard's analytics read a few thousand rows for any period instead of
# every session in it. Each is rebuilt whole for a day (delete + insert), so rebuilding is idempotent.


class AnalyticsDay(models.Model):
    """A UTC day whose roll-ups are built; days without one are computed live."""

    day = models.DateField(primary_key=True)
    built_at = models.DateTimeField()

    class Meta:
        db_table = "cpo_analyticsday"


class AnalyticsHour(models.Model):
    """Network-wide per UTC hour: sessions started, energy they delivered (Wh), EVSE-seconds in use in the hour."""

    hour = models.DateTimeField(unique=True)
    sessions = models.PositiveIntegerField(default=0)
    energy_wh = models.DecimalField(max_digits=16, decimal_places=3, default=0)
    busy_seconds = models.DecimalField(max_digits=16, decimal_places=6, default=0)

    class Meta:
        db_table = "cpo_analyticshour"


class AnalyticsLocationDay(models.Model):
    """Per UTC day x location: sessions started, energy they delivered (Wh), EVSE-seconds in use that day."""

    day = models.DateField()
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+")
    sessions = models.PositiveIntegerField(default=0)
    energy_wh = models.DecimalField(max_digits=16, decimal_places=3, default=0)
    busy_seconds = models.DecimalField(max_digits=16, decimal_places=6, default=0)

    class Meta:
        db_table = "cpo_analyticslocationday"
        constraints = [models.UniqueConstraint(fields=["day", "location"], name="analytics_location_day_unique")]


class AnalyticsPartnerDay(models.Model):
    """Per UTC day (of the CDR's last_updated) x EMSP party x currency: CDRs, credits, kWh, revenue excl./incl. VAT
    (credits net out). Null where every CDR's figure was null, as SUM gives."""

    day = models.DateField()
    emsp_country_code = models.CharField(max_length=2, blank=True)
    emsp_party_id = models.CharField(max_length=3, blank=True)
    currency = models.CharField(max_length=3)
    cdrs = models.PositiveIntegerField(default=0)
    credits = models.PositiveIntegerField(default=0)
    energy_kwh = models.DecimalField(max_digits=16, decimal_places=4, null=True)
    revenue_excl_vat = models.DecimalField(max_digits=16, decimal_places=4, null=True)
    revenue_incl_vat = models.DecimalField(max_digits=16, decimal_places=4, null=True)

    class Meta:
        db_table = "cpo_analyticspartnerday"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "emsp_country_code", "emsp_party_id", "currency"], name="analytics_partner_day_unique"
            )
        ]
