"""Sessions and CDRs from what a charger did: transactions and meter values built through the gateway's
services, then `session_sync` / `cdr_create` / `cdr_credit` as the Celery tasks call them."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from billing.models import Cdr, Session
from billing.pricing import price_session
from billing.selectors import cdr_as_ocpi, session_as_ocpi
from billing.services import NotBillable, cdr_create, cdr_credit, session_sync
from billing.usage import session_usage
from cpo.models import Connector
from ocpp_gateway.services.availability import evse_status_update
from ocpp_gateway.services.meter_values import Sample
from ocpp_gateway.services.transactions import (
    TransactionEventInput,
    transaction_event_201,
    transaction_start_16,
)
from tests.billing.factories import HOUR, T0, component, price, reading, start, stop, tariff_make


def test_the_session_follows_the_meter_values_and_the_tariff(station, energy_tariff, emsp_token):
    """kWh since meter_start, € 1.00 + € 0.35/kWh; kWh readings are converted to Wh."""
    tx = start(station, emsp_token, meter_start=1000)
    session = session_sync(transaction_pk=tx.pk, now=T0 + dt.timedelta(minutes=1))
    assert (session.status, session.kwh, session.total_cost) == ("ACTIVE", 0, price(excl="1.00", incl="1.21"))

    reading(station, tx, T0 + HOUR / 2, "6000")
    session = session_sync(transaction_pk=tx.pk, now=T0 + HOUR / 2)
    assert session.kwh == Decimal(5)
    assert session.total_cost == price(excl="2.75", incl="3.33")  # 1.00 + 1.75; incl 1.21 + 2.1175

    reading(station, tx, T0 + dt.timedelta(minutes=45), "8.5", unit="kWh")
    session = session_sync(transaction_pk=tx.pk, now=T0 + dt.timedelta(minutes=45))
    assert session.kwh == Decimal("7.5")

    stop(station, tx, T0 + HOUR, 11000)
    session = session_sync(transaction_pk=tx.pk)
    assert session.status == "COMPLETED"
    assert session.end_date_time == T0 + HOUR
    assert session.kwh == Decimal(10)
    assert session.total_cost == price(excl="4.50", incl="5.45")
    assert session.cdr_token == {
        "country_code": "NL",
        "party_id": "EXM",
        "uid": emsp_token,
        "type": "RFID",
        "contract_id": "NL-EXM-C00000001-X",
    }
    assert (session.auth_method, session.authorization_reference) == ("AUTH_REQUEST", "REF-1")
    assert (session.emsp_country_code, session.emsp_party_id) == ("NL", "EXM")
    assert (session.location_id, session.evse_uid, session.connector_id) == ("LOC-T1", "CP-BILL-1-1", "1")
    assert session.tariffs[0]["id"] == "AC-1"  # the first tariff id of the connector that exists
    assert Session.objects.count() == 1


def test_the_cdr_equals_the_final_session_pricing_and_is_written_once(station, energy_tariff, emsp_token):
    tx = start(station, emsp_token, meter_start=0)
    reading(station, tx, T0 + HOUR / 2, "5000")
    stop(station, tx, T0 + HOUR, 12345)
    session = session_sync(transaction_pk=tx.pk)
    cdr = cdr_create(session=session)
    again = cdr_create(session=session)
    assert again.pk == cdr.pk and Cdr.objects.count() == 1
    assert cdr.id == session.id and cdr.session_id == session.id
    assert cdr.total_cost == session.total_cost == price(excl="5.32", incl="6.44")
    assert cdr.total_energy == session.kwh == Decimal("12.345")
    assert cdr.total_time == Decimal(1)
    assert cdr.charging_periods == session.charging_periods
    assert (cdr.total_fixed_cost_excl_vat, cdr.total_energy_cost_excl_vat) == (Decimal("1.00"), Decimal("4.32"))
    # The engine, run again on the final usage, agrees to the cent.
    tx.refresh_from_db()
    usage = session_usage(tx=tx, time_zone="Europe/Amsterdam")
    assert price_session(tariff=energy_tariff, usage=usage).total_cost.as_ocpi() == cdr.total_cost
    # Once the CDR exists, the session is final: late meter values change neither.
    reading(station, tx, T0 + HOUR * 3 / 4, "99000")
    assert session_sync(transaction_pk=tx.pk).kwh == Decimal("12.345")
    assert session_sync(transaction_pk=tx.pk).total_cost == cdr.total_cost


def test_a_cdr_needs_a_completed_session(station, energy_tariff, emsp_token):
    tx = start(station, emsp_token)
    session = session_sync(transaction_pk=tx.pk, now=T0 + HOUR)
    with pytest.raises(NotBillable, match="ACTIVE"):
        cdr_create(session=session)
    assert not Cdr.objects.exists()


def test_parking_starts_when_the_car_stops_taking_energy(station, emsp_token):
    """€ 2/h charging, € 5/h parking: SuspendedEV after 1 h, unplugged 30 min later."""
    tariff = tariff_make("TIME-PARK", component("TIME", "2.00", vat=None), component("PARKING_TIME", "5.00", vat=None))
    Connector.objects.filter(evse__station=station).update(tariff_ids=[tariff.id])
    tx = start(station, emsp_token, meter_start=0)
    evse_status_update(station_pk=station.pk, ocpp_evse_id=1, ocpp_status="Charging", timestamp=T0)
    reading(station, tx, T0 + HOUR, "11000")
    evse_status_update(station_pk=station.pk, ocpp_evse_id=1, ocpp_status="SuspendedEV", timestamp=T0 + HOUR)
    stop(station, tx, T0 + HOUR * 3 / 2, 11000)
    cdr = cdr_create(session=session_sync(transaction_pk=tx.pk))
    assert cdr.total_parking_time == Decimal("0.5")
    assert cdr.total_time == Decimal("1.5")
    assert (cdr.total_time_cost_excl_vat, cdr.total_parking_cost_excl_vat) == (Decimal("2.00"), Decimal("2.50"))
    assert cdr.total_cost == price(excl="4.50", incl="4.50")
    assert [d["type"] for p in cdr.charging_periods for d in p["dimensions"]] == ["ENERGY", "TIME", "PARKING_TIME"]
    assert cdr.charging_periods[1]["start_date_time"] == "2026-11-20T11:00:00Z"


def test_a_pause_by_the_evse_is_not_parking(station, emsp_token):
    tariff = tariff_make("TIME-PARK2", component("TIME", "2.00", vat=None), component("PARKING_TIME", "5.00", vat=None))
    Connector.objects.filter(evse__station=station).update(tariff_ids=[tariff.id])
    tx = start(station, emsp_token, meter_start=0)
    evse_status_update(station_pk=station.pk, ocpp_evse_id=1, ocpp_status="SuspendedEVSE", timestamp=T0 + HOUR / 2)
    stop(station, tx, T0 + HOUR, 5000)
    cdr = cdr_create(session=session_sync(transaction_pk=tx.pk))
    assert cdr.total_parking_time is None and cdr.total_cost == price(excl="2.00", incl="2.00")


def test_without_a_tariff_the_session_has_no_cost_and_the_cdr_is_free(station, emsp_token, caplog):
    tx = start(station, emsp_token, meter_start=0)
    stop(station, tx, T0 + HOUR, 7000)
    session = session_sync(transaction_pk=tx.pk)
    assert session.total_cost is None and session.kwh == 7
    assert "no tariff" in caplog.text
    assert "total_cost" not in session_as_ocpi(session=session)
    assert all("tariff_id" not in p for p in session.charging_periods)
    cdr = cdr_create(session=session)
    assert cdr.total_cost == price(excl="0", incl="0") and cdr.tariffs == []


def test_a_refused_token_gives_an_invalid_session_and_no_cdr(station, energy_tariff):
    tx, auth = transaction_start_16(station_pk=station.pk, connector_id=1, id_tag="NOBODY", meter_start=0, timestamp=T0)
    assert not auth.accepted
    stop(station, tx, T0 + HOUR, 1000)
    session = session_sync(transaction_pk=tx.pk)
    assert session.status == "INVALID"
    with pytest.raises(NotBillable):
        cdr_create(session=session)


def test_a_local_token_is_billed_to_this_cpo(station, energy_tariff, local_token, settings):
    tx = start(station, local_token.uid, meter_start=0)
    session = session_sync(transaction_pk=tx.pk, now=T0)
    assert (session.emsp_country_code, session.emsp_party_id) == ("", "")
    assert session.cdr_token["country_code"] == settings.OCPI_COUNTRY_CODE
    assert session.cdr_token["contract_id"] == local_token.contract_id
    assert session.auth_method == "WHITELIST"


def test_sync_and_cdr_twice_give_one_session_and_one_cdr(station, energy_tariff, emsp_token):
    tx = start(station, emsp_token)
    first = session_sync(transaction_pk=tx.pk, now=T0)
    second = session_sync(transaction_pk=tx.pk, now=T0)
    assert first.id == second.id and Session.objects.count() == 1
    assert second.last_updated == first.last_updated  # nothing changed, nothing to push
    stop(station, tx, T0 + HOUR, 3000)
    session = session_sync(transaction_pk=tx.pk)
    assert cdr_create(session=session).pk == cdr_create(session=session_sync(transaction_pk=tx.pk)).pk
    assert Cdr.objects.count() == 1


def test_a_201_transaction_with_kwh_and_signed_meter_values(station, energy_tariff, emsp_token):
    signed = {
        "signed_meter_data": "T0NNRnx7fXx7fQ==",
        "signing_method": "ECDSA-secp256r1-SHA256",
        "encoding_method": "OCMF",
        "public_key": "MFkwEwYHKoZIzj0CAQ==",
    }

    def event(seq_no, event_type, at, kwh, context, **kwargs):
        return TransactionEventInput(
            event_type=event_type,
            timestamp=at,
            trigger_reason="MeterValuePeriodic",
            seq_no=seq_no,
            transaction_id="TX-201",
            ocpp_evse_id=2,
            connector_id=1,
            samples=(Sample(timestamp=at, value=Decimal(kwh), unit="kWh", context=context, signed_data=signed),),
            **kwargs,
        )

    transaction_event_201(
        station_pk=station.pk,
        event=event(
            0,
            "Started",
            T0,
            "100",
            "Transaction.Begin",
            id_token=emsp_token,
            id_token_type="ISO14443",
            charging_state="Charging",
        ),
    )
    tx, _ = transaction_event_201(
        station_pk=station.pk, event=event(1, "Updated", T0 + HOUR / 2, "104", "Sample.Periodic")
    )
    assert session_sync(transaction_pk=tx.pk, now=T0 + HOUR / 2).kwh == 4
    tx, _ = transaction_event_201(station_pk=station.pk, event=event(2, "Ended", T0 + HOUR, "110", "Transaction.End"))
    session = session_sync(transaction_pk=tx.pk)
    assert (session.kwh, session.evse_uid, session.connector_id) == (10, "CP-BILL-1-2", "1")
    cdr = cdr_create(session=session)
    assert cdr.signed_data["encoding_method"] == "OCMF"
    assert cdr.signed_data["public_key"] == signed["public_key"]
    assert [v["nature"] for v in cdr.signed_data["signed_values"]] == ["Start", "Intermediate", "End"]
    assert {v["signed_data"] for v in cdr.signed_data["signed_values"]} == {signed["signed_meter_data"]}


def test_a_credit_cdr_negates_the_costs_and_references_the_original(station, energy_tariff, emsp_token):
    tx = start(station, emsp_token, meter_start=0)
    stop(station, tx, T0 + HOUR, 10000)
    cdr = cdr_create(session=session_sync(transaction_pk=tx.pk))
    credit = cdr_credit(cdr=cdr, reason="meter fault")
    assert cdr_credit(cdr=cdr).pk == credit.pk  # one credit per CDR
    assert (credit.id, credit.credit, credit.credit_reference_id) == (f"{cdr.id}-C", True, cdr.id)
    assert credit.total_cost == price(excl="-4.50", incl="-5.45")
    assert credit.total_energy_cost_excl_vat == -cdr.total_energy_cost_excl_vat
    assert (credit.total_energy, credit.cdr_location, credit.tariffs) == (
        cdr.total_energy,
        cdr.cdr_location,
        cdr.tariffs,
    )
    assert credit.remark == "meter fault"
    cdr.refresh_from_db()
    assert cdr.total_cost == price(excl="4.50", incl="5.45")  # the original is untouched
    ocpi = cdr_as_ocpi(cdr=credit)
    assert (ocpi["credit"], ocpi["credit_reference_id"]) == (True, cdr.id)
    assert "credit" not in cdr_as_ocpi(cdr=cdr)
    with pytest.raises(ValueError, match="is itself a credit CDR"):
        cdr_credit(cdr=credit)


def test_cdrs_are_immutable_in_the_database(station, energy_tariff, emsp_token):
    tx = start(station, emsp_token, meter_start=0)
    stop(station, tx, T0 + HOUR, 10000)
    cdr = cdr_create(session=session_sync(transaction_pk=tx.pk))
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        Cdr.objects.filter(pk=cdr.pk).update(total_cost_excl_vat=Decimal(0))
    with pytest.raises(IntegrityError), transaction.atomic():
        Cdr.objects.filter(pk=cdr.pk).update(remark="edited")


def test_the_database_refuses_a_credit_without_reference_or_with_a_positive_total(station, energy_tariff, emsp_token):
    tx = start(station, emsp_token, meter_start=0)
    stop(station, tx, T0 + HOUR, 10000)
    cdr = cdr_create(session=session_sync(transaction_pk=tx.pk))
    values = {f.attname: getattr(cdr, f.attname) for f in Cdr._meta.concrete_fields}
    for bad in (
        dict(id="X1", credit=True),  # no credit_reference
        dict(id="X2", credit=True, credit_reference_id=cdr.id),  # positive total
        dict(id="X3", credit=False),  # a second non-credit CDR for the session
        dict(id="X4", credit=False, total_energy=Decimal(-1)),
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            Cdr.objects.create(**{**values, **bad})


def test_a_transaction_without_evse_is_not_billable(location, emsp_token):
    from cpo.services import station_create

    station, _ = station_create(identity="CP-NOLOC", location=None, evses=0)
    tx = start(station, emsp_token)
    with pytest.raises(NotBillable, match="no EVSE"):
        session_sync(transaction_pk=tx.pk, now=T0)
