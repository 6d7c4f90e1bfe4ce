"""Writes of OCPI Sessions: each derived from its gateway Transaction, never edited by hand.

`session_write` recomputes the Session from the transaction, its meter values and its charging states every time, so
running it twice (or on two workers) gives the same row; the caller holds the transaction row lock
(`transaction_lock`), which serialises concurrent runs on PostgreSQL, and the unique constraint (one Session per
transaction) backs this up everywhere. Every Session written is announced (`billing.events.session_changed`) in the
same database transaction."""

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef

from billing import events
from billing.enums import AuthMethod, SessionStatus
from billing.models import Cdr, Session
from billing.pricing import PricedSession, ReservationUsage, price_session, priced_session_as_ocpi
from billing.selectors import tariff_as_ocpi, tariff_for_connector
from billing.usage import charging_periods_measured, session_usage, transaction_readings
from cpo.models import EVSE, ChargingStation, Connector
from ocpp_gateway.models import Reservation, Transaction

logger = logging.getLogger(__name__)

# 2.0.1 IdTokenEnumType -> OCPI TokenType, when the authorizer did not say (1.6 idTags are RFID cards).
ID_TOKEN_TYPES = {"": "RFID", "ISO14443": "RFID", "ISO15693": "RFID", "Central": "APP_USER", "eMAID": "APP_USER"}
# Prices a session that has no tariff: the same periods (charging/parking), no cost, no tariff_id.
NO_TARIFF = {
    "id": "",
    "currency": "",
    "elements": [
        {
            "price_components": [
                {"type": kind, "price": Decimal(0), "step_size": 0} for kind in ("ENERGY", "TIME", "PARKING_TIME")
            ]
        }
    ],
}


class NotBillable(ValueError):
    """The transaction cannot (yet) become an OCPI Session, or the session a CDR; the message says why. Retrying
    later may help (e.g. a 2.0.1 transaction whose EVSE is not known yet)."""


def transaction_lock(*, transaction_pk: int) -> Transaction:
    """The transaction row, locked until the caller's transaction ends (no-op on SQLite, which serialises
    writers anyway). Every write of billing derived from a transaction holds this lock."""
    return Transaction.objects.select_for_update().get(pk=transaction_pk)


def _connector_of(*, tx: Transaction, evse: EVSE) -> Connector | None:
    """OCPP 1.6: the EVSE's only connector (the OCPP connectorId names the EVSE). 2.0.1: connectorId is the OCPI
    Connector.id; the first connector when it is unknown."""
    connectors = list(evse.connectors.order_by("connector_id"))
    if len(connectors) <= 1 or tx.connector_id is None:
        return connectors[0] if connectors else None
    return next((c for c in connectors if c.connector_id == str(tx.connector_id)), connectors[0])


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


def cdr_token_of(*, tx: Transaction | Reservation) -> dict:
    """OCPI CdrToken of a transaction's (or a reservation's: the same fields) token. Tokens of this CPO's own
    customers carry this CPO's party; `contract_id` falls back to the uid when the token has none."""
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


FINAL_STATUSES = (SessionStatus.COMPLETED, SessionStatus.INVALID)


@dataclass(frozen=True)
class SessionWritten:
    """What `session_write` did: the session, the pricing it was written from (None when the session is final, its
    CDR written, and was left as it is) and the OCPI tariff snapshot used (None without a tariff)."""

    session: Session
    priced: PricedSession | None
    tariff: dict | None
    changed: bool  # the row was created or updated (and announced)


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


def _cdr_issued(session: Session) -> bool:
    """Whether the (saved) session's CDR exists, which makes it final (a credit is a CDR of its own): read with the
    session when it was fetched annotated with `cdr_issued`."""
    issued = getattr(session, "cdr_issued", None)
    return issued if issued is not None else Cdr.objects.filter(session=session, credit=False).exists()


def session_write(*, tx: Transaction, now: datetime | None = None) -> SessionWritten:
    """Create or update the Session of `tx` from its usage, priced once with the tariff snapshot taken at its start,
    and announce it (`session_changed`, `final` once it is COMPLETED or INVALID) when it was created or changed. A
    running session is priced up to `now` (default: the current time). A session whose CDR exists is final and left
    as it is. Precondition: the caller holds `tx`'s row lock (`transaction_lock`) in its database transaction.
    Raises `NotBillable` when the transaction has no EVSE or connector."""
    issued = Cdr.objects.filter(session=OuterRef("pk"), credit=False)
    session = Session.objects.filter(transaction=tx).annotate(cdr_issued=Exists(issued)).first()
    reservation = reservation_continued_by(tx=tx)
    attaching = False
    if session is None and reservation is not None:
        session = Session.objects.filter(reservation=reservation, transaction__isnull=True).first()
        if session is not None:  # mod_sessions: the reservation's session becomes the charging session
            session.transaction, attaching = tx, True
    if session is None:
        session = _session_new(tx=tx)
        session.reservation = reservation
    tariff = session.tariffs[0] if session.tariffs else None
    if not session._state.adding and _cdr_issued(session):
        return SessionWritten(session, None, tariff, changed=False)
    values, priced = session_priced(tx=tx, session=session, now=now)
    changed = session_save(session=session, values=values, force=attaching)
    if changed is None:
        # Another worker created it first (only possible where select_for_update is a no-op): theirs wins.
        return session_write(tx=tx, now=now)
    return SessionWritten(session, priced, tariff, changed=changed)


