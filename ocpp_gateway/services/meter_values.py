"""Meter values (2.0.1 block J; 1.6 Core): samples from MeterValues and from transaction messages, stored once each,
and the running transaction's latest readings moved forward."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from ocpp_gateway import events
from ocpp_gateway import sql as gateway_sql
from ocpp_gateway.measurands import CURRENT_IMPORT, ENERGY_REGISTER, POWER_ACTIVE, value_in_base_unit
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
    *,
    station_pk: int,
    ocpp_evse_id: int | None,
    transaction_id: str | int | None,
    samples: list[Sample],
    known_transactions: dict[str, int] | None = None,
) -> int:
    """MeterValues.req: samples of the transaction the charger names, else of the only active transaction on that
    EVSE (2.0.1 and many 1.6 chargers leave the id out), else of no transaction. `known_transactions` is the
    connection's transactionId -> pk memo (a station's transactionId names one transaction for good): a charger
    sends MeterValues of the same transaction every few seconds, and the lookup was a query each time."""
    transaction_pk = None
    if transaction_id is not None and known_transactions is not None:
        transaction_pk = known_transactions.get(str(transaction_id))
    if transaction_pk is None:
        transaction_pk = transaction_pk_for_ocpp_id(station_pk=station_pk, transaction_id=transaction_id)
        if transaction_pk is not None and transaction_id is not None and known_transactions is not None:
            transaction_remember(known_transactions, transaction_id=transaction_id, transaction_pk=transaction_pk)
    if transaction_pk is None and transaction_id is None:
        transaction_pk = transaction_active_for_evse(station_pk=station_pk, ocpp_evse_id=ocpp_evse_id)
    return meter_values_record(
        station_pk=station_pk, ocpp_evse_id=ocpp_evse_id or None, transaction_pk=transaction_pk, samples=samples
    )


def transaction_remember(known_transactions: dict[str, int], *, transaction_id: str | int, transaction_pk: int) -> None:
    """Add to a connection's transactionId -> pk memo (`meter_values_receive`), the oldest of 16 forgotten first. The
    gateway adds the transaction it has just started, so its MeterValues never look it up."""
    if len(known_transactions) >= 16:
        known_transactions.pop(next(iter(known_transactions)))
    known_transactions[str(transaction_id)] = transaction_pk


# The columns of a stored sample, in the order `_meter_value_row` gives them.
SAMPLE_COLUMNS = (
    "station_id",
    "transaction_id",
    "ocpp_evse_id",
    "timestamp",
    "measurand",
    "value",
    "unit",
    "phase",
    "context",
    "location",
    "format",
    "signed_data",
)
_signed_data_field = MeterValue._meta.get_field("signed_data")
_value_field = MeterValue._meta.get_field("value")


def meter_values_record(
    *, station_pk: int, ocpp_evse_id: int | None, transaction_pk: int | None, samples: list[Sample]
) -> int:
    """Store samples (a repeated one is skipped) and move the transaction's latest register reading forward.

    One INSERT of plain values with ON CONFLICT DO NOTHING (the unique sample constraint skips repeats), without a
    model per sample: MeterValues are half of a charger network's CALLs (bench/RESULTS.md)."""
    if not samples:
        return 0
    ops = connection.ops
    rows = [
        (
            station_pk,
            transaction_pk,
            ocpp_evse_id,
            ops.adapt_datetimefield_value(s.timestamp),
            s.measurand or ENERGY_REGISTER,
            ops.adapt_decimalfield_value(s.value, _value_field.max_digits, _value_field.decimal_places),
            s.unit,
            s.phase,
            s.context,
            s.location,
            s.format,
            None if s.signed_data is None else _signed_data_field.get_db_prep_save(s.signed_data, connection),
        )
        for s in samples
    ]
    row_placeholder = "(" + ", ".join(["%s"] * len(SAMPLE_COLUMNS)) + ")"
    sql = "INSERT INTO {} ({}) VALUES {} ON CONFLICT DO NOTHING".format(  # noqa: S608 - names from the model
        ops.quote_name(MeterValue._meta.db_table),
        ", ".join(ops.quote_name(column) for column in SAMPLE_COLUMNS),
        ", ".join([row_placeholder] * len(rows)),
    )
    params = [value for row in rows for value in row]
    update = _transaction_meter_update(transaction_pk=transaction_pk, samples=samples) if transaction_pk else None
    updated = 0
    if update is None:
        gateway_sql.execute(sql, params)
    elif connection.vendor == "postgresql":
        # One round trip and one commit: the samples' INSERT as a data-modifying WITH of the transaction's UPDATE.
        updated = gateway_sql.execute(f"WITH samples AS ({sql}) {update[0]}", params + update[1])
    else:
        gateway_sql.execute(sql, params)
        updated = gateway_sql.execute(*update)
    if updated:
        events.announce(events.transaction_updated, transaction_pk=transaction_pk)
    return len(rows)


