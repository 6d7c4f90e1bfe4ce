"""Gateway services without a socket: events after commit, replays, clocks and ordering."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cpo.models import EVSE, ChargingStation
from ocpp_gateway import events
from ocpp_gateway.models import MessageLog, MeterValue, Transaction
from ocpp_gateway.services.availability import evse_status_update
from ocpp_gateway.services.message_log import message_log_prune
from ocpp_gateway.services.meter_values import Sample, meter_values_record
from ocpp_gateway.services.transactions import (
    TRANSACTION_ID_16_MAX,
    transaction_id_16_next,
    transaction_start_16,
    transaction_stop_16,
    transactions_end_at_boot,
)

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def station(station_factory):
    return station_factory("CP-SVC")[0]


@pytest.fixture
def heard():
    """Every gateway event announced during the test, as (signal name, kwargs)."""
    got = []
    names = {sig: name for name, sig in vars(events).items() if isinstance(sig, events.Signal)}

    def receiver(signal, sender, **kwargs):
        got.append((names[signal], kwargs))

    for sig in names:
        sig.connect(receiver, weak=False)
    yield got
    for sig in names:
        sig.disconnect(receiver)


def test_events_are_announced_only_after_the_commit(station, local_token, heard, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        tx, _ = transaction_start_16(
            station_pk=station.pk, connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp=T0
        )
    assert heard == []
    for callback in callbacks:
        callback()
    assert heard == [("transaction_started", {"transaction_pk": tx.pk})]


def test_status_changes_are_events_and_stale_reports_are_ignored(station, heard, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        evse_status_update(station_pk=station.pk, ocpp_evse_id=1, ocpp_status="Charging", timestamp=T0)
        evse_status_update(
            station_pk=station.pk, ocpp_evse_id=1, ocpp_status="Available", timestamp=T0 - timedelta(minutes=5)
        )  # replayed from the charger's queue
        evse_status_update(station_pk=station.pk, ocpp_evse_id=1, ocpp_status="Charging", timestamp=T0)
    evse = EVSE.objects.get(station=station, ocpp_evse_id=1)
    assert evse.status == "CHARGING" and evse.ocpp_status == "Charging"
    assert [name for name, _ in heard] == ["connector_status_changed"]


def test_a_connector_the_charger_reports_but_we_did_not_register_is_recorded_unregistered(station):
    evse_status_update(
        station_pk=station.pk, ocpp_evse_id=5, ocpp_status="Faulted", error_code="GroundFailure", timestamp=T0
    )
    evse = EVSE.objects.get(station=station, ocpp_evse_id=5)
    assert (evse.status, evse.ocpp_error_code, evse.connectors.count()) == ("OUTOFORDER", "GroundFailure", 1)
    assert not evse.registered  # shown to staff, not published to partners until they register it


def test_with_auto_accept_a_connector_the_charger_reports_is_registered_on_first_sight(station, settings):
    settings.OCPP_AUTO_ACCEPT_CONNECTORS = True
    evse_status_update(station_pk=station.pk, ocpp_evse_id=6, ocpp_status="Available", timestamp=T0)
    assert EVSE.objects.get(station=station, ocpp_evse_id=6).registered


def test_a_stop_stamped_before_its_start_ends_at_the_start(station, local_token):
    tx, _ = transaction_start_16(
        station_pk=station.pk, connector_id=1, id_tag=local_token.uid, meter_start=100, timestamp=T0
    )
    tx, _ = transaction_stop_16(
        station_pk=station.pk,
        transaction_id=int(tx.transaction_id),
        meter_stop=200,
        timestamp=T0 - timedelta(seconds=30),
    )
    assert tx.ended_at == tx.started_at and tx.energy_wh == Decimal(100)


def test_repeated_meter_values_are_stored_once_and_kwh_is_read_as_wh(station, local_token):
    tx, _ = transaction_start_16(
        station_pk=station.pk, connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp=T0
    )
    samples = [Sample(timestamp=T0 + timedelta(minutes=1), value=Decimal("1.5"), unit="kWh")]
    meter_values_record(station_pk=station.pk, ocpp_evse_id=1, transaction_pk=tx.pk, samples=samples)
    meter_values_record(station_pk=station.pk, ocpp_evse_id=1, transaction_pk=tx.pk, samples=samples)
    assert MeterValue.objects.filter(transaction=tx).count() == 1
    assert Transaction.objects.get(pk=tx.pk).meter_last == Decimal(1500)


def test_per_phase_current_is_kept_on_the_transaction_for_load_management(station, local_token):
    """The newest Current.Import per phase, on the outlet side (the inlet's reading is the station's grid side);
    a message that reports phases again replaces all three, one that reports none leaves them."""
    tx, _ = transaction_start_16(
        station_pk=station.pk, connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp=T0
    )
    at = T0 + timedelta(minutes=1)

    def current(phase, amps, location="", when=at):
        return Sample(
            timestamp=when, value=Decimal(amps), measurand="Current.Import", unit="A", phase=phase, location=location
        )

    meter_values_record(
        station_pk=station.pk,
        ocpp_evse_id=1,
        transaction_pk=tx.pk,
        samples=[
            current("L1", "15.9", "Outlet"),
            current("L2", "0.2", "Outlet"),
            current("L3-N", "0", "Outlet"),
            current("L1", "40", "Inlet"),
            current("", "16.1"),  # the whole device: not a phase
        ],
    )
    tx.refresh_from_db()
    assert (tx.current_l1_last, tx.current_l2_last, tx.current_l3_last) == (Decimal("15.9"), Decimal("0.2"), 0)
    later = at + timedelta(minutes=1)
    meter_values_record(
        station_pk=station.pk, ocpp_evse_id=1, transaction_pk=tx.pk, samples=[current("L1", "12", when=later)]
    )
    tx.refresh_from_db()
    assert (tx.current_l1_last, tx.current_l2_last, tx.current_l3_last) == (Decimal(12), None, None)
    meter_values_record(
        station_pk=station.pk,
        ocpp_evse_id=1,
        transaction_pk=tx.pk,
        samples=[Sample(timestamp=later + timedelta(minutes=1), value=Decimal(2000), unit="Wh")],
    )
    tx.refresh_from_db()
    assert tx.current_l1_last == Decimal(12)


def test_the_message_log_is_pruned_after_its_retention(station):
    now = datetime.now(UTC)
    MessageLog.objects.create(
        station=station, identity=station.identity, direction="IN", payload="[]", created_at=now - timedelta(days=40)
    )
    MessageLog.objects.create(
        station=station, identity=station.identity, direction="IN", payload="[]", created_at=now - timedelta(days=1)
    )
    assert message_log_prune(older_than_days=30) == 1
    assert MessageLog.objects.count() == 1


def test_the_authorization_that_let_a_transaction_start_is_kept_on_it(station):
    from ocpp_gateway.authorization import AuthorizationResult, _authorizers, authorizer_register

    def emsp(request):
        if request.id_tag == "EMSP-TOKEN-1":
            return AuthorizationResult(
                status="Accepted",
                source="partner:7",
                auth_method="AUTH_REQUEST",
                token_uid="EMSP-TOKEN-1-FULL-UID",
                authorization_reference="REF-1",
                token_type="RFID",
                contract_id="NL-EXM-C1",
                country_code="NL",
                party_id="EXM",
            )
        return None

    authorizer_register(emsp)
    try:
        tx, auth = transaction_start_16(
            station_pk=station.pk, connector_id=1, id_tag="EMSP-TOKEN-1", meter_start=0, timestamp=T0
        )
        again, auth_again = transaction_start_16(
            station_pk=station.pk, connector_id=1, id_tag="EMSP-TOKEN-1", meter_start=0, timestamp=T0
        )
    finally:
        _authorizers.remove(emsp)
    tx.refresh_from_db()
    assert (
        tx.auth_method,
        tx.authorization_reference,
        tx.token_country_code,
        tx.token_party_id,
        tx.contract_id,
        tx.token_type,
    ) == ("AUTH_REQUEST", "REF-1", "NL", "EXM", "NL-EXM-C1", "RFID")
    assert again.pk == tx.pk and auth_again.authorization_reference == "REF-1"
    assert tx.token_uid == "EMSP-TOKEN-1-FULL-UID"


def test_charging_and_suspended_states_during_a_16_transaction_are_recorded(station, local_token):
    tx, _ = transaction_start_16(
        station_pk=station.pk, connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp=T0
    )
    evse_status_update(station_pk=station.pk, ocpp_evse_id=1, ocpp_status="Charging", timestamp=T0)
    evse_status_update(
        station_pk=station.pk, ocpp_evse_id=1, ocpp_status="SuspendedEV", timestamp=T0 + timedelta(hours=1)
    )
    evse_status_update(
        station_pk=station.pk, ocpp_evse_id=1, ocpp_status="SuspendedEV", timestamp=T0 + timedelta(hours=1)
    )  # replayed
    evse_status_update(station_pk=station.pk, ocpp_evse_id=2, ocpp_status="Charging", timestamp=T0)  # other EVSE
    assert list(tx.charging_states.values_list("charging_state", flat=True)) == ["Charging", "SuspendedEV"]


def test_transactions_of_stations_silent_and_offline_for_long_are_closed_at_their_last_reading(station, local_token):
    from django.utils import timezone

    from ocpp_gateway.services.transactions import transaction_close_stale

    old = timezone.now() - timedelta(days=3)
    stale, _ = transaction_start_16(
        station_pk=station.pk, connector_id=1, id_tag=local_token.uid, meter_start=10, timestamp=old
    )
    meter_values_record(
        station_pk=station.pk,
        ocpp_evse_id=1,
        transaction_pk=stale.pk,
        samples=[Sample(timestamp=old + timedelta(hours=1), value=Decimal(5010), unit="Wh")],
    )
    fresh, _ = transaction_start_16(
        station_pk=station.pk, connector_id=2, id_tag=local_token.uid, meter_start=0, timestamp=timezone.now()
    )
    assert transaction_close_stale(older_than_hours=48) == [stale.pk]
    stale.refresh_from_db()
    assert (stale.status, stale.meter_stop, stale.ended_at, stale.stop_reason) == (
        "ENDED",
        Decimal(5010),
        old + timedelta(hours=1),
        "Other",
    )
    assert Transaction.objects.get(pk=fresh.pk).status == "ACTIVE"


def test_a_reboot_close_and_the_late_stop_announce_one_end_and_one_correction(
    station, local_token, heard, django_capture_on_commit_callbacks
):
    """Billing completes the session and issues the CDR on `transaction_ended`: it is announced once. The late
    stop announces only that it corrected the stored values; a repeat of it announces nothing."""
    tx, _ = transaction_start_16(
        station_pk=station.pk, connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp=T0
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert transactions_end_at_boot(station_pk=station.pk) == [tx.pk]
        assert transactions_end_at_boot(station_pk=station.pk) == []
        for _ in range(2):
            transaction_stop_16(
                station_pk=station.pk,
                transaction_id=int(tx.transaction_id),
                meter_stop=900,
                timestamp=T0 + timedelta(minutes=5),
                reason="PowerLoss",
            )
    assert [name for name, _ in heard] == ["transaction_ended", "transaction_stop_corrected"]
    tx.refresh_from_db()
    assert (tx.ended_by, tx.stop_reason, tx.meter_stop, tx.ended_at) == (
        "reboot",
        "Reboot",
        900,
        T0 + timedelta(minutes=5),
    )


def test_preparing_after_a_transaction_without_a_stop_ends_it_but_charging_states_do_not(station, local_token):
    tx, _ = transaction_start_16(
        station_pk=station.pk, connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp=T0
    )
    for status in ("Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Faulted", "Unavailable"):
        evse_status_update(
            station_pk=station.pk, ocpp_evse_id=1, ocpp_status=status, timestamp=T0 + timedelta(minutes=1)
        )
    evse_status_update(station_pk=station.pk, ocpp_evse_id=2, ocpp_status="Available", timestamp=T0 + HOUR)
    tx.refresh_from_db()
    assert tx.status == "ACTIVE"  # nothing said connector 1 is free
    evse_status_update(station_pk=station.pk, ocpp_evse_id=1, ocpp_status="Preparing", timestamp=T0 + HOUR)
    tx.refresh_from_db()
    assert (tx.status, tx.ended_by, tx.stop_reason, tx.ended_at) == ("ENDED", "status", "Other", T0)


def test_16_ids_wrap_before_int32_ends_and_skip_ids_the_station_still_has(station):
    def given(transaction_id: str, minutes: int):
        Transaction.objects.create(
            station=station,
            transaction_id=transaction_id,
            ocpp_version="1.6",
            ocpp_evse_id=1,
            started_at=T0 + timedelta(minutes=minutes),
            meter_start=0,
            status="ENDED",
        )

    assert transaction_id_16_next(station_pk=station.pk) == 1
    given("1", 0)
    given("2", 1)
    given(str(TRANSACTION_ID_16_MAX - 1), 2)
    assert transaction_id_16_next(station_pk=station.pk) == TRANSACTION_ID_16_MAX
    given(str(TRANSACTION_ID_16_MAX), 3)
    assert transaction_id_16_next(station_pk=station.pk) == 3


def test_a_201_station_faulted_as_a_whole_changes_every_evse_and_its_recovery_changes_them_back(
    station, heard, django_capture_on_commit_callbacks
):
    """2.0.1 NotifyEvent AvailabilityState of the ChargingStation: each EVSE's shown status follows the station's."""
    from ocpp_gateway.selectors import evse_status_shown
    from ocpp_gateway.services.availability import station_availability_events, station_availability_record

    def notify(state: str, at: datetime):
        event = {"component": {"name": "ChargingStation"}, "variable": {"name": "AvailabilityState"}}
        reports = station_availability_events([{**event, "actual_value": state, "timestamp": at}])
        with django_capture_on_commit_callbacks(execute=True):
            station_availability_record(station_pk=station.pk, reports=reports)

    def shown() -> list[str]:
        return [evse_status_shown(evse=e) for e in EVSE.objects.filter(station=station).select_related("station")]

    ChargingStation.objects.filter(pk=station.pk).update(online=True)  # connected, as a station sending events is
    notify("Faulted", T0)
    assert shown() == ["OUTOFORDER", "OUTOFORDER"]
    assert sorted(kw["status"] for _, kw in heard) == ["OUTOFORDER", "OUTOFORDER"]
    notify("Faulted", T0 + HOUR)  # the same again: nothing new
    assert len(heard) == 2
    notify("Available", T0 + 2 * HOUR)
    assert shown() == ["UNKNOWN", "UNKNOWN"] and [kw["status"] for _, kw in heard[2:]] == ["UNKNOWN", "UNKNOWN"]
