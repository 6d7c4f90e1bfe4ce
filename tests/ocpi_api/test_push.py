"""Location and tariff pushes: EVSE status PATCHes when a charger reports a new status, PUTs when staff edit assets
or tariffs, DELETE when a tariff goes, each to every registered partner with the Receiver endpoint, and no one else."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from billing.models import Tariff
from cpo.models import EVSE, ChargingStation, Connector
from ocpi_api import receivers, selectors
from ocpi_api.models import OutboxMessage, OutboxStatus, PartnerStatus
from ocpi_api.tasks import evse_status_push_batch
from ocpp_gateway.models import GatewayProcess
from ocpp_gateway.services.availability import evse_status_update
from ocpp_gateway.services.liveness import stations_liveness_check
from ocpp_gateway.services.provisioning import station_connected, stations_disconnected
from tests.e2e.emsp import partner_for
from tests.ocpi_api.factories import auth

pytestmark = pytest.mark.django_db


@pytest.fixture
def emsp(receiving_emsp):
    return receiving_emsp


@pytest.fixture
def station(station_factory):
    """A station whose charger is connected (the statuses it reports are what partners see while it is)."""
    station, _ = station_factory("CP-PUSH", evses=2)
    ChargingStation.objects.filter(pk=station.pk).update(online=True)
    station.online = True
    return station


@pytest.fixture
def partners(emsp, station):
    """One EMSP with a locations Receiver, one without, one that unregistered."""
    with_locations = partner_for(emsp)
    without = partner_for(
        emsp,
        token="t2",
        country_code="DE",
        party_id="NOL",
        endpoints=[e for e in emsp.endpoints() if e["identifier"] not in ("locations", "tariffs")],
    )
    gone = partner_for(emsp, token="t3", country_code="BE", party_id="OLD", status=PartnerStatus.UNREGISTERED)
    return with_locations, without, gone


def status(station, number, ocpp_status, capture):
    with capture(execute=True):
        evse_status_update(station_pk=station.pk, ocpp_evse_id=number, ocpp_status=ocpp_status)


def test_a_status_change_is_patched_to_partners_with_a_locations_receiver(
    emsp, eager, station, partners, django_capture_on_commit_callbacks
):
    status(station, 1, "Charging", django_capture_on_commit_callbacks)
    [message] = OutboxMessage.objects.all()
    assert message.partner == partners[0] and message.status == OutboxStatus.SENT
    [(method, path, body)] = emsp.locations
    evse = EVSE.objects.get(station=station, ocpp_evse_id=1)
    assert (method, path) == ("PATCH", f"NL/CPO/LOC-T1/{evse.uid}")
    assert (
        body["status"] == "CHARGING" and body["last_updated"].endswith("Z") and set(body) == {"status", "last_updated"}
    )


@pytest.mark.django_db(transaction=True)
def test_a_batch_of_status_changes_from_a_gateway_process_reads_the_partners_once(emsp, station, partners, monkeypatch):
    """With a broker, a gateway process hands its status changes on in batches (`evse_status_push_batch`, the EVSEs
    on worker threads): one PATCH per EVSE to the partner with a locations Receiver, and the partner list read once
    per batch, not per EVSE."""
    for number in (1, 2):
        evse_status_update(station_pk=station.pk, ocpp_evse_id=number, ocpp_status="Charging")
    reads, read = [], selectors.partners_with_receiver
    monkeypatch.setattr(selectors, "partners_with_receiver", lambda **kw: reads.append(kw) or read(**kw))
    assert evse_status_push_batch(list(station.evses.values_list("pk", flat=True))) == 2
    patched = OutboxMessage.objects.filter(module="locations", method="PATCH")
    assert sorted((m.partner_id, m.body["status"]) for m in patched) == [(partners[0].pk, "CHARGING")] * 2
    assert reads == [{"module": "locations"}]


@pytest.mark.django_db(transaction=True)
def test_stations_gone_offline_reach_the_worker_as_one_batch_and_each_of_their_evses_is_patched_unknown(
    emsp, station, partners, monkeypatch, django_assert_max_num_queries
):
    """With a broker, a gateway process hands its stations that went offline on in a batch, unresolved (a reconnect
    storm takes thousands offline and back): the worker finds their EVSEs and PATCHes each UNKNOWN."""

    dispatched = []
    monkeypatch.setattr(receivers, "task_dispatch", lambda task, *args: dispatched.append((task.name, args)))
    monkeypatch.setattr(receivers, "in_process", lambda task: False)
    ChargingStation.objects.filter(pk=station.pk).update(online=True)
    with django_assert_max_num_queries(0):  # the gateway's side: no query per station
        receivers.on_station_online_changed(None, station_pk=station.pk)
    receivers.station_changes.flush_now(list(receivers.station_changes.pending))
    receivers.station_changes.pending.clear()
    assert dispatched == [("ocpi_api.tasks.evse_status_push_batch", ([], [station.pk]))]

    ChargingStation.objects.filter(pk=station.pk).update(online=False)
    assert evse_status_push_batch([], [station.pk]) == station.evses.count()
    patched = OutboxMessage.objects.filter(module="locations", method="PATCH")
    assert sorted(m.body["status"] for m in patched) == ["UNKNOWN"] * station.evses.count()


def test_the_same_status_again_pushes_nothing_and_a_station_wide_fault_pushes_every_evse(
    emsp, eager, station, partners, django_capture_on_commit_callbacks
):
    status(station, 1, "Charging", django_capture_on_commit_callbacks)
    status(station, 1, "Charging", django_capture_on_commit_callbacks)
    status(station, 0, "Available", django_capture_on_commit_callbacks)  # the station as a whole is fine
    assert len(emsp.locations) == 1
    status(station, 0, "Unavailable", django_capture_on_commit_callbacks)
    uids = sorted(station.evses.values_list("uid", flat=True))
    assert sorted((path.split("/")[-1], body["status"]) for _, path, body in emsp.locations[1:]) == [
        (uid, "INOPERATIVE") for uid in uids
    ]
    status(station, 0, "Available", django_capture_on_commit_callbacks)  # back: each EVSE's own status again
    assert sorted((path.split("/")[-1], body["status"]) for _, path, body in emsp.locations[1 + len(uids) :]) == [
        (uid, own) for uid, own in zip(uids, ["CHARGING", *["UNKNOWN"] * (len(uids) - 1)], strict=True)
    ]


def test_while_the_partner_is_down_status_changes_of_one_evse_coalesce_into_the_latest(
    emsp, eager, station, partners, django_capture_on_commit_callbacks, settings
):
    from ocpi_api.delivery import outbox_deliver

    settings.OCPI_OUTBOX_RETRY_BASE = 3600  # no retry within the test
    emsp.go_down()
    for ocpp_status in ("Charging", "Faulted", "Unavailable"):
        status(station, 1, ocpp_status, django_capture_on_commit_callbacks)
    status(station, 2, "Charging", django_capture_on_commit_callbacks)
    # The first PATCH was tried at once and failed; each next status of the same EVSE replaced the waiting one
    # (keeping its backoff). EVSE 2 waits behind it: a location's messages go in order.
    pending = list(OutboxMessage.objects.filter(status=OutboxStatus.PENDING).order_by("id"))
    assert [(m.path[-1], m.body["status"], m.attempts) for m in pending] == [
        ("1", "INOPERATIVE", 1),
        ("2", "CHARGING", 0),
    ]
    assert OutboxMessage.objects.filter(status=OutboxStatus.SUPERSEDED).count() == 2
    emsp.come_back()
    for message in pending:
        OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=message.created_at)
        assert outbox_deliver(message_id=message.pk) == "sent"
    statuses = [(path[-1], body["status"]) for _, path, body in emsp.locations]
    assert statuses == [("1", "INOPERATIVE"), ("2", "CHARGING")]


def test_unpublished_locations_are_not_pushed(emsp, eager, station, partners, django_capture_on_commit_callbacks):
    station.location.publish = False
    station.location.save()
    status(station, 1, "Charging", django_capture_on_commit_callbacks)
    assert OutboxMessage.objects.count() == 0


def test_staff_edits_put_the_location_evse_or_connector_but_gateway_status_writes_do_not(
    emsp, station, partners, django_capture_on_commit_callbacks
):
    location = station.location
    evse = EVSE.objects.get(station=station, ocpp_evse_id=2)
    with django_capture_on_commit_callbacks(execute=True):
        location.name = "Renamed Plaza"
        location.save()
        evse.physical_reference = "B"
        evse.save()
        connector = Connector.objects.get(evse=evse)
        connector.max_electric_power = 11000
        connector.save()
        evse.status = "BLOCKED"
        evse.save(update_fields=["status", "last_updated"])  # the way the gateway writes a status
    assert [(m.method, m.path) for m in OutboxMessage.objects.order_by("id")] == [
        ("PUT", "NL/CPO/LOC-T1"),
        ("PUT", f"NL/CPO/LOC-T1/{evse.uid}"),
        ("PUT", f"NL/CPO/LOC-T1/{evse.uid}/1"),
    ]
    location_body, evse_body, connector_body = (m.body for m in OutboxMessage.objects.order_by("id"))
    assert location_body["name"] == "Renamed Plaza" and len(location_body["evses"]) == 2
    assert evse_body["uid"] == evse.uid and evse_body["physical_reference"] == "B"
    assert connector_body == {**connector_body, "id": "1", "max_electric_power": 11000}
    assert {m.partner_id for m in OutboxMessage.objects.all()} == {partners[0].pk}


def test_a_failed_edit_announces_nothing(emsp, station, partners):
    location = station.location
    with pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012 - the edit and its failure, in one atomic block
        location.name = "Never"
        location.save()
        raise RuntimeError
    assert OutboxMessage.objects.count() == 0


def tariff(**changes):
    from billing.services import tariff_upsert_from_ocpi

    data = {
        "country_code": "NL",
        "party_id": "CPO",
        "id": "T-AC",
        "currency": "EUR",
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": Decimal("0.35"), "vat": Decimal("21"), "step_size": 1}]}
        ],
    }
    data.update(changes)
    return tariff_upsert_from_ocpi(data=data)


def test_tariff_saved_is_put_and_deleted_is_deleted(emsp, eager, partners, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        tariff()
    with django_capture_on_commit_callbacks(execute=True):
        Tariff.objects.get(pk="T-AC").delete()
    assert [(p["method"], p["path"]) for p in emsp.pushes] == [("PUT", "NL/CPO/T-AC"), ("DELETE", "NL/CPO/T-AC")]
    put = emsp.pushes[0]["body"]
    assert put["id"] == "T-AC" and put["elements"][0]["price_components"][0]["price"] == 0.35
    assert emsp.tariffs == {"NL/CPO/T-AC": None}


def test_a_tariff_edited_twice_before_delivery_is_put_once_with_the_last_version(emsp, partners, settings):
    tariff()
    tariff(currency="USD")
    [message] = OutboxMessage.objects.filter(status=OutboxStatus.PENDING)
    assert message.body["currency"] == "USD"


# -- a station offline: its EVSEs UNKNOWN to partners (OCPI 2.2.1 mod_locations, Status: "also used when offline") --
CHANNEL = "specific.gw-test!CP-PUSH"


def pulled(client, evse: EVSE) -> dict:
    """The EVSE as a partner pulls it (Locations Sender)."""
    answer = client.get(f"/ocpi/2.2.1/locations/{evse.location_id}/{evse.uid}", **auth("token-of-the-emsp"))
    assert answer.status_code == 200, answer.content
    return answer.json()["data"]


def pushed_statuses(emsp) -> dict[str, str]:
    return {path.split("/")[-1]: body["status"] for method, path, body in emsp.locations if method == "PATCH"}


@pytest.fixture
def connected(station, partners, django_capture_on_commit_callbacks):
    """The station's charger connected (as the gateway's consumer records it), reporting CHARGING and AVAILABLE."""
    ChargingStation.objects.filter(pk=station.pk).update(online=False)
    with django_capture_on_commit_callbacks(execute=True):
        station_connected(station_pk=station.pk, channel_name=CHANNEL, ocpp_version="ocpp1.6")
    status(station, 1, "Charging", django_capture_on_commit_callbacks)
    status(station, 2, "Available", django_capture_on_commit_callbacks)
    yield station
    stations_disconnected(sockets=[(station.pk, CHANNEL)])


def test_a_station_that_disconnects_is_unknown_to_partners_and_its_last_statuses_come_back_with_it(
    client, emsp, eager, connected, partners, django_capture_on_commit_callbacks
):
    charging, available = EVSE.objects.filter(station=connected).order_by("ocpp_evse_id")
    assert pushed_statuses(emsp) == {charging.uid: "CHARGING", available.uid: "AVAILABLE"}
    seen_before = pulled(client, charging)["last_updated"]
    emsp.locations.clear()

    with django_capture_on_commit_callbacks(execute=True):
        stations_disconnected(sockets=[(connected.pk, CHANNEL)])
    assert pushed_statuses(emsp) == {charging.uid: "UNKNOWN", available.uid: "UNKNOWN"}
    now_pulled = pulled(client, charging)
    assert now_pulled["status"] == "UNKNOWN" and now_pulled["last_updated"] > seen_before  # pulled by date_from too
    assert EVSE.objects.get(pk=charging.pk).status == "CHARGING"  # what staff see beside "offline"
    emsp.locations.clear()

    with django_capture_on_commit_callbacks(execute=True):
        station_connected(station_pk=connected.pk, channel_name=CHANNEL, ocpp_version="ocpp1.6")
    assert pushed_statuses(emsp) == {charging.uid: "CHARGING", available.uid: "AVAILABLE"}
    assert pulled(client, charging)["status"] == "CHARGING"


def test_a_station_whose_gateway_process_died_is_unknown_to_partners(
    client, emsp, eager, connected, partners, settings, django_capture_on_commit_callbacks
):
    """No disconnect ran (the process was killed): the liveness check marks it offline, and partners learn it."""
    settings.OCPP_GATEWAY_LEASE_SECONDS = 60
    now, long_ago = timezone.now(), timezone.now() - timedelta(seconds=120)
    for process_id, renewed_at in (("dead", long_ago), ("witness", now)):  # one stopped renewing, one vouches
        GatewayProcess.objects.create(
            id=process_id, host="gw", pid=1, started_at=long_ago, renewed_since=long_ago, renewed_at=renewed_at
        )
    ChargingStation.objects.filter(pk=connected.pk).update(gateway_process="dead")
    emsp.locations.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert stations_liveness_check() == [connected.pk]
    evses = EVSE.objects.filter(station=connected)
    assert pushed_statuses(emsp) == {evse.uid: "UNKNOWN" for evse in evses}
    assert {pulled(client, evse)["status"] for evse in evses} == {"UNKNOWN"}
