"""Writes of billing: tariffs (validated with `full_clean`, which runs the `check_*` rules of `billing.checks`,
then saved atomically), OCPI Sessions derived from gateway transactions, CDRs and credit CDRs."""

import base64
import binascii
import datetime as dt
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from billing.checks import as_decimal
from billing.encoding import ocpi_datetime
from billing.enums import SESSION_ONLY_DIMENSION_TYPES, AuthMethod, SessionStatus
from billing.models import Cdr, Session, Tariff
from billing.pricing import QUANTITY, MeterSample, PricedSession, SessionUsage, price_session, priced_session_as_ocpi
from billing.selectors import tariff_as_ocpi
from cpo.models import EVSE, ChargingStation, Connector
from ocpp_gateway.models import ChargingStateChange, MeterValue, Transaction

logger = logging.getLogger(__name__)

OCPI_TARIFF_FIELDS = (
    "country_code",
    "party_id",
    "id",
    "currency",
    "type",
    "tariff_alt_text",
    "tariff_alt_url",
    "min_price",
    "max_price",
    "elements",
    "start_date_time",
    "end_date_time",
    "energy_mix",
    "last_updated",
)


def _exact(value: Any) -> Any:
    """JSON numbers from a parsed OCPI object as Decimal (floats through their repr), recursively."""
    if isinstance(value, float):
        return as_decimal(value)
    if isinstance(value, list):
        return [_exact(item) for item in value]
    if isinstance(value, dict):
        return {key: _exact(item) for key, item in value.items()}
    return value


@transaction.atomic
def tariff_upsert_from_ocpi(*, data: dict) -> Tariff:
    """Create or replace a Tariff from an OCPI Tariff object (a parsed JSON dict, e.g. an example of the
    spec). `last_updated` in the input is ignored: ours moves on every save. Raises ValidationError on bad
    input."""
    unknown = set(data) - set(OCPI_TARIFF_FIELDS)
    if unknown:
        raise ValidationError(f"unknown Tariff field(s): {', '.join(sorted(unknown))}")
    data = _exact(data)
    tariff = Tariff.objects.filter(pk=data.get("id")).first() or Tariff(id=data.get("id"))
    tariff.country_code = data.get("country_code")
    tariff.party_id = data.get("party_id")
    tariff.currency = data.get("currency")
    tariff.type = data.get("type")
    tariff.tariff_alt_text = data.get("tariff_alt_text") or []
    tariff.tariff_alt_url = data.get("tariff_alt_url") or ""
    for name in ("min_price", "max_price"):
        price = data.get(name) or {}
        setattr(tariff, f"{name}_excl_vat", price.get("excl_vat"))
        setattr(tariff, f"{name}_incl_vat", price.get("incl_vat"))
    tariff.elements = data.get("elements")
    for name in ("start_date_time", "end_date_time"):
        value = data.get(name)
        setattr(tariff, name, parse_datetime(value) if isinstance(value, str) else value)
    tariff.energy_mix = data.get("energy_mix")
    tariff.full_clean()
    tariff.save()
    return tariff


@transaction.atomic
def tariff_seed_demo(*, tariff_id: str) -> Tariff:
    """The demo AC tariff of this CPO: € 1.00 start fee and € 0.35 per kWh (both excl. VAT, 21% VAT as in the
    Netherlands), energy billed per Wh. Idempotent: an existing tariff with this id is left as staff last
    edited it. The alternative text holds no prices: "the tariff_alt_text SHALL only contain additional tariff
    information in human-readable text, not the price information that is also available via the elements
    field" (mod_tariffs)."""
    tariff = Tariff.objects.filter(pk=tariff_id).first()
    if tariff is not None:
        return tariff
    tariff = Tariff(
        id=tariff_id,
        country_code=settings.OCPI_COUNTRY_CODE,
        party_id=settings.OCPI_PARTY_ID,
        currency="EUR",
        type=None,
        tariff_alt_text=[
            {"language": "en", "text": "Start fee once per session; energy billed per Wh."},
            {"language": "nl", "text": "Starttarief eenmaal per sessie; energie per Wh afgerekend."},
        ],
        elements=[
            {
                "price_components": [
                    {"type": "FLAT", "price": Decimal("1.00"), "vat": Decimal("21.0"), "step_size": 1},
                    {"type": "ENERGY", "price": Decimal("0.35"), "vat": Decimal("21.0"), "step_size": 1},
                ]
            },
        ],
    )
    tariff.full_clean()
    tariff.save()
    return tariff


