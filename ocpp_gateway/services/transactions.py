"""Transactions (2.0.1 block E; 1.6 Core): StartTransaction / StopTransaction, TransactionEvent, and ending a
transaction however it ends (the charger says so, or housekeeping gives up on a silent station).

A service that needs an authorization first returns the authorizers' `RealtimeCheck` before it writes anything; the
gateway runs the check off its database threads and calls the service again with the result as `auth`
(services.authorization). A message about a transaction that has already ended, or a replayed one, is answered from
what is stored and never makes us call anyone.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from cpo.models import EVSE, ChargingStation
from ocpp_gateway import events, sql
from ocpp_gateway.authorization import AuthorizationResult, RealtimeCheck
from ocpp_gateway.measurands import ENERGY_REGISTER
from ocpp_gateway.models import ChargingStateChange, Transaction, TransactionEvent
from ocpp_gateway.selectors import station_place
from ocpp_gateway.services.authorization import (
    authorization_fields,
    authorization_stored,
    is_starting_token,
    token_authorize,
    token_authorize_at,
    token_authorize_stored,
)
from ocpp_gateway.services.clock import charger_time_ahead
from ocpp_gateway.services.meter_values import Sample, meter_values_record
from ocpp_gateway.services.provisioning import evse_resolve
from ocpp_gateway.services.reservations import reservation_use

logger = logging.getLogger(__name__)


def transaction_end(
    *,
    tx: Transaction,
    ended_at: datetime,
    meter_stop: Decimal | None,
    reason: str,
    ended_by: str = Transaction.EndedBy.CHARGER,
) -> bool:
    """End an ACTIVE transaction; the caller holds its row (select_for_update) inside a database transaction.
    It never ends before it started; without a final reading it ends at the last one we have (else at its start).
    The one way a transaction ends: `transaction_ended` is announced once, after commit (billing completes the
    session and issues the CDR from it). False when it had ended already."""
    if tx.status == Transaction.Status.ENDED:
        return False
    tx.status = Transaction.Status.ENDED
    tx.ended_at = max(ended_at, tx.started_at)
    if meter_stop is None:
        meter_stop = tx.meter_last if tx.meter_last is not None else tx.meter_start
    tx.meter_stop = meter_stop
    tx.stop_reason = reason or "Local"
    tx.ended_by = ended_by
    tx.updated_at = timezone.now()
    sql.execute(
        _TRANSACTION_END,
        [
            tx.status,
            sql.to_db_datetime(tx.ended_at),
            _meter_stop_field.get_db_prep_save(tx.meter_stop, connection),
            tx.stop_reason,
            tx.ended_by,
            sql.to_db_datetime(tx.updated_at),
            tx.pk,
        ],
    )
    events.announce(events.transaction_ended, transaction_pk=tx.pk)
    return True


# Plain SQL (ocpp_gateway.sql) for what every session does once: start, end, and the checks around them.
_TX = Transaction._meta.db_table
_TRANSACTION_END = (
    f'UPDATE "{_TX}" SET "status" = %s, "ended_at" = %s, "meter_stop" = %s, "stop_reason" = %s, "ended_by" = %s, '  # noqa: S608
    '"updated_at" = %s WHERE "id" = %s'
)
_meter_stop_field = Transaction._meta.get_field("meter_stop")


def transactions_end_unstopped(
    *,
    station_pk: int,
    ended_by: str,
    reason: str,
    before: datetime | None = None,
    ocpp_evse_id: int | None = None,
    ocpp_version: str | None = None,
    exclude_pk: int | None = None,
) -> list[int]:
    """End the ACTIVE transactions of a station (of one EVSE/connector when `ocpp_evse_id` is given) that the
    charger left behind without a stop: it booted again, started another transaction there, or reported the
    connector free. Each ends at its last known reading and that reading's time (its start when it has none; never
    after `before`, the moment we learned it was over). Only transactions that started before `before` are ended:
    a message replayed from a charger's queue does not end a newer transaction. Returns the ended pks."""
    where, params = ['"station_id" = %s', '"status" = %s'], [station_pk, Transaction.Status.ACTIVE.value]
    if ocpp_evse_id is not None:
        where.append('"ocpp_evse_id" = %s')
        params.append(ocpp_evse_id)
    if ocpp_version is not None:
        where.append('"ocpp_version" = %s')
        params.append(ocpp_version)
    if before is not None:
        where.append('"started_at" < %s')
        params.append(sql.to_db_datetime(before))
    if exclude_pk is not None:
        where.append('"id" <> %s')
        params.append(exclude_pk)
    ended = []
    # Asked on every start and every 1.6 Available / Preparing, and nearly always there is none: one plain read
    # that locks what it finds, and no savepoint of its own inside the caller's transaction; outside one, a read
    # that finds none is all (no transaction begun and committed around it).
    select = f'SELECT "id" FROM "{_TX}" WHERE {" AND ".join(where)} ORDER BY "id"'  # noqa: S608
    if not connection.in_atomic_block and not sql.fetch_all(select, params):
        return ended
    with transaction.atomic(savepoint=False):
        pks = sql.fetch_all(select + sql.for_update(), params)
        for tx in Transaction.objects.filter(pk__in=[pk for (pk,) in pks]).order_by("pk") if pks else ():
            last = tx.meter_last_at or tx.started_at
            if before is not None:
                last = min(last, before)
            if transaction_end(tx=tx, ended_at=last, meter_stop=None, reason=reason, ended_by=ended_by):
                ended.append(tx.pk)
    if ended:
        logger.warning("station %s: ended %s without a stop from the charger (%s)", station_pk, ended, ended_by)
    return ended