def session_priced(*, tx: Transaction, session: Session, now: datetime | None = None) -> tuple[dict, PricedSession]:
    """The values of `session` (of `tx`) priced from the transaction's usage with its tariff snapshot, and that
    pricing, without writing anything (`session_write` writes them; `cdr_correct` compares them with an issued
    CDR). A running session is priced up to `now`."""
    tariff = session.tariffs[0] if session.tariffs else None
    evse = EVSE.objects.select_related("location").filter(pk=tx.evse_id).first()
    time_zone = evse.location.time_zone if evse else "UTC"
    readings = transaction_readings(tx=tx)
    usage = session_usage(tx=tx, time_zone=time_zone, now=now, readings=readings)
    start_date_time = tx.started_at
    if session.reservation is not None:
        reserved = session.reservation
        start_date_time = min(reserved.created_at, tx.started_at)
        reserved_for = ReservationUsage(start_date_time=start_date_time, end_date_time=tx.started_at)
        usage = replace(usage, reservation=reserved_for)
    priced = price_session(tariff=tariff or NO_TARIFF, usage=usage)
    measured = charging_periods_measured(
        tx=tx, periods=priced.charging_periods, end=usage.end_date_time, readings=readings
    )
    periods = priced_session_as_ocpi(priced=replace(priced, charging_periods=measured))["charging_periods"]
    if tariff is None:
        periods = [{key: value for key, value in p.items() if key != "tariff_id"} for p in periods]
    values = dict(
        start_date_time=start_date_time,
        end_date_time=tx.ended_at if tx.status == Transaction.Status.ENDED else None,
        kwh=priced.total_energy,
        cdr_token=cdr_token_of(tx=tx),
        auth_method=tx.auth_method or AuthMethod.WHITELIST,
        authorization_reference=tx.authorization_reference
        or (session.reservation.authorization_reference if session.reservation else ""),
        emsp_country_code=tx.token_country_code,
        emsp_party_id=tx.token_party_id,
        charging_periods=periods,
        total_cost_excl_vat=priced.total_cost.excl_vat if tariff else None,
        total_cost_incl_vat=priced.total_cost.incl_vat if tariff else None,
        status=_session_status(tx=tx),
    )
    return values, priced


def session_save(*, session: Session, values: dict, force: bool = False) -> bool | None:
    """Write `values` onto `session` and announce it (`session_changed`, `final` once COMPLETED or INVALID): True.
    False when nothing changed (`last_updated` stays, nothing is announced; `force`: a change not in `values`).
    None when a new session lost the race to another worker's insert (the caller reads theirs and starts again)."""
    if not force and not session._state.adding and all(getattr(session, k) == v for k, v in values.items()):
        return False
    for name, value in values.items():
        setattr(session, name, value)
    if session._state.adding:
        try:
            with transaction.atomic():
                session.save(force_insert=True)
        except IntegrityError:
            return None
    else:
        session.save()
    events.announce(events.session_changed, session=session, final=session.status in FINAL_STATUSES)
    return True


def reservation_continued_by(*, tx: Transaction) -> Reservation | None:
    """The reservation `tx` used, when the charger accepted it and the same token charges (mod_sessions: "When a
    reservation results in a charging session for the same Token", its Session becomes the charging session)."""
    if tx.reservation_id is None:  # the charger named no reservation: none can be USED by it (`reservation_use`)
        return None
    reservation = Reservation.objects.filter(transaction=tx, answer_status="Accepted").first()
    if reservation is None or not tx.id_tag:
        return None
    same = tx.id_tag == reservation.id_tag or bool(tx.token_uid and tx.token_uid == reservation.token_uid)
    return reservation if same else None


def session_sync(*, transaction_pk: int, now: datetime | None = None) -> Session:
    """Create or update the OCPI Session of gateway transaction `transaction_pk`: kwh, charging periods and the
    running `total_cost` priced with the tariff snapshot taken at its start (None without a tariff), status
    ACTIVE, COMPLETED once the transaction ended (INVALID for a refused token, PENDING without a token yet).
    A running session is priced up to `now` (default: the current time).

    Idempotent and safe on two workers at once: the transaction row is locked for the caller's database
    transaction. Once the session's CDR exists the session is final and returned unchanged. Raises `NotBillable`
    when the transaction has no EVSE."""
    with transaction.atomic():
        tx = transaction_lock(transaction_pk=transaction_pk)
        return session_write(tx=tx, now=now).session
