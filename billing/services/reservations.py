"""Writes of the OCPI Session of a reservation (mod_sessions "Reservation", mod_commands ReserveNow).

An accepted reservation is a Session with status RESERVATION from the moment it was made, priced with the tariff's
RESERVATION elements (time reserved so far; `billing.pricing`, `ReservationUsage`). When the same token then charges,
that Session becomes the charging session (`session_write` attaches the transaction to it). When the reservation
expires or is cancelled, or another token uses it, the Session is COMPLETED: priced with RESERVATION_EXPIRES and
RESERVATION elements for an expiry, RESERVATION elements only otherwise, and, when that costs something, it gets a
CDR for the reservation alone ("A CDR might be created even if no energy was transferred to the EV, just for the
costs of the reservation"). A reservation the charger never accepted has no Session.
"""

import logging
import uuid
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.enums import AuthMethod, SessionStatus
from billing.models import Cdr, Session
from billing.pricing import ReservationUsage, SessionUsage, price_session, priced_session_as_ocpi
from billing.selectors import tariff_as_ocpi, tariff_for_connector
from billing.services.cdrs import cdr_issue
from billing.services.sessions import (
    NO_TARIFF,
    NotBillable,
    SessionWritten,
    cdr_location_snapshot,
    cdr_token_of,
    reservation_continued_by,
    session_save,
)
from billing.services.transactions import transaction_bill
from cpo.models import EVSE, Location
from ocpp_gateway.models import Reservation, Transaction

logger = logging.getLogger(__name__)

# Spec "Allowed to be set to: #NA when this session is created for a reservation, but no EVSE yet assigned".
NOT_AVAILABLE = "#NA"
Status = Reservation.Status


def _reservation_session_new(*, reservation: Reservation) -> Session:
    """The Session of `reservation` with the snapshots taken now: the tariff of the reserved EVSE's connector (for a
    reservation of any EVSE of the station, its first EVSE's: evse_uid and connector_id are then #NA)."""
    evse = reservation.evse or EVSE.objects.filter(station_id=reservation.station_id).order_by("ocpp_evse_id").first()
    if evse is None:
        raise NotBillable(f"reservation {reservation.pk}: the station has no EVSE, no OCPI Session")
    evse = EVSE.objects.select_related("location").get(pk=evse.pk)
    connector = evse.connectors.order_by("connector_id").first()
    if connector is None:
        raise NotBillable(f"reservation {reservation.pk}: EVSE {evse.uid} has no connector, no OCPI Session")
    tariff = tariff_for_connector(connector=connector, at=reservation.created_at)
    location = cdr_location_snapshot(evse=evse, connector=connector)
    known = reservation.evse_id is not None
    if not known:
        location.update(evse_uid=NOT_AVAILABLE, evse_id=NOT_AVAILABLE, connector_id=NOT_AVAILABLE)
    return Session(
        country_code=settings.OCPI_COUNTRY_CODE,
        party_id=settings.OCPI_PARTY_ID,
        id=str(uuid.uuid4()),
        reservation=reservation,
        start_date_time=reservation.created_at,
        location_id=evse.location_id,
        evse_uid=evse.uid if known else NOT_AVAILABLE,
        connector_id=connector.connector_id if known else NOT_AVAILABLE,
        meter_id=reservation.station.meter_serial_number,
        currency=tariff.currency if tariff else getattr(settings, "BILLING_DEFAULT_CURRENCY", "EUR"),
        tariffs=[tariff_as_ocpi(tariff=tariff)] if tariff else [],
        cdr_location=location,
    )


def _reservation_usage(*, reservation: Reservation, time_zone: str) -> tuple[SessionUsage, bool]:
    """The pricing engine's usage of a reservation that is not (or not any more) becoming a charging session, and
    whether it has ended: running (priced up to now), expired, or ended otherwise (cancelled, or used by another
    token)."""
    ended = reservation.status in Reservation.ENDED or reservation.status == Status.REJECTED
    end = reservation.ended_at if ended and reservation.ended_at else timezone.now()
    end = max(end, reservation.created_at)
    expired = reservation.status == Status.EXPIRED
    usage = SessionUsage(
        start_date_time=end,
        end_date_time=end,
        time_zone=time_zone,
        reservation=ReservationUsage(
            start_date_time=reservation.created_at, end_date_time=end, expired=expired, cancelled=not expired
        ),
    )
    return usage, ended