def transaction_stop_late(
    *, tx: Transaction, ended_at: datetime, meter_stop: Decimal | None, reason: str, final: bool = False
) -> bool:
    """The charger's own stop for a transaction we ended without it (reboot, new transaction, status,
    housekeeping): it does not end it again, but its final reading and time are better than the last known ones
    we ended at, so they replace them when they are later (a time ahead of our clock is not believed). The caller
    holds the row locked. A stop for a transaction the charger itself ended changes nothing, unless it is the
    `final` report after one that only said it stopped (2.0.1: Ended after an Updated with a stoppedReason). True
    when the stored values changed (announced as `transaction_stop_corrected`; correcting an issued CDR is
    billing's business)."""
    if tx.status != Transaction.Status.ENDED:
        return False
    if tx.ended_by in ("", Transaction.EndedBy.CHARGER) and not final:
        return False
    changed = []
    higher = meter_stop is not None and (tx.meter_stop is None or meter_stop > tx.meter_stop)
    if higher and meter_stop >= tx.meter_start:
        tx.meter_stop = meter_stop
        changed.append("meter_stop")
    if tx.ended_at is not None and tx.ended_at < ended_at and not charger_time_ahead(held=ended_at, now=timezone.now()):
        tx.ended_at = ended_at
        changed.append("ended_at")
    if not changed:
        return False
    tx.save(update_fields=[*changed, "updated_at"])
    logger.info("%s: late stop (%s) corrected %s", tx, reason, changed)
    events.announce(events.transaction_stop_corrected, transaction_pk=tx.pk)
    return True


def charging_state_record(*, transaction_pk: int, timestamp: datetime, charging_state: str) -> None:
    """Note when the car started or stopped taking energy (billing tells charging from parking time by it)."""
    sql.execute(_CHARGING_STATE_INSERT, [transaction_pk, sql.to_db_datetime(timestamp), charging_state])


_CHARGING_STATE_INSERT = (
    f'INSERT INTO "{ChargingStateChange._meta.db_table}" ("transaction_id", "timestamp", "charging_state") '  # noqa: S608
    "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING"
)


# --- OCPP 1.6 -----------------------------------------------------------------------------------------------------


