"""Objects the OCPI tests build: partners and their request headers, sessions written directly, and charges run
through the gateway's services (as the consumers call them) for the session pipeline; what an EMSP and the workers
make of what we queue."""

import base64
import datetime as dt
import json
from decimal import Decimal

from django.utils import timezone

from billing.encoding import DecimalJSONEncoder
from billing.models import Session
from ocpi_api.delivery import outbox_deliver
from ocpi_api.models import OutboxMessage, OutboxStatus, Partner, PartnerStatus
from ocpi_api.services import partner_incoming_token_set, partner_parties_claim
from ocpp_gateway.models import Transaction
from ocpp_gateway.services.meter_values import Sample, meter_values_record
from ocpp_gateway.services.transactions import transaction_start_16, transaction_stop_16

T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
# NL*EXM's token: the `emsp_token` fixture has it accepted by whitelist.
EMSP_TOKEN = "EXM-RFID-1"


def make_partner(*, token: str, country_code="NL", party_id="EXM", status=PartnerStatus.REGISTERED, **fields):
    partner = Partner(
        name=fields.pop("name", f"{country_code} {party_id}"),
        country_code=country_code,
        party_id=party_id,
        status=status,
        roles=[{"role": "EMSP", "country_code": country_code, "party_id": party_id, "business_details": {"name": "x"}}],
        version="2.2.1",
        **fields,
    )
    partner_incoming_token_set(partner=partner, token=token)
    partner.save()
    partner_parties_claim(partner=partner, parties={(country_code, party_id)})
    return partner


def auth(token: str, *, encode: bool = True) -> dict:
    """The Authorization header of a partner's request, for the Django test client."""
    value = base64.b64encode(token.encode()).decode() if encode else token
    return {"HTTP_AUTHORIZATION": f"Token {value}"}


def make_session(station, *, party_id="EXM", active=True, session_id="SESSION-1", transaction_id="77") -> Session:
    """An OCPI Session of NL*EXM's token (or `party_id`'s) on the station's first EVSE."""
    tx = Transaction.objects.create(
        station=station,
        evse=station.evses.first(),
        transaction_id=transaction_id,
        ocpp_version="1.6",
        ocpp_evse_id=1,
        connector_id=1,
        started_at=timezone.now(),
        meter_start=0,
        status="ACTIVE" if active else "ENDED",
        ended_at=None if active else timezone.now(),
    )
    return Session.objects.create(
        country_code="NL",
        party_id="CPO",
        id=session_id,
        transaction=tx,
        emsp_country_code="NL",
        emsp_party_id=party_id,
        start_date_time=tx.started_at,
        cdr_token={},
        auth_method="WHITELIST",
        location_id="LOC-T1",
        evse_uid=tx.evse.uid,
        connector_id="1",
        currency="EUR",
        status="ACTIVE",
    )


def start(station, id_tag=EMSP_TOKEN, at=T0):
    """A 1.6 StartTransaction on connector 1 at 1000 Wh."""
    tx, authorization = transaction_start_16(
        station_pk=station.pk, connector_id=1, id_tag=id_tag, meter_start=1000, timestamp=at
    )
    assert authorization.accepted
    return tx


def reading(station, tx, minutes, wh):
    """A meter value `minutes` after T0."""
    meter_values_record(
        station_pk=station.pk,
        ocpp_evse_id=1,
        transaction_pk=tx.pk,
        samples=[Sample(timestamp=T0 + dt.timedelta(minutes=minutes), value=Decimal(wh), unit="Wh")],
    )


def stop(station, tx, minutes, wh):
    """A 1.6 StopTransaction `minutes` after T0."""
    transaction_stop_16(
        station_pk=station.pk,
        transaction_id=int(tx.transaction_id),
        meter_stop=wh,
        timestamp=T0 + dt.timedelta(minutes=minutes),
    )


def as_json(value):
    """What the EMSP parses from our JSON."""
    return json.loads(json.dumps(value, cls=DecimalJSONEncoder))


def deliver_all():
    """What the workers do: deliver every due message, oldest first."""
    for message in OutboxMessage.objects.filter(status=OutboxStatus.PENDING).order_by("id"):
        outbox_deliver(message_id=message.pk)
