"""Reservations (1.6 Reservation profile, 2.0.1 functional block H): made by a partner or by staff, answered by the
charger, and ended by expiry, cancellation or the transaction that uses them.

Every change of a reservation's status is announced after commit (`events.reservation_changed`), so billing can
keep its OCPI Session (status RESERVATION) in step. Each write checks the status it moves from, so a repeated
answer, a replayed ReservationStatusUpdate or a second run of the expiry housekeeping changes nothing.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from cpo.models import EVSE, ChargingStation
from ocpp_gateway import events
from ocpp_gateway.models import Reservation, Transaction

logger = logging.getLogger(__name__)

Status = Reservation.Status

# The charger's ReserveNow answers (1.6 ReservationStatus, 2.0.1 ReserveNowStatusEnumType); only Accepted reserves.
RESERVE_NOW_ACCEPTED = "Accepted"
# 2.0.1 ReservationUpdateStatusEnumType -> our status.
STATUS_UPDATES = {"Expired": Status.EXPIRED, "Removed": Status.CANCELLED}


@dataclass(frozen=True)
class ReservationToken:
    """The token a reservation is for, in a Transaction's words (see ocpp_gateway.models.Transaction)."""

    id_tag: str
    id_token_type: str = ""
    token_uid: str = ""
    token_type: str = ""
    contract_id: str = ""
    token_country_code: str = ""
    token_party_id: str = ""
    authorization_reference: str = ""


def _changed(reservation: Reservation) -> None:
    events.announce(events.reservation_changed, reservation_pk=reservation.pk, status=reservation.status)


def reservation_create(
    *,
    station: ChargingStation,
    evse: EVSE | None,
    token: ReservationToken,
    expiry_date: datetime,
    source: str,
    replaces: int | None = None,
) -> Reservation:
    """A PENDING reservation, to be sent to the charger with its pk as reservationId. `replaces`: the pk of a
    reservation the same party made before with the same id (OCPI "will replace the reservation"); one that has not
    ended takes the new expiry and token and waits for the charger's answer again (same reservationId: the charger
    replaces it too); one that ended is not revived, a new one is made."""
    with transaction.atomic():
        if replaces is not None:
            earlier = Reservation.objects.select_for_update().filter(pk=replaces, station=station).first()
            if earlier is not None and earlier.status not in Reservation.ENDED:
                for name, value in vars(token).items():
                    setattr(earlier, name, value)
                earlier.expiry_date, earlier.evse = expiry_date, evse
                earlier.save()
                return earlier
        return Reservation.objects.create(
            station=station,
            evse=evse,
            source=source,
            expiry_date=expiry_date,
            created_at=timezone.now(),
            **vars(token),
        )


def reservation_answer_record(*, reservation_pk: int, status: str) -> Reservation:
    """The charger's answer to ReserveNow: `status` as it answered (Accepted, Occupied, ...) or why there was none
    (a command error). Accepted moves a PENDING reservation to ACCEPTED, anything else to REJECTED; an answer for a
    reservation that is no longer PENDING (a late or repeated one) changes only nothing."""
    with transaction.atomic():
        reservation = Reservation.objects.select_for_update().get(pk=reservation_pk)
        if reservation.status not in (Status.PENDING, Status.ACCEPTED):
            return reservation
        new = Status.ACCEPTED if status == RESERVE_NOW_ACCEPTED else Status.REJECTED
        if reservation.status == Status.ACCEPTED and new == Status.REJECTED:
            # A replacement the charger refused: the reservation it held before is gone with it (1.6 §5.13: the
            # charger replaces the reservation or answers why not; we cannot tell which, so we say it ended).
            new = Status.CANCELLED
            reservation.ended_at = timezone.now()
        reservation.status, reservation.answer_status = new, status[:40]
        reservation.save(update_fields=["status", "answer_status", "ended_at", "updated_at"])
        _changed(reservation)
    return reservation


def reservation_end(*, reservation_pk: int, status: str, ended_at: datetime | None = None) -> Reservation | None:
    """End an ACCEPTED (or still PENDING) reservation as EXPIRED or CANCELLED at `ended_at` (default now; an expired
    one at its expiry date when that is earlier). An ended or rejected reservation stays as it is."""
    if status not in (Status.EXPIRED, Status.CANCELLED):
        raise ValueError(f"a reservation ends EXPIRED or CANCELLED, not {status}")
    with transaction.atomic():
        reservation = Reservation.objects.select_for_update().filter(pk=reservation_pk).first()
        if reservation is None or reservation.status not in (Status.PENDING, Status.ACCEPTED):
            return reservation
        end = ended_at or timezone.now()
        if status == Status.EXPIRED:
            end = min(end, reservation.expiry_date)
        reservation.status, reservation.ended_at = status, max(end, reservation.created_at)
        reservation.save(update_fields=["status", "ended_at", "updated_at"])
        _changed(reservation)
    return reservation


def reservation_status_update(*, station_pk: int, reservation_id: int, update_status: str) -> None:
    """2.0.1 ReservationStatusUpdate: the charger says a reservation expired or was removed. Unknown ids (another
    CSMS's, or ones we never made) are logged and answered like the others."""
    status = STATUS_UPDATES.get(update_status)
    reservation = Reservation.objects.filter(pk=reservation_id, station_id=station_pk).first()
    if status is None or reservation is None:
        logger.warning("station %s: %s of reservation %s ignored", station_pk, update_status, reservation_id)
        return
    reservation_end(reservation_pk=reservation.pk, status=status)


def reservation_use(*, tx: Transaction, reservation_id: int | None) -> None:
    """A transaction started with `reservation_id` (1.6 StartTransaction, 2.0.1 TransactionEvent): the reservation
    is USED by it. Call inside the database transaction that wrote `tx`. A reservation of another station, or one
    that was rejected or has ended (used, cancelled, expired) is left alone (logged)."""
    if reservation_id is None:
        return
    reservation = (
        Reservation.objects.select_for_update()
        .filter(pk=reservation_id, station_id=tx.station_id, status__in=[Status.PENDING, Status.ACCEPTED])
        .first()
    )
    if reservation is None:
        logger.warning("%s names reservation %s, which it cannot use", tx, reservation_id)
        return
    reservation.status, reservation.transaction = Status.USED, tx
    reservation.ended_at = max(tx.started_at, reservation.created_at)
    reservation.save(update_fields=["status", "transaction", "ended_at", "updated_at"])
    _changed(reservation)


def reservations_expire(*, now: datetime | None = None, grace: timedelta = timedelta(0)) -> list[int]:
    """Housekeeping: reservations whose expiry date passed more than `grace` ago without being used or cancelled
    are EXPIRED (at their expiry date). Idempotent: an ended reservation is not touched again."""
    now = now or timezone.now()
    limit = now - grace
    due = list(
        Reservation.objects.filter(status__in=[Status.PENDING, Status.ACCEPTED], expiry_date__lt=limit).values_list(
            "pk", flat=True
        )[:1000]
    )
    return [pk for pk in due if reservation_end(reservation_pk=pk, status=Status.EXPIRED, ended_at=now) is not None]