def transaction_start_16(
    *,
    station_pk: int,
    connector_id: int,
    id_tag: str,
    meter_start: int,
    timestamp: datetime,
    charger_timestamp: datetime | None = None,
    reservation_id: int | None = None,
    auth: AuthorizationResult | None = None,
) -> tuple[Transaction, AuthorizationResult] | RealtimeCheck:
    """StartTransaction.req. The transactionId is ours, chosen per station (`transaction_id_16_next`). A
    retransmission (same station, connector and start time) gets the same transaction and the stored answer back.
    `timestamp` is the start as believed (services.clock); when the charger sent another time (`charger_timestamp`,
    its clock was off), that time is kept to recognise the retransmission, whose receive time differs. A
    transaction still ACTIVE on the connector (its stop never came) ends here, at its last known reading."""
    if charger_timestamp == timestamp:
        charger_timestamp = None
    existing = _transaction_16_same_start(
        station_pk=station_pk, connector_id=connector_id, timestamp=timestamp, charger_timestamp=charger_timestamp
    )
    if existing is not None:
        return existing, authorization_stored(existing)
    place = station_place(station_pk=station_pk, ocpp_evse_id=connector_id)
    evse_pk, evse_uid = place.evse_pk, place.evse_uid
    if evse_pk is None and place.location_id is not None:  # a connector seen for the first time: onboarded
        evse = evse_resolve(station=ChargingStation.objects.get(pk=station_pk), ocpp_evse_id=connector_id)
        evse_pk, evse_uid = (evse.pk, evse.uid) if evse is not None else (None, "")
    if auth is None:
        auth = token_authorize_at(
            identity=place.identity, location_id=place.location_id, evse_uid=evse_uid, id_tag=id_tag
        )
        if isinstance(auth, RealtimeCheck):
            return auth
    for attempt in range(3):
        try:
            with transaction.atomic():
                sql.fetch_one(_STATION_LOCK + sql.for_update(), [station_pk])  # serialise per station
                tx = Transaction.objects.create(
                    station_id=station_pk,
                    evse_id=evse_pk,
                    ocpp_version="1.6",
                    ocpp_evse_id=connector_id,
                    connector_id=connector_id,
                    transaction_id=str(transaction_id_16_next(station_pk=station_pk)),
                    id_tag=id_tag,
                    reservation_id=reservation_id,
                    started_at=timestamp,
                    charger_started_at=charger_timestamp,
                    meter_start=Decimal(meter_start),
                    **authorization_fields(auth),
                )
                reservation_use(tx=tx, reservation_id=reservation_id)
                transactions_end_unstopped(
                    station_pk=station_pk,
                    ocpp_evse_id=connector_id,
                    ended_by=Transaction.EndedBy.NEW_TRANSACTION,
                    reason="Other",
                    before=timestamp,
                    exclude_pk=tx.pk,
                )
                events.announce(events.transaction_started, transaction_pk=tx.pk)
            return tx, auth
        except IntegrityError:
            tx = _transaction_16_same_start(
                station_pk=station_pk,
                connector_id=connector_id,
                timestamp=timestamp,
                charger_timestamp=charger_timestamp,
            )
            if tx is not None:  # the same start, written by a concurrent retransmission
                return tx, authorization_stored(tx)
            if attempt == 2:  # the id was taken by a concurrent start (SQLite, where the lock is a no-op): retry
                raise
    raise AssertionError("unreachable")


def _transaction_16_same_start(
    *, station_pk: int, connector_id: int, timestamp: datetime, charger_timestamp: datetime | None
) -> Transaction | None:
    """The transaction a StartTransaction created before, when this one is its retransmission: same station,
    connector and start (the charger's own time when it differs from the believed one)."""
    column, at = ("started_at", timestamp) if charger_timestamp is None else ("charger_started_at", charger_timestamp)
    row = sql.fetch_one(
        f'SELECT "id" FROM "{_TX}" WHERE "station_id" = %s AND "ocpp_version" = %s AND "ocpp_evse_id" = %s '  # noqa: S608
        f'AND "{column}" = %s ORDER BY "started_at" DESC LIMIT 1',
        [station_pk, "1.6", connector_id, sql.to_db_datetime(at)],
    )
    return Transaction.objects.get(pk=row[0]) if row else None


_STATION_LOCK = f'SELECT "id" FROM "{ChargingStation._meta.db_table}" WHERE "id" = %s'  # noqa: S608


# The 1.6 schema's transactionId is an integer; chargers hold it in an int32.
TRANSACTION_ID_16_MAX = 2**31 - 1


def transaction_id_16_next(*, station_pk: int) -> int:
    """The next 1.6 transactionId of a station: one more than the last it was given, from 1 again after
    TRANSACTION_ID_16_MAX, skipping ids the station still has (the station's transactions are unique by id). The
    caller serialises starts per station (row lock on the station)."""
    last = sql.fetch_one(_TRANSACTION_ID_16_LAST, [station_pk, "1.6", ""])
    candidate = int(last[0]) if last and last[0].isdigit() else 0
    while True:
        candidate = candidate + 1 if candidate < TRANSACTION_ID_16_MAX else 1
        if sql.fetch_one(_TRANSACTION_ID_USED, [station_pk, str(candidate)]) is None:
            return candidate


