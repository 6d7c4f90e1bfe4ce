"""Objects the OCPI tests build directly in the database."""

from django.utils import timezone

from billing.models import Session
from ocpp_gateway.models import Transaction


def make_session(station, *, party_id="EXM", active=True, session_id="SESSION-1", transaction_id="77") -> Session:
    """An OCPI Session of NL*EXM's token (or `party_id`'s) on the station's first EVSE."""
    tx = Transaction.objects.create(station=station, evse=station.evses.first(), transaction_id=transaction_id,
                                    ocpp_version="1.6", ocpp_evse_id=1, connector_id=1, started_at=timezone.now(),
                                    meter_start=0, status="ACTIVE" if active else "ENDED",
                                    ended_at=None if active else timezone.now())
    return Session.objects.create(
        country_code="NL", party_id="CPO", id=session_id, transaction=tx, emsp_country_code="NL",
        emsp_party_id=party_id, start_date_time=tx.started_at, cdr_token={}, auth_method="WHITELIST",
        location_id="LOC-T1", evse_uid=tx.evse.uid, connector_id="1", currency="EUR", status="ACTIVE")