def _latest(samples: list[Sample], measurand: str) -> Sample | None:
    """The newest whole-device reading of a measurand (no phase, outlet side unless only inlet was sent)."""
    candidates = [s for s in samples if (s.measurand or ENERGY_REGISTER) == measurand and s.value is not None]
    unphased = [s for s in candidates if not s.phase]
    candidates = unphased or candidates
    return max(candidates, key=lambda s: s.timestamp) if candidates else None


_PHASES = ("L1", "L2", "L3", "L1-N", "L2-N", "L3-N")


def _phase_currents(samples: list[Sample]) -> dict[str, Decimal | None] | None:
    """The newest Current.Import per phase (L1, L2, L3, or L1-N ...; outlet side unless only inlet was sent) as
    the transaction's `current_l<n>_last` columns, a phase not in this message empty; None when no sample is per
    phase (the columns keep what they had)."""
    phased = [
        s
        for s in samples
        if s.measurand == CURRENT_IMPORT and s.phase in _PHASES and s.value is not None and abs(s.value) < 10**6
    ]
    if not phased:
        return None
    outlet = [s for s in phased if s.location in ("", "Outlet")]
    phased = outlet or phased
    columns: dict[str, Decimal | None] = {}
    for number in (1, 2, 3):
        mine = [s for s in phased if s.phase[:2] == f"L{number}"]
        newest = max(mine, key=lambda s: s.timestamp) if mine else None
        columns[f"current_l{number}_last"] = newest.value if newest is not None else None
    return columns


def _transaction_meter_update(*, transaction_pk: int, samples: list[Sample]) -> tuple[str, list[Any]] | None:
    """The UPDATE (statement, parameters) that moves an ACTIVE transaction's latest readings forward (None: the samples
    hold none); samples older than the latest reading we hold (replayed from the charger's queue) change nothing.
    Plain SQL: it runs for nearly every MeterValues, and building the ORM's conditional update cost more than the
    rest of storing the samples (bench/RESULTS.md)."""
    ops = connection.ops
    decimal = ops.adapt_decimalfield_value
    sets: list[tuple[str, Any]] = []
    energy = _latest(samples, ENERGY_REGISTER)
    if energy is not None:
        sets.append(("meter_last", decimal(energy.in_base_unit(), _meter_last.max_digits, _meter_last.decimal_places)))
        sets.append(("meter_last_at", ops.adapt_datetimefield_value(energy.timestamp)))
    power = _latest(samples, POWER_ACTIVE)
    if power is not None:
        sets.append(("power_last", decimal(power.in_base_unit(), _power_last.max_digits, _power_last.decimal_places)))
    for column, amps in (_phase_currents(samples) or {}).items():
        sets.append((column, decimal(amps, _current.max_digits, _current.decimal_places) if amps is not None else None))
    if not sets:
        return None
    now = timezone.now()
    sets.append(("updated_at", ops.adapt_datetimefield_value(now)))
    where = f"{ops.quote_name('id')} = %s AND {ops.quote_name('status')} = %s"
    params: list[Any] = [value for _column, value in sets] + [transaction_pk, Transaction.Status.ACTIVE.value]
    if energy is not None:
        # A reading held from the future (stored before services.clock checked times) moves aside for real ones.
        ahead = now + timedelta(seconds=settings.OCPP_CLOCK_MAX_AHEAD_SECONDS)
        held = ops.quote_name("meter_last_at")
        where += f" AND ({held} IS NULL OR {held} <= %s OR {held} > %s)"
        params += [ops.adapt_datetimefield_value(energy.timestamp), ops.adapt_datetimefield_value(ahead)]
    assignments = ", ".join(f"{ops.quote_name(column)} = %s" for column, _value in sets)
    return f"UPDATE {ops.quote_name(Transaction._meta.db_table)} SET {assignments} WHERE {where}", params  # noqa: S608


_meter_last = Transaction._meta.get_field("meter_last")
_power_last = Transaction._meta.get_field("power_last")
_current = Transaction._meta.get_field("current_l1_last")