_TRANSACTION_ID_16_LAST = (
    f'SELECT "transaction_id" FROM "{_TX}" WHERE "station_id" = %s AND "ocpp_version" = %s '  # noqa: S608
    'AND "transaction_id" <> %s ORDER BY "id" DESC LIMIT 1'
)
_TRANSACTION_ID_USED = f'SELECT 1 FROM "{_TX}" WHERE "station_id" = %s AND "transaction_id" = %s LIMIT 1'  # noqa: S608


_TRANSACTION_LOCKED = (
    f'SELECT * FROM "{_TX}" WHERE "station_id" = %s AND "transaction_id" = %s '  # noqa: S608 - the model's table
    'ORDER BY "started_at" DESC LIMIT 1'
)


def transaction_stop_16(
    *,
    station_pk: int,
    transaction_id: int,
    meter_stop: int,
    timestamp: datetime,
    reason: str = "",
    id_tag: str = "",
    samples: list[Sample] | None = None,
    auth: AuthorizationResult | None = None,
) -> tuple[Transaction | None, AuthorizationResult | None] | RealtimeCheck:
    """StopTransaction.req. Unknown ids are accepted and logged (the charger must be able to empty its queue); a
    repeated stop changes nothing and is answered from what is stored. A stop for a transaction we ended without the
    charger (reboot, new transaction, status) does not end it again: its final reading and time correct the stored
    ones (`transaction_stop_late`). The idTag that started the transaction gets its stored authorization; another
    one is authorized."""
    with transaction.atomic():
        # A raw queryset: the same model, without compiling the query (~300 us against ~800, bench/RESULTS.md).
        locked = Transaction.objects.raw(_TRANSACTION_LOCKED + sql.for_update(), [station_pk, str(transaction_id)])
        tx = next(iter(locked), None)
        if tx is None:
            place = station_place(station_pk=station_pk, ocpp_evse_id=None)
            if auth is None and id_tag:
                auth = token_authorize_at(identity=place.identity, location_id=place.location_id, id_tag=id_tag)
                if isinstance(auth, RealtimeCheck):
                    return auth
            logger.warning("%s: StopTransaction for unknown transaction %s accepted", place.identity, transaction_id)
            meter_values_record(station_pk=station_pk, ocpp_evse_id=None, transaction_pk=None, samples=samples or [])
            return None, auth
        if tx.status == Transaction.Status.ENDED:
            if tx.ended_by not in ("", Transaction.EndedBy.CHARGER):
                meter_values_record(  # kept as sent; they move no reading of an ended transaction
                    station_pk=station_pk, ocpp_evse_id=tx.ocpp_evse_id, transaction_pk=tx.pk, samples=samples or []
                )
                transaction_stop_late(tx=tx, ended_at=timestamp, meter_stop=Decimal(meter_stop), reason=reason)
            if not id_tag:
                return tx, None
            return tx, token_authorize_stored(tx=tx, station=ChargingStation.objects.get(pk=station_pk), id_tag=id_tag)
        if auth is None and id_tag:
            if is_starting_token(tx, id_tag):
                auth = authorization_stored(tx)
            else:
                place = station_place(station_pk=station_pk, ocpp_evse_id=None)
                auth = token_authorize_at(identity=place.identity, location_id=place.location_id, id_tag=id_tag)
                if isinstance(auth, RealtimeCheck):  # asked with no lock held; this call writes nothing
                    return auth
        if samples:
            meter_values_record(
                station_pk=station_pk, ocpp_evse_id=tx.ocpp_evse_id, transaction_pk=tx.pk, samples=samples
            )
            tx.refresh_from_db()
        transaction_end(tx=tx, ended_at=timestamp, meter_stop=Decimal(meter_stop), reason=reason)
    return tx, auth


# --- OCPP 2.0.1 and 2.1 -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransactionEventInput:
    event_type: str  # Started | Updated | Ended
    timestamp: datetime
    trigger_reason: str
    seq_no: int
    transaction_id: str
    charging_state: str = ""
    stopped_reason: str = ""
    remote_start_id: int | None = None
    ocpp_evse_id: int | None = None
    connector_id: int | None = None
    id_token: str = ""
    id_token_type: str = ""
    reservation_id: int | None = None
    offline: bool = False
    samples: tuple[Sample, ...] = ()
    payload: dict | None = None
    ocpp_version: str = "2.0.1"


