"""A station's configuration on a live daphne: read on its first accepted boot (1.6 GetConfiguration, 2.0.1
GetBaseReport -> NotifyReport), stored per key / variable attribute, secrets never kept, replays change nothing."""

import asyncio

import pytest
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from ocpp_gateway.models import StationVariable
from ocpp_gateway.redaction import REDACTED
from tests.ocpp_gateway.chargers import Charger16, Charger201, connected, now_iso
from tests.support import await_until, start_daphne, stop


@pytest.fixture(scope="module")
def config_daphne(django_db_setup, django_db_blocker):
    """A daphne running its tasks in-process (also on Redis, where no Celery worker runs in these tests)."""
    server = start_daphne("config", CELERY_TASK_ALWAYS_EAGER="1")
    yield server
    stop(server)


pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def rows(identity: str) -> list[tuple]:
    return list(
        StationVariable.objects.filter(station__identity=identity)
        .order_by("component", "evse_id", "variable", "attribute_type")
        .values_list("component", "evse_id", "variable", "attribute_type", "value", "mutability", "unit", "data_type")
    )


class ConfiguredCharger16(Charger16):
    """A 1.6 charger with a few keys, one read-only and its Basic-auth password among them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration_reads = 0

    @on(Action16.get_configuration)
    def on_get_configuration(self, **kwargs):
        self.configuration_reads += 1
        return result16.GetConfiguration(
            configuration_key=[
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
                {"key": "AuthorizationKey", "readonly": False, "value": "0011223344556677"},
                {"key": "MeterValueSampleInterval", "readonly": False},
            ]
        )


def test_a_1_6_charger_booting_the_first_time_gets_its_configuration_keys_stored(config_daphne, station_factory):
    _, secret = station_factory("CFG16-A")

    async def scenario():
        async with connected(config_daphne.ocpp_url("CFG16-A"), "CFG16-A", secret, cls=ConfiguredCharger16) as cp:
            boot = await cp.call(call16.BootNotification(charge_point_model="W1", charge_point_vendor="ACME"))
            assert boot.status == "Accepted"
            await await_until(
                lambda: StationVariable.objects.filter(station__identity="CFG16-A").count() == 4, timeout=10
            )
            # A second boot: the configuration is known, it is not read again.
            await cp.call(call16.BootNotification(charge_point_model="W1", charge_point_vendor="ACME"))
            await cp.call(call16.Heartbeat())
            await asyncio.sleep(0.5)
            return cp.configuration_reads

    assert asyncio.run(scenario()) == 1
    assert rows("CFG16-A") == [
        ("", 0, "AuthorizationKey", "Actual", REDACTED, "ReadWrite", "", ""),
        ("", 0, "HeartbeatInterval", "Actual", "300", "ReadWrite", "", ""),
        ("", 0, "MeterValueSampleInterval", "Actual", "", "ReadWrite", "", ""),
        ("", 0, "NumberOfConnectors", "Actual", "2", "ReadOnly", "", ""),
    ]


REPORT_PART_1 = [
    {
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "HeartbeatInterval"},
        "variableAttribute": [{"type": "Actual", "value": "300", "mutability": "ReadWrite"}],
        "variableCharacteristics": {"unit": "s", "dataType": "integer", "supportsMonitoring": False},
    },
    {
        "component": {"name": "SecurityCtrlr"},
        "variable": {"name": "BasicAuthPassword"},
        "variableAttribute": [{"type": "Actual", "value": "s3cr3t-s3cr3t-s3cr3t", "mutability": "WriteOnly"}],
        "variableCharacteristics": {"dataType": "string", "supportsMonitoring": False},
    },
]
REPORT_PART_2 = [
    {
        "component": {"name": "EVSE", "evse": {"id": 1}},
        "variable": {"name": "Power"},
        "variableAttribute": [
            {"type": "Actual", "value": "0", "mutability": "ReadOnly"},
            {"type": "MaxSet", "value": "22000", "mutability": "ReadOnly"},
        ],
        "variableCharacteristics": {"unit": "W", "dataType": "decimal", "supportsMonitoring": True},
    },
]


class ReportingCharger201(Charger201):
    """Answers GetBaseReport Accepted, then sends its inventory in two NotifyReport frames (tbc on the first)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.report_requests: list[dict] = []
        self.reported = asyncio.Event()

    @on(Action201.get_base_report)
    def on_get_base_report(self, request_id, report_base, **kwargs):
        self.report_requests.append({"request_id": request_id, "report_base": report_base})
        return result201.GetBaseReport(status="Accepted")

    def report(self, request_id: int, seq_no: int, report_data: list, tbc: bool):
        return call201.NotifyReport(
            request_id=request_id, generated_at=now_iso(), seq_no=seq_no, report_data=report_data, tbc=tbc
        )


def test_a_2_0_1_station_boots_and_its_two_part_report_is_stored_and_a_replay_changes_nothing(
    config_daphne, station_factory
):
    _, secret = station_factory("CFG201-A", evses=1)

    async def scenario():
        url = config_daphne.ocpp_url("CFG201-A")
        async with connected(url, "CFG201-A", secret, version="2.0.1", cls=ReportingCharger201) as cp:
            boot = await cp.call(
                call201.BootNotification(charging_station={"model": "DC-50", "vendorName": "VoltCo"}, reason="PowerUp")
            )
            assert boot.status == "Accepted"
            await await_until(lambda: bool(cp.report_requests), timeout=10)
            request = cp.report_requests[0]
            assert request["report_base"] == "FullInventory"
            request_id = request["request_id"]
            await cp.call(cp.report(request_id, 0, REPORT_PART_1, True))
            await cp.call(cp.report(request_id, 1, REPORT_PART_2, False))
            stored = await asyncio.to_thread(rows, "CFG201-A")
            stamps = await asyncio.to_thread(
                lambda: dict(StationVariable.objects.values_list("pk", "updated_at").order_by("pk"))
            )
            # The charger retransmits both parts: nothing changes.
            await cp.call(cp.report(request_id, 0, REPORT_PART_1, True))
            await cp.call(cp.report(request_id, 1, REPORT_PART_2, False))
            again = await asyncio.to_thread(
                lambda: dict(StationVariable.objects.values_list("pk", "updated_at").order_by("pk"))
            )
            return stored, stamps, again

    stored, stamps, again = asyncio.run(scenario())
    assert stored == [
        ("EVSE", 1, "Power", "Actual", "0", "ReadOnly", "W", "decimal"),
        ("EVSE", 1, "Power", "MaxSet", "22000", "ReadOnly", "W", "decimal"),
        ("OCPPCommCtrlr", 0, "HeartbeatInterval", "Actual", "300", "ReadWrite", "s", "integer"),
        ("SecurityCtrlr", 0, "BasicAuthPassword", "Actual", REDACTED, "WriteOnly", "", "string"),
    ]
    assert again == stamps
    assert not StationVariable.objects.filter(value__contains="s3cr3t").exists()
