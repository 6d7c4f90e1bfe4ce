"""Writes of CDRs: the CDR of a completed session, written once from the same pricing as the session's final state,
and credit CDRs. A CDR is immutable; a correction is a credit CDR."""

import base64
import binascii
import copy
import logging
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, models, transaction

from billing import events
from billing.encoding import ocpi_datetime
from billing.enums import SESSION_ONLY_DIMENSION_TYPES, SessionStatus
from billing.models import Cdr, Session
from billing.services.sessions import (
    NotBillable,
    SessionWritten,
    session_priced,
    session_save,
    session_write,
    transaction_lock,
)
from cpo.models import ChargingStation
from ocpp_gateway.measurands import CURRENT_IMPORT, POWER_ACTIVE
from ocpp_gateway.models import MeterValue, Transaction

logger = logging.getLogger(__name__)


def cdr_charging_periods(*, periods: list[dict]) -> list[dict]:
    """A Session's charging periods as a CDR may carry them: without the "Session Only" dimensions (CURRENT,
    ENERGY_EXPORT, ENERGY_IMPORT, POWER, STATE_OF_CHARGE; mod_cdrs CdrDimensionType)."""
    return [
        {**p, "dimensions": [d for d in p["dimensions"] if d["type"] not in SESSION_ONLY_DIMENSION_TYPES]}
        for p in periods
    ]


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
            plain = (
                f"{ocpi_datetime(row.timestamp)} {row.measurand} {'' if row.value is None else row.value} {row.unit}"
            )
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


def cdr_issue(*, tx: Transaction | None, written: SessionWritten, remark: str = "") -> Cdr:
    """Write the CDR of the session just written from `tx` (`session_write`), from the same pricing (the session is
    priced once), and announce it (`billing.events.cdr_issued`). Its id is the session's id (unique per party: one
    CDR per session). Without a tariff the CDR is free of charge (total_cost 0, no tariffs, periods without
    tariff_id) and a warning is logged. A CDR another worker wrote first is returned instead (and not announced
    again). `tx` is None for a reservation that never became a charging session (its CDR carries only the
    reservation's cost; `remark` says why it ended). Preconditions: the caller holds `tx`'s row lock (or the
    reservation's) and the session has no CDR yet. Raises `NotBillable` for a session that is not COMPLETED."""
    session = written.session
    if session.status != SessionStatus.COMPLETED or written.priced is None:
        raise NotBillable(f"session {session.id} is {session.status}, not COMPLETED: no CDR")
    if written.tariff is None:
        logger.warning("session %s has no tariff: its CDR is free of charge", session.id)
    cdr = _cdr_of(tx=tx, written=written, remark=remark)
    try:
        with transaction.atomic():
            cdr.save(force_insert=True)
    except IntegrityError:
        existing = Cdr.objects.filter(session_id=session.pk, credit=False).first()
        if existing is None:
            raise
        return existing
    events.announce(events.cdr_issued, cdr=cdr)
    return cdr


def _cdr_of(*, tx: Transaction | None, written: SessionWritten, remark: str = "") -> Cdr:
    """The CDR (not saved) of the COMPLETED session in `written`, priced as `written.priced`, with the session's id."""
    session, priced = written.session, written.priced
    assert priced is not None
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
        signed_data=signed_data_of(tx=tx) if tx is not None else None,
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
        remark=_remark(tx=tx) if tx is not None else remark,
    )
    if written.tariff is None:
        cdr.total_cost_excl_vat = cdr.total_cost_incl_vat = Decimal(0)
    return cdr


def cdr_create(*, session: Session) -> Cdr:
    """The CDR of a COMPLETED session, exactly once: a second call (or a concurrent one on another worker)
    returns the existing CDR. The session is re-synced from its final usage in the same step and the session and
    the CDR are written from that one pricing (see `cdr_issue`). Raises `NotBillable` for a session that is not
    COMPLETED."""
    if session.transaction_id is None:
        raise NotBillable(f"session {session.id} is a reservation's: billing.services.reservation_bill writes its CDR")
    with transaction.atomic():
        tx = transaction_lock(transaction_pk=session.transaction_id)
        existing = Cdr.objects.filter(session_id=session.pk, credit=False).first()
        if existing is not None:
            return existing
        return cdr_issue(tx=tx, written=session_write(tx=tx))


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


def _credit_id(*, cdr: Cdr) -> str:
    """`<id>-C`; `<session id>-C<n>` for re-issue `<session id>-R<n>` (OCPI ids are 39 characters at most)."""
    if cdr.reissue_of_id is None:
        return f"{cdr.id}-C"
    base, _, n = cdr.id.rpartition("-R")
    return f"{base}-C{n}"