def _event_answer_stored(*, tx: Transaction, station: ChargingStation, evse: EVSE | None, event: TransactionEventInput):
    """The idTokenInfo of a replayed event or one about an ended transaction, from what is stored."""
    if event.id_token:
        return token_authorize_stored(
            tx=tx, station=station, id_tag=event.id_token, id_token_type=event.id_token_type, evse=evse
        )
    return authorization_stored(tx) if tx.id_tag else None


def transaction_event_201(
    *, station_pk: int, event: TransactionEventInput, auth: AuthorizationResult | None = None
) -> tuple[Transaction, AuthorizationResult | None] | RealtimeCheck:
    """TransactionEvent.req, idempotent per (transactionId, seqNo). Events may arrive out of order after an
    offline period: the transaction is created by whichever comes first and never reopened once Ended. Only a token
    we have not decided on for this transaction (before it ended) is authorized; a replayed event is answered from
    what is stored."""
    station = ChargingStation.objects.get(pk=station_pk)
    evse = evse_resolve(station=station, ocpp_evse_id=event.ocpp_evse_id)
    known = Transaction.objects.filter(station=station, transaction_id=event.transaction_id).first()
    if known is not None and TransactionEvent.objects.filter(transaction=known, seq_no=event.seq_no).exists():
        return known, _event_answer_stored(tx=known, station=station, evse=evse, event=event)
    if auth is None and event.id_token:
        if known is not None and (known.status == Transaction.Status.ENDED or is_starting_token(known, event.id_token)):
            auth = token_authorize_stored(
                tx=known, station=station, id_tag=event.id_token, id_token_type=event.id_token_type, evse=evse
            )
        else:
            auth = token_authorize(station=station, id_tag=event.id_token, id_token_type=event.id_token_type, evse=evse)
            if isinstance(auth, RealtimeCheck):
                return auth
    with transaction.atomic():
        ChargingStation.objects.select_for_update().filter(pk=station_pk).first()  # serialise per station
        tx = Transaction.objects.filter(station=station, transaction_id=event.transaction_id).first()
        created = tx is None
        if created:
            tx = Transaction.objects.create(
                station=station,
                evse=evse,
                transaction_id=event.transaction_id,
                ocpp_version=event.ocpp_version,
                ocpp_evse_id=event.ocpp_evse_id,
                connector_id=event.connector_id,
                started_at=event.timestamp,
                meter_start=Decimal(0),
            )
        elif TransactionEvent.objects.filter(transaction=tx, seq_no=event.seq_no).exists():
            return tx, _event_answer_stored(tx=tx, station=station, evse=evse, event=event)
        TransactionEvent.objects.create(
            transaction=tx,
            seq_no=event.seq_no,
            event_type=event.event_type,
            trigger_reason=event.trigger_reason,
            timestamp=event.timestamp,
            offline=event.offline,
            payload=event.payload or {},
        )
        _transaction_apply_event(tx=tx, evse=evse, event=event, auth=auth, created=created)
    return tx, auth