# --- Sessions and CDRs
# ----------------------------------------------------------------------------------------------
#
# A Session is derived from its gateway Transaction, never edited by hand: `session_sync` recomputes it from the
# transaction, its meter values and its charging states every time, so running it twice (or on two workers) gives
# the same row. `cdr_create` recomputes the same usage, prices it with the same engine and the same tariff
# snapshot, and writes the Session and its CDR from that one result, so the two never disagree. Both lock the
# transaction row first (`select_for_update`), which serialises concurrent calls on PostgreSQL; the unique
# constraints (one Session per transaction, one CDR per session, one credit per CDR) back this up everywhere.

ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER_ACTIVE = "Power.Active.Import"
CURRENT_IMPORT = "Current.Import"
STATE_OF_CHARGE = "SoC"
# ChargingStateEnumType values in which the EV does not request power (PARKING_TIME, mod_cdrs errata). Before
# charging has begun, EVConnected/Idle are the plug-in handshake, not parking; SuspendedEV always is.
PARKING_STATES = {"SuspendedEV", "EVConnected", "Idle"}
CHARGING_BEGUN_STATES = {"Charging", "SuspendedEVSE", "SuspendedEV"}
# 2.0.1 IdTokenEnumType -> OCPI TokenType, when the authorizer did not say (1.6 idTags are RFID cards).
ID_TOKEN_TYPES = {"": "RFID", "ISO14443": "RFID", "ISO15693": "RFID", "Central": "APP_USER", "eMAID": "APP_USER"}
# Prices a session that has no tariff: the same periods (charging/parking), no cost, no tariff_id.
NO_TARIFF = {
    "id": "",
    "currency": "",
    "elements": [
        {
            "price_components": [
                {"type": kind, "price": Decimal(0), "step_size": 0}
                for kind in ("ENERGY", "TIME", "PARKING_TIME")
            ]
        }
    ],
}


class NotBillable(ValueError):
    """The transaction cannot (yet) become an OCPI Session, or the session a CDR; the message says why. Retrying
    later may help (e.g. a 2.0.1 transaction whose EVSE is not known yet)."""


def _transaction_locked(*, transaction_pk: int) -> Transaction:
    """The transaction row, locked until the caller's transaction ends (no-op on SQLite, which serialises
    writers anyway)."""
    return Transaction.objects.select_for_update().get(pk=transaction_pk)


def _connector_of(*, tx: Transaction, evse: EVSE) -> Connector | None:
    """OCPP 1.6: the EVSE's only connector (the OCPP connectorId names the EVSE). 2.0.1: connectorId is the OCPI
    Connector.id; the first connector when it is unknown."""
    connectors = list(evse.connectors.order_by("connector_id"))
    if len(connectors) <= 1 or tx.connector_id is None:
        return connectors[0] if connectors else None
    return next((c for c in connectors if c.connector_id == str(tx.connector_id)), connectors[0])


def tariff_for_connector(*, connector: Connector, at: datetime) -> Tariff | None:
    """The first tariff of `connector.tariff_ids` that exists and is valid at `at` (the session start: "a
    driver accepts the tariff which is valid when they start their charging session")."""
    for tariff_id in connector.tariff_ids or []:
        tariff = Tariff.objects.filter(pk=tariff_id).first()
        if tariff is None:
            continue
        if tariff.start_date_time is not None and at < tariff.start_date_time:
            continue
        if tariff.end_date_time is not None and at >= tariff.end_date_time:
            continue
        return tariff
    return None


def cdr_location_snapshot(*, evse: EVSE, connector: Connector) -> dict:
    """OCPI CdrLocation (mod_cdrs): the Location with only this EVSE and connector, as it is now."""
    location = evse.location
    data: dict[str, Any] = {"id": location.id}
    if location.name:
        data["name"] = location.name
    data.update(address=location.address, city=location.city)
    if location.postal_code:
        data["postal_code"] = location.postal_code
    if location.state:
        data["state"] = location.state
    data.update(
        country=location.country,
        coordinates={"latitude": str(location.latitude), "longitude": str(location.longitude)},
        evse_uid=evse.uid,
        evse_id=evse.evse_id or evse.uid,
        connector_id=connector.connector_id,
        connector_standard=connector.standard,
        connector_format=connector.format,
        connector_power_type=connector.power_type,
    )
    return data


