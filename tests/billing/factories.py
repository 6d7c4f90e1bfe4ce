"""Objects to bill: tariffs, and what a charger did (transactions and meter values built through the gateway's
services, as the consumers call them)."""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from billing.models import Tariff
from ocpp_gateway.models import Reservation
from ocpp_gateway.services.meter_values import Sample, meter_values_record
from ocpp_gateway.services.reservations import ReservationToken, reservation_answer_record, reservation_create
from ocpp_gateway.services.transactions import transaction_start_16, transaction_stop_16

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)


def tariff_make(tariff_id: str, *components: dict, **kwargs) -> Tariff:
    values = dict(
        id=tariff_id,
        country_code="NL",
        party_id="CPO",
        currency="EUR",
        elements=[{"price_components": list(components)}],
    )
    values.update(kwargs)
    tariff = Tariff(**values)
    tariff.full_clean()
    tariff.save()
    return tariff


def component(kind: str, price: str, vat: str | None = "21.0", step_size: int = 1) -> dict:
    data = {"type": kind, "price": Decimal(price), "step_size": step_size}
    if vat is not None:
        data["vat"] = Decimal(vat)
    return data


def start(station, id_tag, *, meter_start=1000, at=T0, connector_id=1, reservation_id=None):
    tx, auth = transaction_start_16(
        station_pk=station.pk,
        connector_id=connector_id,
        id_tag=id_tag,
        meter_start=meter_start,
        timestamp=at,
        reservation_id=reservation_id,
    )
    assert auth.accepted
    return tx


def reading(station, tx, at, value, unit="Wh", **kwargs):
    meter_values_record(
        station_pk=station.pk,
        ocpp_evse_id=tx.ocpp_evse_id,
        transaction_pk=tx.pk,
        samples=[Sample(timestamp=at, value=Decimal(value), unit=unit, **kwargs)],
    )


def stop(station, tx, at, meter_stop):
    transaction_stop_16(
        station_pk=station.pk, transaction_id=int(tx.transaction_id), meter_stop=meter_stop, timestamp=at
    )


def price(**kwargs):
    return {"excl_vat": Decimal(kwargs["excl"]), "incl_vat": Decimal(kwargs["incl"])}


# The token of the EMSP fixture `emsp_token`, as a partner's RESERVE_NOW names it.
RESERVATION_TOKEN = ReservationToken(
    id_tag="EMSP-TOKEN-1",
    token_uid="EMSP-TOKEN-1",
    token_type="RFID",
    contract_id="NL-EXM-C00000001-X",
    token_country_code="NL",
    token_party_id="EXM",
    authorization_reference="RES-REF-1",
)


def reservation_made(station, *, made_ago: dt.timedelta, answer: str = "Accepted") -> Reservation:
    """A partner's reservation of the station's EVSE 1 made `made_ago`, answered `answer` by the charger."""
    reservation = reservation_create(
        station=station,
        evse=station.evses.get(ocpp_evse_id=1),
        token=RESERVATION_TOKEN,
        expiry_date=timezone.now() + HOUR,
        source=Reservation.Source.PARTNER,
    )
    Reservation.objects.filter(pk=reservation.pk).update(created_at=timezone.now() - made_ago)
    return reservation_answer_record(reservation_pk=reservation.pk, status=answer)