def reservation_session_write(*, reservation: Reservation) -> SessionWritten | None:
    """Create or update the Session of a reservation that has not become a charging session: RESERVATION while it
    holds, COMPLETED once it ended, priced with the tariff snapshot taken when it was made. None when it has no
    Session: never accepted by the charger, or its session is a transaction's now. A session whose CDR exists is
    left as it is. Precondition: the caller holds the reservation's row lock."""
    if reservation.answer_status != "Accepted":
        return None
    session = Session.objects.filter(reservation=reservation).first()
    if session is not None and session.transaction_id is not None:
        return None
    if session is None:
        session = _reservation_session_new(reservation=reservation)
    tariff = session.tariffs[0] if session.tariffs else None
    if not session._state.adding and Cdr.objects.filter(session=session, credit=False).exists():
        return SessionWritten(session, None, tariff, changed=False)
    location = Location.objects.filter(pk=session.location_id).first()
    time_zone = location.time_zone if location else "UTC"
    usage, ended = _reservation_usage(reservation=reservation, time_zone=time_zone)
    priced = price_session(tariff=tariff or NO_TARIFF, usage=usage)
    periods = priced_session_as_ocpi(priced=priced)["charging_periods"]
    if tariff is None:
        periods = [{key: value for key, value in p.items() if key != "tariff_id"} for p in periods]
    values = dict(
        start_date_time=reservation.created_at,
        end_date_time=usage.end_date_time if ended else None,
        kwh=Decimal(0),
        cdr_token=cdr_token_of(tx=reservation),
        auth_method=AuthMethod.COMMAND,
        authorization_reference=reservation.authorization_reference,
        emsp_country_code=reservation.token_country_code,
        emsp_party_id=reservation.token_party_id,
        charging_periods=periods,
        total_cost_excl_vat=priced.total_cost.excl_vat if tariff else None,
        total_cost_incl_vat=priced.total_cost.incl_vat if tariff else None,
        status=SessionStatus.COMPLETED if ended else SessionStatus.RESERVATION,
    )
    changed = session_save(session=session, values=values)
    if changed is None:
        return reservation_session_write(reservation=reservation)
    return SessionWritten(session, priced, tariff, changed=changed)


_REMARKS: dict[str, str] = {
    Status.EXPIRED: "Reservation expired",
    Status.CANCELLED: "Reservation cancelled",
    Status.USED: "Reservation used by another token",
}


def reservation_bill(*, reservation_pk: int) -> Session | None:
    """Bring the OCPI Session of a reservation up to date after any change of the reservation (billing's task for
    `reservation_changed`). A reservation its own token used is billed as that transaction's session
    (`transaction_bill`); otherwise the reservation's session is written (`reservation_session_write`) and, once
    COMPLETED, gets a CDR when its reservation cost is not zero. Idempotent: the reservation row stays locked until
    this commits, a session with a CDR is final, one CDR per session is a database constraint. Whether a transaction
    used the reservation is read under that lock: a StartTransaction that marks it USED and has not committed yet is
    waited for, so its session is not taken for a reservation used by another token."""
    with transaction.atomic():
        reservation = (
            Reservation.objects.select_for_update().select_related("station").filter(pk=reservation_pk).first()
        )
        if reservation is None:
            return None
        if reservation.transaction_id is not None:
            used_by = Transaction.objects.get(pk=reservation.transaction_id)
            if reservation_continued_by(tx=used_by) is not None:
                return transaction_bill(transaction_pk=used_by.pk)
        try:
            written = reservation_session_write(reservation=reservation)
        except NotBillable as exc:
            logger.warning("reservation %s: no OCPI Session: %s", reservation_pk, exc)
            return None
        if written is None:
            return None
        session, priced = written.session, written.priced
        if (
            session.status == SessionStatus.COMPLETED
            and priced is not None
            and written.tariff is not None
            and priced.total_cost.excl_vat > 0
        ):
            cdr_issue(tx=None, written=written, remark=_REMARKS.get(reservation.status, ""))
    return session