def _cdr_token(*, tx: Transaction) -> dict:
    """OCPI CdrToken. Tokens of this CPO's own customers carry this CPO's party; `contract_id` falls back to the
    uid when the token has none."""
    return {
        "country_code": tx.token_country_code or settings.OCPI_COUNTRY_CODE,
        "party_id": tx.token_party_id or settings.OCPI_PARTY_ID,
        "uid": tx.token_uid or tx.id_tag,
        "type": tx.token_type or ID_TOKEN_TYPES.get(tx.id_token_type, "OTHER"),
        "contract_id": tx.contract_id or tx.token_uid or tx.id_tag,
    }


def _session_status(*, tx: Transaction) -> str:
    """INVALID when we refused the token (the charger may charge anyway, e.g. offline): such a session "will not
    be billed". PENDING while a 2.0.1 transaction has no token yet; COMPLETED once the transaction ended."""
    ended = tx.status == Transaction.Status.ENDED
    if tx.auth_status and tx.auth_status != "Accepted":
        return SessionStatus.INVALID
    if not tx.id_tag:
        return SessionStatus.INVALID if ended else SessionStatus.PENDING
    return SessionStatus.COMPLETED if ended else SessionStatus.ACTIVE


# --- Usage from what the charger reported


def _whole_device(rows: list[tuple]) -> dict[datetime, Decimal]:
    """(timestamp, value, phase, location) rows of one measurand -> one value per timestamp: the unphased value
    when there is one, else the sum over the phases L1, L2, L3; outlet side preferred over inlet/EV."""
    outlet = [r for r in rows if r[3] not in ("Inlet", "EV")]
    rows = outlet or rows
    unphased: dict[datetime, Decimal] = {}
    phased: dict[datetime, dict[str, Decimal]] = {}
    for timestamp, value, phase, _location in rows:
        if not phase:
            unphased[timestamp] = max(unphased.get(timestamp, value), value)
        elif phase in ("L1", "L2", "L3"):
            phased.setdefault(timestamp, {})[phase] = value
    result = {t: sum(values.values(), Decimal(0)) for t, values in phased.items()}
    result.update(unphased)
    return result


def _readings(*, tx: Transaction, measurand: str) -> dict[datetime, Decimal]:
    """A measurand of the transaction in base units (Wh, W, A), one value per timestamp, aware UTC."""
    rows = MeterValue.objects.filter(transaction=tx, measurand=measurand, value__isnull=False).values_list(
        "timestamp", "value", "unit", "phase", "location"
    )
    scaled = [
        (t.astimezone(dt.timezone.utc), v * 1000 if unit in ("kWh", "kW") else v, phase, location)
        for t, v, unit, phase, location in rows
    ]
    return _whole_device(scaled)


