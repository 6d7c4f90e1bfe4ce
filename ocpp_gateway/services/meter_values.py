"""Meter values (2.0.1 block J; 1.6 Core): samples from MeterValues and from transaction messages, stored once each,
and the running transaction's latest readings moved forward."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ocpp_gateway import events
from ocpp_gateway.measurands import ENERGY_REGISTER, POWER_ACTIVE, value_in_base_unit
from ocpp_gateway.models import MeterValue, Transaction
from ocpp_gateway.selectors import transaction_active_for_evse, transaction_pk_for_ocpp_id


@dataclass(frozen=True)
class Sample:
    """One sampled value, version-neutral. `value` is None for signed/unparseable data."""

    timestamp: datetime
    value: Decimal | None
    measurand: str = ENERGY_REGISTER
    unit: str = ""
    phase: str = ""
    context: str = ""
    location: str = ""
    format: str = ""
    signed_data: dict | str | None = None

    def in_base_unit(self) -> Decimal | None:
        """Energy in Wh, power in W, whatever multiple the charger used."""
        return value_in_base_unit(value=self.value, unit=self.unit)


def to_decimal(value) -> Decimal | None:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return result if result.is_finite() else None


def meter_values_receive(
    *, station_pk: int, ocpp_evse_id: int | None, transaction_id: str | int | None, samples: list[Sample]
) -> int:
    """MeterValues.req: samples of the transaction the charger names, else of the only active transaction on that
    EVSE (2.0.1 and many 1.6 chargers leave the id out), else of no transaction."""
    transaction_pk = transaction_pk_for_ocpp_id(station_pk=station_pk, transaction_id=transaction_id)
    if transaction_pk is None and transaction_id is None:
        transaction_pk = transaction_active_for_evse(station_pk=station_pk, ocpp_evse_id=ocpp_evse_id)
    return meter_values_record(
        station_pk=station_pk, ocpp_evse_id=ocpp_evse_id or None, transaction_pk=transaction_pk, samples=samples
    )


def meter_values_record(
    *, station_pk: int, ocpp_evse_id: int | None, transaction_pk: int | None, samples: list[Sample]
) -> int:
    """Store samples (a repeated one is skipped) and move the transaction's latest register reading forward."""
    if not samples:
        return 0
    rows = [
        MeterValue(
            station_id=station_pk,
            transaction_id=transaction_pk,
            ocpp_evse_id=ocpp_evse_id,
            timestamp=s.timestamp,
            measurand=s.measurand or ENERGY_REGISTER,
            value=s.value,
            unit=s.unit,
            phase=s.phase,
            context=s.context,
            location=s.location,
            format=s.format,
            signed_data=s.signed_data,
        )
        for s in samples
    ]
    MeterValue.objects.bulk_create(rows, ignore_conflicts=True)
    if transaction_pk is not None:
        _transaction_meter_update(transaction_pk=transaction_pk, samples=samples)
    return len(rows)


def _latest(samples: list[Sample], measurand: str) -> Sample | None:
    """The newest whole-device reading of a measurand (no phase, outlet side unless only inlet was sent)."""
    candidates = [s for s in samples if (s.measurand or ENERGY_REGISTER) == measurand and s.value is not None]
    unphased = [s for s in candidates if not s.phase]
    candidates = unphased or candidates
    return max(candidates, key=lambda s: s.timestamp) if candidates else None


def _transaction_meter_update(*, transaction_pk: int, samples: list[Sample]) -> None:
    """Move an ACTIVE transaction's latest readings forward in one UPDATE; samples older than the latest reading
    we hold (replayed from the charger's queue) change nothing."""
    fields: dict[str, object] = {}
    energy = _latest(samples, ENERGY_REGISTER)
    if energy is not None:
        fields.update(meter_last=energy.in_base_unit(), meter_last_at=energy.timestamp)
    power = _latest(samples, POWER_ACTIVE)
    if power is not None:
        fields["power_last"] = power.in_base_unit()
    if not fields:
        return
    now = timezone.now()
    active = Transaction.objects.filter(pk=transaction_pk, status=Transaction.Status.ACTIVE)
    if energy is not None:
        # A reading held from the future (stored before services.clock checked times) moves aside for real ones.
        ahead = now + timedelta(seconds=settings.OCPP_CLOCK_MAX_AHEAD_SECONDS)
        active = active.filter(
            Q(meter_last_at__isnull=True) | Q(meter_last_at__lte=energy.timestamp) | Q(meter_last_at__gt=ahead)
        )
    if active.update(**fields, updated_at=now):
        events.announce(events.transaction_updated, transaction_pk=transaction_pk)
