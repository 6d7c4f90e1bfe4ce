"""Transactions (2.0.1 block E; 1.6 Core): StartTransaction / StopTransaction, TransactionEvent, and ending a
transaction however it ends (the charger says so, or housekeeping gives up on a silent station).

A service that needs an authorization first returns the authorizers' `RealtimeCheck` before it writes anything; the
gateway runs the check off its database threads and calls the service again with the result as `auth`
(services.authorization). A message about a transaction that has already ended, or a replayed one, is answered from
what is stored and never makes us call anyone.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from cpo.models import EVSE, ChargingStation
from ocpp_gateway import events
from ocpp_gateway.authorization import AuthorizationResult, RealtimeCheck
from ocpp_gateway.measurands import ENERGY_REGISTER
from ocpp_gateway.models import ChargingStateChange, Transaction, TransactionEvent
from ocpp_gateway.services.authorization import (
    authorization_fields,
    authorization_stored,
    is_starting_token,
    token_authorize,
    token_authorize_stored,
)
from ocpp_gateway.services.meter_values import Sample, meter_values_record
from ocpp_gateway.services.provisioning import evse_resolve

logger = logging.getLogger(__name__)


def transaction_end(*, tx: Transaction, ended_at: datetime, meter_stop: Decimal | None, reason: str) -> bool:
    """End an ACTIVE transaction; the caller holds its row (select_for_update) inside a database transaction.
    It never ends before it started; without a final reading it ends at the last one we have (else at its start).
    Announced after commit. False when it had ended already."""
    if tx.status == Transaction.Status.ENDED:
        return False
    tx.status = Transaction.Status.ENDED
    tx.ended_at = max(ended_at, tx.started_at)
    if meter_stop is None:
        meter_stop = tx.meter_last if tx.meter_last is not None else tx.meter_start
    tx.meter_stop = meter_stop
    tx.stop_reason = reason or "Local"
    tx.save()
    events.announce(events.transaction_ended, transaction_pk=tx.pk)
    return True


def charging_state_record(*, transaction_pk: int, timestamp: datetime, charging_state: str) -> None:
    """Note when the car started or stopped taking energy (billing tells charging from parking time by it)."""
    ChargingStateChange.objects.bulk_create(
        [ChargingStateChange(transaction_id=transaction_pk, timestamp=timestamp, charging_state=charging_state)],
        ignore_conflicts=True,
    )


# --- OCPP 1.6 -----------------------------------------------------------------------------------------------------


def transaction_start_16(
    *,
    station_pk: int,
    connector_id: int,
    id_tag: str,
    meter_start: int,
    timestamp: datetime,
    reservation_id: int | None = None,
    auth: AuthorizationResult | None = None,
) -> tuple[Transaction, AuthorizationResult] | RealtimeCheck:
    """StartTransaction.req. The transactionId is ours (the row's primary key). A retransmission (same station,
    connector and start time) gets the same transaction and the stored answer back."""
    existing = Transaction.objects.filter(
        station_id=station_pk, ocpp_version="1.6", ocpp_evse_id=connector_id, started_at=timestamp
    ).first()
    if existing is not None:
        return existing, authorization_stored(existing)
    station = ChargingStation.objects.get(pk=station_pk)
    evse = evse_resolve(station=station, ocpp_evse_id=connector_id)
    if auth is None:
        auth = token_authorize(station=station, id_tag=id_tag, evse=evse)
        if isinstance(auth, RealtimeCheck):
            return auth
    try:
        with transaction.atomic():
            tx = Transaction.objects.create(
                station=station,
                evse=evse,
                ocpp_version="1.6",
                ocpp_evse_id=connector_id,
                connector_id=connector_id,
                id_tag=id_tag,
                reservation_id=reservation_id,
                started_at=timestamp,
                meter_start=Decimal(meter_start),
                **authorization_fields(auth),
            )
            tx.transaction_id = str(tx.pk)
            tx.save(update_fields=["transaction_id"])
            events.announce(events.transaction_started, transaction_pk=tx.pk)
    except IntegrityError:
        tx = Transaction.objects.get(
            station_id=station_pk, ocpp_version="1.6", ocpp_evse_id=connector_id, started_at=timestamp
        )
        return tx, authorization_stored(tx)
    return tx, auth


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
    repeated stop changes nothing and is answered from what is stored. The idTag that started the transaction gets
    its stored authorization; another one is authorized."""
    station = ChargingStation.objects.get(pk=station_pk)
    known = Transaction.objects.filter(station=station, transaction_id=str(transaction_id)).first()
    if known is not None and known.status == Transaction.Status.ENDED:
        return known, token_authorize_stored(tx=known, station=station, id_tag=id_tag) if id_tag else None
    if auth is None and id_tag:
        if known is not None and is_starting_token(known, id_tag):
            auth = authorization_stored(known)
        else:
            auth = token_authorize(station=station, id_tag=id_tag)
            if isinstance(auth, RealtimeCheck):
                return auth
    with transaction.atomic():
        tx = (
            Transaction.objects.select_for_update()
            .filter(station=station, transaction_id=str(transaction_id))
            .first()
        )
        if tx is None:
            logger.warning("%s: StopTransaction for unknown transaction %s accepted", station, transaction_id)
            meter_values_record(station_pk=station_pk, ocpp_evse_id=None, transaction_pk=None, samples=samples or [])
            return None, auth
        if tx.status == Transaction.Status.ENDED:
            return tx, auth
        meter_values_record(
            station_pk=station_pk, ocpp_evse_id=tx.ocpp_evse_id, transaction_pk=tx.pk, samples=samples or []
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
            auth = token_authorize(
                station=station, id_tag=event.id_token, id_token_type=event.id_token_type, evse=evse
            )
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
    if event.reservation_id is not None:
        tx.reservation_id = event.reservation_id
    if event.charging_state:
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
    if event.event_type == "Ended" and tx.status != Transaction.Status.ENDED:
        end = [s for s in energies if s.context == "Transaction.End"] or energies
        final = end[-1].in_base_unit() if end else None
        transaction_end(tx=tx, ended_at=event.timestamp, meter_stop=final, reason=event.stopped_reason)
    elif not created and tx.status == Transaction.Status.ACTIVE:
        events.announce(events.transaction_updated, transaction_pk=tx.pk)


# --- Housekeeping -------------------------------------------------------------------------------------------------


def transaction_close_stale(*, older_than_hours: float | None = None) -> list[int]:
    """End ACTIVE transactions of stations that went offline and said nothing for a long time, at their last known
    reading, so sessions do not stay open forever. A StopTransaction that arrives later changes nothing (the
    transaction is ENDED)."""
    hours = settings.OCPP_STALE_TRANSACTION_HOURS if older_than_hours is None else older_than_hours
    cutoff = timezone.now() - timezone.timedelta(hours=hours)
    candidates = Transaction.objects.filter(status=Transaction.Status.ACTIVE, station__online=False).filter(
        Q(meter_last_at__lt=cutoff) | Q(meter_last_at__isnull=True, started_at__lt=cutoff)
    )
    closed = []
    for pk in candidates.values_list("pk", flat=True):
        with transaction.atomic():
            tx = Transaction.objects.select_for_update().get(pk=pk)
            if transaction_end(tx=tx, ended_at=tx.meter_last_at or tx.started_at, meter_stop=None, reason="Other"):
                closed.append(pk)
    if closed:
        logger.warning("closed %d stale transactions: %s", len(closed), closed)
    return closed
