"""The per-CALL fast paths store and say exactly what the ORM paths they replaced did: the message log's batch
insert, samples inserted as plain values, the connection's transactionId memo, a status change in one statement on
PostgreSQL, the dashboard's event batch read as values, and the key-case conversion done once per key."""

import contextlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import ocpp
import pytest
from django.db import connection
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case

from cpo.dashboard.receivers import evse_events, station_events, transaction_events
from cpo.models import EVSE
from ocpp_gateway import events
from ocpp_gateway.handlers.base import keys_to_camel_case, keys_to_snake_case
from ocpp_gateway.models import MessageLog, MeterValue, Transaction
from ocpp_gateway.services.availability import evse_status_update
from ocpp_gateway.services.message_log import message_log_write
from ocpp_gateway.services.meter_values import Sample, meter_values_receive, meter_values_record
from ocpp_gateway.services.transactions import transaction_start_16, transaction_stop_16

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def station(station_factory):
    return station_factory("CP-HOT")[0]


def test_a_message_log_batch_is_stored_as_queued_with_and_without_a_clock_skew(station):
    at = datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC)
    entry = dict(
        station_id=station.pk,
        identity=station.identity,
        direction="IN",
        message_type=2,
        unique_id="42",
        action="Heartbeat",
        payload='[2,"42","Heartbeat",{}]',
        created_at=at,
    )
    answer = dict(entry, direction="OUT", message_type=3, action="Heartbeat", payload="[3,\"42\",{'x': '\\\\N'}]")
    message_log_write(entries=[dict(entry, clock_skew=-3600), answer, dict(entry, station_id=None, message_type=None)])
    rows = list(
        MessageLog.objects.order_by("id").values_list(
            "station_id", "identity", "direction", "message_type", "unique_id", "action", "payload", "clock_skew",
            "created_at",
        )
    )  # fmt: skip
    assert rows == [
        (station.pk, "CP-HOT", "IN", 2, "42", "Heartbeat", '[2,"42","Heartbeat",{}]', -3600, at),
        (station.pk, "CP-HOT", "OUT", 3, "42", "Heartbeat", "[3,\"42\",{'x': '\\\\N'}]", None, at),
        (None, "CP-HOT", "IN", None, "42", "Heartbeat", '[2,"42","Heartbeat",{}]', None, at),
    ]
    message_log_write(entries=[])
    assert MessageLog.objects.count() == 3


def test_samples_are_stored_with_their_values_signed_data_and_context_and_repeats_are_skipped(station):
    signed = {"signedMeterData": "AAEC", "signingMethod": "ECDSAP256SHA256", "encodingMethod": "OCMF"}
    samples = [
        Sample(timestamp=T0, value=Decimal("1234.567891"), unit="Wh", context="Sample.Periodic", location="Outlet"),
        Sample(timestamp=T0, value=None, measurand="Power.Active.Import", format="SignedData", signed_data=signed),
        Sample(timestamp=T0, value=Decimal("16"), measurand="Current.Import", unit="A", phase="L1"),
        Sample(timestamp=T0, value=None, measurand="Voltage", signed_data="opaque-1.6-signed-value"),
    ]
    assert meter_values_record(station_pk=station.pk, ocpp_evse_id=1, transaction_pk=None, samples=samples) == 4
    meter_values_record(station_pk=station.pk, ocpp_evse_id=1, transaction_pk=None, samples=samples)  # a repeat
    meter_values_record(station_pk=station.pk, ocpp_evse_id=None, transaction_pk=None, samples=samples[:1])
    stored = {mv.measurand + str(mv.ocpp_evse_id): mv for mv in MeterValue.objects.all()}
    assert len(stored) == 5
    energy = stored["Energy.Active.Import.Register1"]
    assert (energy.value, energy.unit, energy.context, energy.location, energy.timestamp, energy.transaction_id) == (
        Decimal("1234.567891"),
        "Wh",
        "Sample.Periodic",
        "Outlet",
        T0,
        None,
    )
    assert stored["Power.Active.Import1"].signed_data == signed
    assert stored["Power.Active.Import1"].value is None and stored["Power.Active.Import1"].format == "SignedData"
    assert stored["Current.Import1"].phase == "L1" and stored["Current.Import1"].value == Decimal(16)
    assert stored["Voltage1"].signed_data == "opaque-1.6-signed-value"
    assert stored["Energy.Active.Import.RegisterNone"].ocpp_evse_id is None