def _transaction_apply_event(
    *, tx: Transaction, evse: EVSE | None, event: TransactionEventInput, auth, created: bool
) -> None:
    if evse is not None and tx.evse_id is None:
        tx.evse, tx.ocpp_evse_id = evse, event.ocpp_evse_id
    if event.connector_id and not tx.connector_id:
        tx.connector_id = event.connector_id
    if event.id_token and (not tx.id_tag or event.event_type == "Started"):
        tx.id_tag, tx.id_token_type = event.id_token, event.id_token_type
        if auth is not None:
            for name, value in authorization_fields(auth).items():
                setattr(tx, name, value)
    if event.remote_start_id is not None:
        tx.remote_start_id = event.remote_start_id
    if event.reservation_id is not None and tx.reservation_id is None:
        tx.reservation_id = event.reservation_id
        reservation_use(tx=tx, reservation_id=event.reservation_id)
    if event.charging_state:
        if tx.last_seq_no is None or event.seq_no >= tx.last_seq_no:  # the newest; a late one is history only
            tx.charging_state = event.charging_state
        charging_state_record(transaction_pk=tx.pk, timestamp=event.timestamp, charging_state=event.charging_state)
    tx.last_seq_no = max(tx.last_seq_no or 0, event.seq_no)
    energies = [s for s in event.samples if (s.measurand or ENERGY_REGISTER) == ENERGY_REGISTER and not s.phase]
    if event.event_type == "Started":
        tx.started_at = min(tx.started_at, event.timestamp) if not created else event.timestamp
        begin = [s for s in energies if s.context == "Transaction.Begin"] or energies
        if begin and begin[0].in_base_unit() is not None:
            tx.meter_start = begin[0].in_base_unit()
    elif created and energies and energies[0].in_base_unit() is not None:
        tx.meter_start = energies[0].in_base_unit()  # Started still missing: best lower bound
    tx.save()
    meter_values_record(
        station_pk=tx.station_id, ocpp_evse_id=tx.ocpp_evse_id, transaction_pk=tx.pk, samples=list(event.samples)
    )
    tx.refresh_from_db()
    if created:
        events.announce(events.transaction_started, transaction_pk=tx.pk)
        if tx.ocpp_evse_id:  # one transaction per EVSE: one the charger never ended there is over
            transactions_end_unstopped(
                station_pk=tx.station_id,
                ocpp_evse_id=tx.ocpp_evse_id,
                ended_by=Transaction.EndedBy.NEW_TRANSACTION,
                reason="Other",
                before=event.timestamp,
                exclude_pk=tx.pk,
            )
    if event.event_type == "Ended" or event.stopped_reason:  # an Updated event may say it stopped already
        end = [s for s in energies if s.context == "Transaction.End"] or energies
        final = end[-1].in_base_unit() if end else None
        if tx.status != Transaction.Status.ENDED:
            transaction_end(tx=tx, ended_at=event.timestamp, meter_stop=final, reason=event.stopped_reason)
        else:
            # The Ended event after an Updated one that carried the stoppedReason is the charger's final word.
            earlier_ends = TransactionEvent.objects.filter(transaction=tx, event_type="Ended").exclude(
                seq_no=event.seq_no
            )
            final_report = event.event_type == "Ended" and not earlier_ends.exists()
            transaction_stop_late(
                tx=tx, ended_at=event.timestamp, meter_stop=final, reason=event.stopped_reason, final=final_report
            )
    elif not created and tx.status == Transaction.Status.ACTIVE:
        events.announce(events.transaction_updated, transaction_pk=tx.pk)


# --- Housekeeping -------------------------------------------------------------------------------------------------


def transaction_close_stale(*, older_than_hours: float | None = None) -> list[int]:
    """End ACTIVE transactions of stations that went offline and said nothing for a long time, at their last known
    reading, so sessions do not stay open forever. A StopTransaction that arrives later changes nothing (the
    transaction is ENDED)."""
    hours = settings.OCPP_STALE_TRANSACTION_HOURS if older_than_hours is None else older_than_hours
    cutoff = timezone.now() - timedelta(hours=hours)
    candidates = Transaction.objects.filter(status=Transaction.Status.ACTIVE, station__online=False).filter(
        Q(meter_last_at__lt=cutoff) | Q(meter_last_at__isnull=True, started_at__lt=cutoff)
    )
    closed = []
    for pk in candidates.values_list("pk", flat=True):
        with transaction.atomic():
            tx = Transaction.objects.select_for_update().get(pk=pk)
            if transaction_end(
                tx=tx,
                ended_at=tx.meter_last_at or tx.started_at,
                meter_stop=None,
                reason="Other",
                ended_by=Transaction.EndedBy.HOUSEKEEPING,
            ):
                closed.append(pk)
    if closed:
        logger.warning("closed %d stale transactions: %s", len(closed), closed)
    return closed


def transactions_end_at_boot(*, station_pk: int, at: datetime | None = None) -> list[int]:
    """A station that boots again has ended whatever transaction it was running: end them at their last known
    reading, reason Reboot. The stops it had queued and sends after the boot correct the reading and time
    (`transaction_stop_late`); they never end a transaction twice."""
    return transactions_end_unstopped(
        station_pk=station_pk, ended_by=Transaction.EndedBy.REBOOT, reason="Reboot", before=at or timezone.now()
    )
