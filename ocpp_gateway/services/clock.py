"""Clock sanity: whether a charger's timestamp is believed, the one check every handler uses for every timestamp it
records (StatusNotification, 1.6 Start/StopTransaction, TransactionEvent, MeterValues, NotifyEvent).

Chargers lose their clock (a reset to 1970 after a power cut, a modem's wrong network time, a year off after a bad
NTP answer). A time too far ahead of ours, before OCPP_CLOCK_FLOOR, or long before the station was registered is not
believed: the time we received the frame stands in for it, so that status ordering, live readings and a CDR's
duration stay right. Times in the past after registration are believed: a charger replays what it queued offline
with its genuine old times."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from cpo.alerts import alert_raise
from cpo.models import AlertKind, ChargingStation


@dataclass(frozen=True)
class ChargerTime:
    """`at`, the time to record; `skew`, the charger's time minus our receive time when it was not believed."""

    at: datetime
    skew: timedelta | None = None


def clock_floor(*, registered_at: datetime | None) -> datetime:
    """The earliest charger time believed for a station registered at `registered_at`."""
    floor = settings.OCPP_CLOCK_FLOOR
    if registered_at is None:
        return floor
    return max(floor, registered_at - timedelta(days=settings.OCPP_CLOCK_MAX_DAYS_BEFORE_REGISTRATION))


def charger_time_check(*, sent: datetime, received: datetime, registered_at: datetime | None) -> ChargerTime:
    """The charger's time `sent` when it is inside the window (not ahead of `received` by more than
    OCPP_CLOCK_MAX_AHEAD_SECONDS, not before `clock_floor`), else `received` with the skew. Pure and cheap: it runs
    for every timestamp of every frame."""
    ahead = sent - received
    if ahead.total_seconds() > settings.OCPP_CLOCK_MAX_AHEAD_SECONDS:
        return ChargerTime(at=received, skew=ahead)
    if sent >= settings.OCPP_CLOCK_FLOOR and (registered_at is None or sent >= registered_at):
        return ChargerTime(at=sent)  # the usual case, decided without computing the floor
    if sent < clock_floor(registered_at=registered_at):
        return ChargerTime(at=received, skew=ahead)
    return ChargerTime(at=sent)


def charger_time_ahead(*, held: datetime | None, now: datetime) -> bool:
    """Whether a time stored earlier (e.g. before this check existed) is itself too far ahead to order by: a status
    or reading stamped in the future must not freeze the newer ones."""
    return held is not None and held - now > timedelta(seconds=settings.OCPP_CLOCK_MAX_AHEAD_SECONDS)


def station_clock_skew_record(*, observations: list[tuple[int, int, datetime]]) -> None:
    """Keep each station's last observed clock skew (seconds, charger minus us) and when we saw it, and alert staff.
    `observations` are (station pk, skew, when), oldest first; written in batches off the charger's reply path."""
    latest = {station_pk: (skew, at) for station_pk, skew, at in observations}
    identities = dict(ChargingStation.objects.filter(pk__in=latest).values_list("pk", "identity"))
    for station_pk, (skew, at) in latest.items():
        ChargingStation.objects.filter(pk=station_pk).update(clock_skew=skew, clock_skew_at=at)
        if station_pk in identities:  # an alert per station, counted while open; staff resolve it once it is fixed
            alert_raise(
                kind=AlertKind.CLOCK_SKEW,
                subject=identities[station_pk],
                message=f"station {identities[station_pk]}: clock {skew:+d} s off ours at {at.isoformat()}",
            )