def test_meter_values_of_a_named_transaction_find_it_once_per_connection(
    station, local_token, django_assert_num_queries
):
    tx, _ = transaction_start_16(
        station_pk=station.pk, connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp=T0
    )
    memo: dict[str, int] = {}

    def receive(minute: int, wh: int) -> None:
        meter_values_receive(
            station_pk=station.pk,
            ocpp_evse_id=1,
            transaction_id=int(tx.transaction_id),
            samples=[Sample(timestamp=T0 + timedelta(minutes=minute), value=Decimal(wh), unit="Wh")],
            known_transactions=memo,
        )

    receive(1, 100)
    assert memo == {tx.transaction_id: tx.pk}
    # The samples and the transaction's reading, no lookup: one statement on PostgreSQL (the INSERT in a WITH), two
    # on SQLite.
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):
        receive(2, 200)
    tx.refresh_from_db()
    assert (tx.meter_last, MeterValue.objects.filter(transaction=tx).count()) == (Decimal(200), 2)
    transaction_stop_16(
        station_pk=station.pk, transaction_id=int(tx.transaction_id), meter_stop=300, timestamp=T0 + timedelta(hours=1)
    )
    receive(3, 250)  # a late sample of the ended transaction: stored with it, moves nothing
    tx.refresh_from_db()
    assert (tx.status, tx.meter_last, MeterValue.objects.filter(transaction=tx).count()) == ("ENDED", 200, 3)


def test_the_dashboard_batch_says_what_the_database_says(station, local_token):
    tx, _ = transaction_start_16(
        station_pk=station.pk, connector_id=1, id_tag=local_token.uid, meter_start=1000, timestamp=T0
    )
    Transaction.objects.filter(pk=tx.pk).update(meter_last=Decimal(8500))
    evse = EVSE.objects.get(station=station, ocpp_evse_id=1)
    EVSE.objects.filter(pk=evse.pk).update(status="CHARGING", ocpp_status="Charging")
    assert transaction_events([tx.pk]) == [
        {
            "kind": "transaction",
            "station": "CP-HOT",
            "location": station.location_id,
            "transaction": tx.pk,
            "ocpp_evse_id": 1,
            "status": "ACTIVE",
            "energy_kwh": 7.5,
        }
    ]
    Transaction.objects.filter(pk=tx.pk).update(meter_stop=Decimal(900), status="ENDED")
    assert transaction_events([tx.pk])[0]["energy_kwh"] == 0.0  # a meter that went backwards delivered nothing
    assert evse_events([evse.pk]) == [
        {
            "kind": "evse_status",
            "station": "CP-HOT",
            "location": station.location_id,
            "ocpp_evse_id": 1,
            "status": "CHARGING",
            "ocpp_status": "Charging",
        }
    ]
    assert station_events([station.pk]) == [
        {"kind": "station", "station": "CP-HOT", "location": station.location_id, "online": False}
    ]


def schema_keys() -> set[str]:
    """Every property name of every schema the `ocpp` library ships (all versions)."""
    keys: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            keys.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in Path(ocpp.__file__).parent.glob("v*/schemas/*.json"):
        walk(json.loads(path.read_text()))
    return keys


def test_keys_are_converted_as_the_ocpp_library_converts_them():
    keys = schema_keys()
    assert len(keys) > 300
    payload = {key: [{key: 1}, "x"] for key in keys}
    assert keys_to_snake_case(payload) == camel_to_snake_case(payload)
    snake = camel_to_snake_case(payload)
    assert keys_to_camel_case(snake) == snake_to_camel_case(snake)


def test_a_status_change_is_one_statement_on_postgresql_and_an_older_report_changes_nothing(
    station, django_assert_num_queries, django_capture_on_commit_callbacks
):
    """Available then Unavailable on connector 2 (a fifth of a network's CALLs), the change a single UPDATE that
    returns what the EVSE held (PostgreSQL; SQLite reads it locked, then writes), announced; a replayed, older report
    (Faulted) moves nothing and announces nothing."""
    announced = []

    def remember(sender, **kwargs):
        announced.append((kwargs["status"], kwargs["ocpp_status"]))

    events.connector_status_changed.connect(remember)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            evse_status_update(station_pk=station.pk, ocpp_evse_id=2, ocpp_status="Available", timestamp=T0)
        counted = django_assert_num_queries(1) if connection.vendor == "postgresql" else contextlib.nullcontext()
        with counted, django_capture_on_commit_callbacks(execute=True):
            evse_status_update(
                station_pk=station.pk, ocpp_evse_id=2, ocpp_status="Unavailable", timestamp=T0 + timedelta(minutes=1)
            )
        with django_capture_on_commit_callbacks(execute=True):
            evse_status_update(
                station_pk=station.pk, ocpp_evse_id=2, ocpp_status="Faulted", timestamp=T0 + timedelta(seconds=30)
            )
    finally:
        events.connector_status_changed.disconnect(remember)
    evse = EVSE.objects.get(station=station, ocpp_evse_id=2)
    assert (evse.status, evse.ocpp_status, evse.status_updated) == (
        "INOPERATIVE",
        "Unavailable",
        T0 + timedelta(minutes=1),
    )
    assert announced[-1] == ("INOPERATIVE", "Unavailable") and ("OUTOFORDER", "Faulted") not in announced