def _interpolated(points: list[tuple[datetime, Decimal]], at: datetime) -> Decimal:
    before = [(t, e) for t, e in points if t <= at]
    after = [(t, e) for t, e in points if t > at]
    if not before:
        return Decimal(0)
    t0, e0 = before[-1]
    if not after:
        return e0
    t1, e1 = after[0]
    us = dt.timedelta(microseconds=1)
    fraction = Decimal((at - t0) // us) / Decimal((t1 - t0) // us)
    return e0 + (e1 - e0) * fraction


def session_usage(*, tx: Transaction, time_zone: str, now: datetime | None = None) -> SessionUsage:
    """What the charger reported, as the pricing engine's `SessionUsage`.

    Energy is the Energy.Active.Import.Register since `meter_start` (kWh, never negative, never decreasing, and
    never above the stop reading once the transaction ended). A running session is priced up to `now` (the
    energy held at the last reading). A sample is marked `charging=False` (parking) while the latest charging
    state is SuspendedEV, or EVConnected/Idle after charging has begun (a Charging, SuspendedEVSE or SuspendedEV
    state, or energy already delivered); `charging_end_date_time` is the start of a final non-charging stretch.
    Power (Power.Active.Import, kW) and current (Current.Import, A, summed over phases) are attached to the
    energy readings taken at the same instant."""
    start = tx.started_at.astimezone(dt.timezone.utc)
    ended = tx.status == Transaction.Status.ENDED and tx.ended_at is not None
    energy_wh = _readings(tx=tx, measurand=ENERGY_REGISTER)
    states = [
        (change.timestamp.astimezone(dt.timezone.utc), change.charging_state)
        for change in ChargingStateChange.objects.filter(transaction=tx).order_by("timestamp", "id")
    ]
    if ended:
        end = max(tx.ended_at, tx.started_at).astimezone(dt.timezone.utc)
    else:
        latest = [t for t in energy_wh] + [t for t, _ in states]
        end = max([timezone.now() if now is None else now, start, *latest])
    final_kwh = None
    if ended and tx.meter_stop is not None:
        final_kwh = max((tx.meter_stop - tx.meter_start) / 1000, Decimal(0))
    points: list[tuple[datetime, Decimal]] = []
    level = Decimal(0)
    for t in sorted(t for t in energy_wh if start <= t <= end):
        kwh = max((energy_wh[t] - tx.meter_start) / 1000, Decimal(0))
        if final_kwh is not None:
            kwh = min(kwh, final_kwh)
        level = max(level, kwh)
        points.append((t, level))
    if final_kwh is not None:
        points = [(t, e) for t, e in points if t < end] + [(end, max(level, final_kwh))]
    power_w = _readings(tx=tx, measurand=POWER_ACTIVE)
    current_a = _readings(tx=tx, measurand=CURRENT_IMPORT)

    begun_at = next((t for t, state in states if state in CHARGING_BEGUN_STATES), None)
    first_energy = next((t for t, e in points if e > 0), None)
    begun_candidates = [t for t in (begun_at, first_energy) if t is not None]
    begun = min(begun_candidates) if begun_candidates else None

    def parking(at: datetime) -> bool:
        current = [state for t, state in states if t <= at]
        if not current or current[-1] not in PARKING_STATES:
            return False
        return current[-1] == "SuspendedEV" or (begun is not None and begun <= at)

    instants = sorted({t for t, _ in points} | {t for t, _ in states if start <= t <= end})
    energy_at = dict(points)
    samples = []
    for t in instants:
        power = power_w.get(t) if t in energy_wh else None
        samples.append(
            MeterSample(
                timestamp=t,
                energy_kwh=energy_at[t] if t in energy_at else _interpolated(points, t),
                power_kw=None if power is None else power / 1000,
                current_a=current_a.get(t) if t in energy_wh else None,
                charging=not parking(t),
            )
        )
    charging_end = None
    for sample in reversed(samples):
        if sample.charging:
            break
        charging_end = sample.timestamp
    return SessionUsage(
        start_date_time=start,
        end_date_time=end,
        time_zone=time_zone,
        samples=samples,
        charging_end_date_time=charging_end,
    )


# --- Measured dimensions of the charging periods


def _period_bounds(*, starts: list[datetime], end: datetime) -> list[tuple[datetime, datetime, bool]]:
    """(start, end, last) per period: "a period ends when the next period starts. The last period ends when the
    session ends" (mod_cdrs ChargingPeriod). The last one includes its end instant."""
    ends = starts[1:] + [max(end, starts[-1])] if starts else []
    return [(a, b, i == len(starts) - 1) for i, (a, b) in enumerate(zip(starts, ends))]


def _in_period(t: datetime, a: datetime, b: datetime, last: bool) -> bool:
    return a <= t < b or (last and t == b)


def _volume(value: Decimal) -> Decimal:
    return value.quantize(QUANTITY, ROUND_HALF_UP)


def _phase_extreme(rows: list[tuple], pick) -> Decimal:
    """MAX_CURRENT/MIN_CURRENT: "Sum of the maximum (minimum) current over all phases" (mod_cdrs): the extreme of
    each phase L1-L3 over the period, summed; a whole-device (unphased) value, when the charger sends one, is
    taken as it is instead."""
    unphased = [r[1] for r in rows if not r[2]]
    if unphased:
        return pick(unphased)
    per_phase: dict[str, list[Decimal]] = {}
    for _t, value, phase, _location in rows:
        if phase in ("L1", "L2", "L3"):
            per_phase.setdefault(phase, []).append(value)
    return sum((pick(values) for values in per_phase.values()), Decimal(0))


def _measured_dimensions(*, tx: Transaction, periods: list[dict], end: datetime) -> list[dict]:
    """`periods` (the pricing engine's, datetimes in UTC) with the dimensions measured inside each period added,
    from the transaction's meter values taken in [start, next start) (the last period up to and including
    `end`):

    * MIN_POWER / MAX_POWER (kW, W converted) and POWER, the average (Session only): Power.Active.Import as
      whole-device values (the unphased value, else the sum over L1-L3), outlet side preferred;
    * MIN_CURRENT / MAX_CURRENT (A): per phase, summed (see `_phase_extreme`); CURRENT, the average (Session
      only): the whole-device current per reading (unphased, else summed over L1-L3), averaged;
    * STATE_OF_CHARGE (%, Session only): the last SoC value in the period, wherever it was measured (EV side).

    Averages are the mean of the readings in the period. A dimension is left out when the period has no reading
    of its measurand, and never added twice: MIN/MAX_POWER/CURRENT that the engine already reports (when a tariff
    restricts power or current) stay as the engine computed them, since they are what it priced on. Costs and
    totals are not touched."""
    rows = list(
        MeterValue.objects.filter(
            transaction=tx, measurand__in=[POWER_ACTIVE, CURRENT_IMPORT, STATE_OF_CHARGE], value__isnull=False
        )
        .order_by("timestamp", "id")
        .values_list("measurand", "timestamp", "value", "unit", "phase", "location")
    )
    if not rows:
        return periods
    by_measurand: dict[str, list[tuple]] = {POWER_ACTIVE: [], CURRENT_IMPORT: [], STATE_OF_CHARGE: []}
    for measurand, t, value, unit, phase, location in rows:
        value = value * 1000 if unit in ("kW", "kWh") else value
        by_measurand[measurand].append((t.astimezone(dt.timezone.utc), value, phase, location))

    def outlet(items: list[tuple]) -> list[tuple]:
        return [r for r in items if r[3] not in ("Inlet", "EV")] or items

    power_rows, current_rows = outlet(by_measurand[POWER_ACTIVE]), outlet(by_measurand[CURRENT_IMPORT])
    bounds = _period_bounds(starts=[p["start_date_time"] for p in periods], end=end)
    result = []
    for period, (a, b, last) in zip(periods, bounds):
        dimensions = list(period["dimensions"])
        present = {d["type"] for d in dimensions}

        def add(kind: str, volume: Decimal) -> None:
            if kind not in present:
                dimensions.append({"type": kind, "volume": _volume(volume)})
                present.add(kind)

        power = [r for r in power_rows if _in_period(r[0], a, b, last)]
        if power:
            kw = [w / 1000 for w in _whole_device(power).values()]
            add("MIN_POWER", min(kw))
            add("MAX_POWER", max(kw))
        current = [r for r in current_rows if _in_period(r[0], a, b, last)]
        if current:
            add("MIN_CURRENT", _phase_extreme(current, min))
            add("MAX_CURRENT", _phase_extreme(current, max))
        if power:
            add("POWER", sum(kw, Decimal(0)) / len(kw))
        if current:
            amps = list(_whole_device(current).values())
            add("CURRENT", sum(amps, Decimal(0)) / len(amps))
        soc = [r for r in by_measurand[STATE_OF_CHARGE] if _in_period(r[0], a, b, last)]
        if soc:
            add("STATE_OF_CHARGE", min(max(soc[-1][1], Decimal(0)), Decimal(100)))
        result.append({**period, "dimensions": dimensions})
    return result


def cdr_charging_periods(*, periods: list[dict]) -> list[dict]:
    """A Session's charging periods as a CDR may carry them: without the "Session Only" dimensions (CURRENT,
    ENERGY_EXPORT, ENERGY_IMPORT, POWER, STATE_OF_CHARGE; mod_cdrs CdrDimensionType)."""
    return [
        {**p, "dimensions": [d for d in p["dimensions"] if d["type"] not in SESSION_ONLY_DIMENSION_TYPES]}
        for p in periods
    ]


# --- Writing the Session


@dataclass(frozen=True)
class _Synced:
    session: Session
    priced: PricedSession | None  # None when the session is final (its CDR exists) and was left as it is
    tariff: dict | None  # the OCPI tariff snapshot used, None when no tariff applies


def _session_new(*, tx: Transaction) -> Session:
    """A Session for `tx` with the snapshots taken now (its start): tariff, CdrLocation, meter."""
    evse = EVSE.objects.select_related("location").filter(pk=tx.evse_id).first()
    if evse is None:
        raise NotBillable(f"transaction {tx.pk} has no EVSE (station without location?): no OCPI Session")
    connector = _connector_of(tx=tx, evse=evse)
    if connector is None:
        raise NotBillable(f"EVSE {evse.uid} has no connector: no OCPI Session")
    tariff = tariff_for_connector(connector=connector, at=tx.started_at)
    if tariff is None:
        logger.warning(
            "no tariff for connector %s of EVSE %s (tariff_ids %r): session of transaction %s has no total_cost",
            connector.connector_id,
            evse.uid,
            connector.tariff_ids,
            tx.pk,
        )
    station = ChargingStation.objects.filter(pk=tx.station_id).first()
    return Session(
        country_code=settings.OCPI_COUNTRY_CODE,
        party_id=settings.OCPI_PARTY_ID,
        id=str(uuid.uuid4()),
        transaction=tx,
        start_date_time=tx.started_at,
        location_id=evse.location_id,
        evse_uid=evse.uid,
        connector_id=connector.connector_id,
        meter_id=station.meter_serial_number if station else "",
        currency=tariff.currency if tariff else getattr(settings, "BILLING_DEFAULT_CURRENCY", "EUR"),
        tariffs=[tariff_as_ocpi(tariff=tariff)] if tariff else [],
        cdr_location=cdr_location_snapshot(evse=evse, connector=connector),
    )


def _session_write(*, tx: Transaction, now: datetime | None) -> _Synced:
    """Create or update the Session of the locked `tx` from its usage. A session whose CDR exists is final and
    left as it is."""
    session = Session.objects.filter(transaction=tx).first()
    if session is None:
        session = _session_new(tx=tx)
    tariff = session.tariffs[0] if session.tariffs else None
    if not session._state.adding and Cdr.objects.filter(session=session, credit=False).exists():
        return _Synced(session, None, tariff)
    evse = EVSE.objects.select_related("location").filter(pk=tx.evse_id).first()
    time_zone = evse.location.time_zone if evse else "UTC"
    usage = session_usage(tx=tx, time_zone=time_zone, now=now)
    priced = price_session(tariff=tariff or NO_TARIFF, usage=usage)
    measured = _measured_dimensions(tx=tx, periods=priced.charging_periods, end=usage.end_date_time)
    periods = priced_session_as_ocpi(priced=replace(priced, charging_periods=measured))["charging_periods"]
    if tariff is None:
        periods = [{key: value for key, value in p.items() if key != "tariff_id"} for p in periods]
    values = dict(
        start_date_time=tx.started_at,
        end_date_time=tx.ended_at if tx.status == Transaction.Status.ENDED else None,
        kwh=priced.total_energy,
        cdr_token=_cdr_token(tx=tx),
        auth_method=tx.auth_method or AuthMethod.WHITELIST,
        authorization_reference=tx.authorization_reference,
        emsp_country_code=tx.token_country_code,
        emsp_party_id=tx.token_party_id,
        charging_periods=periods,
        total_cost_excl_vat=priced.total_cost.excl_vat if tariff else None,
        total_cost_incl_vat=priced.total_cost.incl_vat if tariff else None,
        status=_session_status(tx=tx),
    )
    if not session._state.adding and all(getattr(session, name) == value for name, value in values.items()):
        return _Synced(session, priced, tariff)  # nothing changed: last_updated stays, nothing to push
    for name, value in values.items():
        setattr(session, name, value)
    if session._state.adding:
        try:
            with transaction.atomic():
                session.save(force_insert=True)
        except IntegrityError:
            # Another worker created it first (only possible where select_for_update is a no-op): theirs wins.
            session = Session.objects.get(transaction=tx)
            return _session_write(tx=tx, now=now)
    else:
        session.save()
    return _Synced(session, priced, tariff)


def session_sync(*, transaction_pk: int, now: datetime | None = None) -> Session:
    """Create or update the OCPI Session of gateway transaction `transaction_pk`: kwh, charging periods and the
    running `total_cost` priced with the tariff snapshot taken at its start (None without a tariff), status
    ACTIVE, COMPLETED once the transaction ended (INVALID for a refused token, PENDING without a token yet).
    A running session is priced up to `now` (default: the current time).

    Idempotent and safe on two workers at once: the transaction row is locked for the caller's database
    transaction (callers wrap this in `transaction.atomic()` with their outbox write). Once the session's CDR
    exists the session is final and returned unchanged. Raises `NotBillable` when the transaction has no EVSE."""
    with transaction.atomic():
        tx = _transaction_locked(transaction_pk=transaction_pk)
        return _session_write(tx=tx, now=now).session


# --- CDRs


def _negative(value: Decimal | None) -> Decimal | None:
    return None if value is None else -value


def _or_none(value: Decimal) -> Decimal | None:
    """Optional CDR amounts are left out when zero, as in the spec's example."""
    return value if value else None


def signed_data_of(*, tx: Transaction) -> dict | None:
    """OCPI SignedData from the signed meter values the charger sent for this transaction, or None.

    2.0.1 SignedMeterValueType (`signedMeterData` base64, `encodingMethod`, `publicKey`) maps field for field;
    a 1.6 `SignedData` value is a string: `encoding_method` is OCMF when it starts with "OCMF|", else the
    charger's meter type. `nature` follows the reading's context: Transaction.Begin -> Start, Transaction.End ->
    End, else Intermediate. `plain_data` is the unsigned reading as the charger sent it next to the signature
    (the OCMF payload for OCMF)."""
    rows = list(
        MeterValue.objects.filter(transaction=tx, signed_data__isnull=False)
        .exclude(measurand__in=[POWER_ACTIVE, CURRENT_IMPORT])
        .order_by("timestamp", "id")
    )
    if not rows:
        return None
    station = ChargingStation.objects.filter(pk=tx.station_id).first()
    encoding_method, public_key, values = "", "", []
    for row in rows:
        raw = row.signed_data
        if isinstance(raw, dict):
            blob = raw.get("signed_meter_data") or raw.get("signedMeterData") or ""
            encoding_method = encoding_method or raw.get("encoding_method") or raw.get("encodingMethod") or ""
            public_key = public_key or raw.get("public_key") or raw.get("publicKey") or ""
        else:
            text = str(raw)
            if text.startswith("OCMF|"):
                encoding_method = encoding_method or "OCMF"
            blob = text if _is_base64(text) else base64.b64encode(text.encode()).decode()
        if isinstance(raw, str) and raw.startswith("OCMF|"):
            plain = raw.split("|")[1] if raw.count("|") >= 2 else raw
        else:
            plain = f"{ocpi_datetime(row.timestamp)} {row.measurand} {'' if row.value is None else row.value} {row.unit}"
        nature = {"Transaction.Begin": "Start", "Transaction.End": "End"}.get(row.context, "Intermediate")
        values.append({"nature": nature, "plain_data": plain.strip()[:5000], "signed_data": blob[:5000]})
    data: dict[str, Any] = {
        "encoding_method": (encoding_method or (station.meter_type if station else "") or "UNKNOWN")[:36]
    }
    if public_key:
        data["public_key"] = public_key[:512]
    data["signed_values"] = values
    return data


def _is_base64(text: str) -> bool:
    try:
        return bool(text) and base64.b64encode(base64.b64decode(text, validate=True)).decode() == text
    except (binascii.Error, ValueError):
        return False


ORDINARY_STOPS = {"", "Local", "Remote", "EVDisconnected", "StoppedByEV"}


def _remark(*, tx: Transaction) -> str:
    """The reason a transaction stopped, when it is worth telling the EMSP (a fault, a reboot, ...)."""
    return "" if tx.stop_reason in ORDINARY_STOPS else f"Transaction stopped: {tx.stop_reason}"[:255]


def cdr_create(*, session: Session) -> Cdr:
    """The CDR of a COMPLETED session, exactly once: a second call (or a concurrent one on another worker)
    returns the existing CDR. The session is re-synced and priced from its final usage in the same step, and
    the session and the CDR are written from that one result. Its id is the session's id (unique per party:
    one CDR per session). Without a tariff the CDR is free of charge (total_cost 0, no tariffs, periods without
    tariff_id) and a warning is logged. Raises `NotBillable` for a session that is not COMPLETED."""
    with transaction.atomic():
        tx = _transaction_locked(transaction_pk=session.transaction_id)
        existing = Cdr.objects.filter(session_id=session.pk, credit=False).first()
        if existing is not None:
            return existing
        synced = _session_write(tx=tx, now=None)
        session, priced = synced.session, synced.priced
        if session.status != SessionStatus.COMPLETED:
            raise NotBillable(f"session {session.id} is {session.status}, not COMPLETED: no CDR")
        if synced.tariff is None:
            logger.warning("session %s has no tariff: its CDR is free of charge", session.id)
        cdr = Cdr(
            country_code=session.country_code,
            party_id=session.party_id,
            id=session.id,
            session=session,
            emsp_country_code=session.emsp_country_code,
            emsp_party_id=session.emsp_party_id,
            start_date_time=session.start_date_time,
            end_date_time=session.end_date_time,
            cdr_token=session.cdr_token,
            auth_method=session.auth_method,
            authorization_reference=session.authorization_reference,
            cdr_location=session.cdr_location,
            meter_id=session.meter_id,
            currency=session.currency,
            tariffs=session.tariffs,
            charging_periods=cdr_charging_periods(periods=session.charging_periods),
            signed_data=signed_data_of(tx=tx),
            total_cost_excl_vat=priced.total_cost.excl_vat,
            total_cost_incl_vat=priced.total_cost.incl_vat,
            total_fixed_cost_excl_vat=_or_none(priced.total_fixed_cost.excl_vat),
            total_fixed_cost_incl_vat=_or_none(priced.total_fixed_cost.incl_vat),
            total_energy=priced.total_energy,
            total_energy_cost_excl_vat=_or_none(priced.total_energy_cost.excl_vat),
            total_energy_cost_incl_vat=_or_none(priced.total_energy_cost.incl_vat),
            total_time=priced.total_time,
            total_time_cost_excl_vat=_or_none(priced.total_time_cost.excl_vat),
            total_time_cost_incl_vat=_or_none(priced.total_time_cost.incl_vat),
            total_parking_time=_or_none(priced.total_parking_time),
            total_parking_cost_excl_vat=_or_none(priced.total_parking_cost.excl_vat),
            total_parking_cost_incl_vat=_or_none(priced.total_parking_cost.incl_vat),
            total_reservation_cost_excl_vat=_or_none(priced.total_reservation_cost.excl_vat),
            total_reservation_cost_incl_vat=_or_none(priced.total_reservation_cost.incl_vat),
            remark=_remark(tx=tx),
        )
        if synced.tariff is None:
            cdr.total_cost_excl_vat = cdr.total_cost_incl_vat = Decimal(0)
        try:
            with transaction.atomic():
                cdr.save(force_insert=True)
        except IntegrityError:
            existing = Cdr.objects.filter(session_id=session.pk, credit=False).first()
            if existing is None:
                raise
            return existing
        return cdr


COST_FIELDS = tuple(
    f"{name}_{part}"
    for name in (
        "total_cost",
        "total_fixed_cost",
        "total_energy_cost",
        "total_time_cost",
        "total_parking_cost",
        "total_reservation_cost",
    )
    for part in ("excl_vat", "incl_vat")
)


def cdr_credit(*, cdr: Cdr, reason: str = "") -> Cdr:
    """A credit CDR for `cdr` (mod_cdrs "Credit CDRs"): all the data of the original, id `<original id>-C`,
    `credit=True`, `credit_reference_id` the original's id, every cost total negated (the dimension costs too,
    so they still add up to `total_cost`; energy and durations stay as they were), `remark` the reason. The
    original is never edited. Idempotent: a CDR has at most one credit (a second call returns it). Raises
    ValueError for a credit CDR."""
    with transaction.atomic():
        original = Cdr.objects.select_for_update().get(pk=cdr.pk)
        if original.credit:
            raise ValueError(f"CDR {original.id} is itself a credit CDR")
        existing = Cdr.objects.filter(credit=True, credit_reference=original).first()
        if existing is not None:
            return existing
        credit = Cdr(
            **{
                f.attname: getattr(original, f.attname)
                for f in Cdr._meta.concrete_fields
                if f.attname not in ("id", "last_updated", "credit", "credit_reference_id", "remark")
            }
        )
        credit.id = f"{original.id}-C"
        credit.credit = True
        credit.credit_reference = original
        credit.remark = (reason or f"credit for CDR {original.id}")[:255]
        for name in COST_FIELDS:
            setattr(credit, name, _negative(getattr(original, name)))
        try:
            with transaction.atomic():
                credit.save(force_insert=True)
        except IntegrityError:
            existing = Cdr.objects.filter(credit=True, credit_reference=original).first()
            if existing is None:
                raise
            return existing
        return credit