def cdr_credit(*, cdr: Cdr, reason: str = "") -> Cdr:
    """A credit CDR for `cdr` (mod_cdrs "Credit CDRs"): all the data of the original, id `<original id>-C`
    (`<session id>-C<n>` for re-issue n),
    `credit=True`, `credit_reference_id` the original's id, every cost total negated (the dimension costs too,
    so they still add up to `total_cost`; energy and durations stay as they were), `remark` the reason. The
    original is never edited. The credit is announced like any CDR (`cdr_issued`: it goes to the same EMSP).
    Idempotent: a CDR has at most one credit (a second call returns it). Raises ValueError for a credit CDR."""
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
                if f.attname not in ("id", "last_updated", "credit", "credit_reference_id", "reissue_of_id", "remark")
            }
        )
        credit.id = _credit_id(cdr=original)
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
        events.announce(events.cdr_issued, cdr=credit)
        return credit


# What a late stop may change in an issued CDR: when none of these differ, the partner keeps the CDR it has.
CORRECTED_FIELDS = (
    "start_date_time",
    "end_date_time",
    "total_energy",
    "total_time",
    "total_parking_time",
    *COST_FIELDS,
)


def _same(*, name: str, issued: Any, priced: Any) -> bool:
    field = Cdr._meta.get_field(name)
    if isinstance(field, models.DecimalField) and issued is not None and priced is not None:
        step = Decimal(1).scaleb(-field.decimal_places)
        return Decimal(issued).quantize(step) == Decimal(priced).quantize(step)
    return issued == priced


def cdr_correct(*, transaction_pk: int) -> list[Cdr]:
    """A late stop from the charger corrected the meter_stop / ended_at of a transaction we had ended ourselves
    (`ocpp_gateway` `transaction_stop_corrected`) after its CDR was issued: when the corrected transaction prices
    differently (energy, time, cost), credit the session's current CDR (`cdr_credit`), update the Session to the
    final values, then re-issue the CDR with them (id `<session id>-R<n>`, `reissue_of` the credited CDR; mod_cdrs
    "Credit CDRs": the new CDR after the credit), all announced (`cdr_issued`, `session_changed`) in that order,
    which is the order the partner gets them in. Returns
    [credit, re-issue], or [] when nothing changed, there is no CDR yet (billing the transaction prices the
    corrected values anyway) or the current CDR was credited by other means. Idempotent: a run after a correction
    finds the re-issue equal to the pricing; the transaction row lock and the unique constraints cover races."""
    with transaction.atomic():
        tx = transaction_lock(transaction_pk=transaction_pk)
        session = Session.objects.filter(transaction=tx).first()
        if tx.status != Transaction.Status.ENDED or session is None:
            return []
        # One at most: a CDR that is neither a credit nor credited (the original, or its latest re-issue).
        current = Cdr.objects.filter(session=session, credit=False, credits__isnull=True).first()
        if current is None:
            return []
        values, priced = session_priced(tx=tx, session=session)
        if values["status"] != SessionStatus.COMPLETED:
            return []
        preview = copy.copy(session)  # the session as it will be: the CDR is written from it
        for name, value in values.items():
            setattr(preview, name, value)
        tariff = session.tariffs[0] if session.tariffs else None
        reissue = _cdr_of(tx=tx, written=SessionWritten(preview, priced, tariff, changed=False))
        if all(_same(name=n, issued=getattr(current, n), priced=getattr(reissue, n)) for n in CORRECTED_FIELDS):
            return []
        n = int(current.id.rpartition("-R")[2]) + 1 if current.reissue_of_id else 1
        reissue.id, reissue.session, reissue.reissue_of = f"{session.id}-R{n}", session, current
        if len(reissue.id) > 39:  # OCPI CDR id: string(39)
            logger.error("session %s: no id left to re-issue CDR %s again", session.id, current.id)
            return []
        reissue.remark = "; ".join(filter(None, [f"re-issue of CDR {current.id} (late stop)", reissue.remark]))[:255]
        credit = cdr_credit(cdr=current, reason=f"corrected by the charger's late stop: re-issued as {reissue.id}")
        session_save(session=session, values=values)
        try:
            with transaction.atomic():
                reissue.save(force_insert=True)
        except IntegrityError:
            existing = Cdr.objects.filter(reissue_of=current).first()
            if existing is None:
                raise
            return [credit, existing]
        events.announce(events.cdr_issued, cdr=reissue)
        logger.info("session %s: CDR %s credited and re-issued as %s (late stop)", session.id, current.id, reissue.id)
        return [credit, reissue]
