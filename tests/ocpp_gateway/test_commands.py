"""Commands to chargers from other processes, through the channel layer group of the station."""

import asyncio
import getpass
import json
import os
import subprocess
import sys

import pytest

from cpo.dashboard.models import AuditLog
from ocpp_gateway.commands import CommandError, command_send
from ocpp_gateway.models import ChargingProfile
from tests.ocpp_gateway.chargers import ProfiledCharger16, connected
from tests.support import ROOT, in_thread, server_env, start_daphne, stop

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="commands across processes need REDIS_URL"),
]


def send_in_thread(**kwargs):
    return in_thread(command_send, **kwargs)


def test_a_command_from_this_process_reaches_the_charger_and_its_answer_comes_back(live_daphne, station_factory):
    _, secret = station_factory("CP-CMD-16")
    _, secret201 = station_factory("CS-CMD-201")

    async def scenario():
        async with (
            connected(live_daphne.ocpp_url("CP-CMD-16"), "CP-CMD-16", secret) as cp16,
            connected(live_daphne.ocpp_url("CS-CMD-201"), "CS-CMD-201", secret201, version="2.0.1") as cp201,
        ):
            reset = await send_in_thread(identity="CP-CMD-16", action="Reset", payload={"type": "Soft"})
            start = await send_in_thread(
                identity="CP-CMD-16", action="RemoteStartTransaction", payload={"idTag": "RFID-1", "connectorId": 1}
            )
            config = await send_in_thread(
                identity="CP-CMD-16", action="GetConfiguration", payload={"key": ["HeartbeatInterval"]}
            )
            reset201 = await send_in_thread(identity="CS-CMD-201", action="Reset", payload={"type": "Immediate"})
            variables = await send_in_thread(
                identity="CS-CMD-201",
                action="GetVariables",
                payload={
                    "getVariableData": [
                        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
                    ]
                },
            )
            return cp16.received, cp201.received, reset, start, config, reset201, variables

    received16, received201, reset, start, config, reset201, variables = asyncio.run(scenario())
    assert reset == {"status": "Accepted"} and start == {"status": "Accepted"}
    assert config["configurationKey"][0]["key"] == "HeartbeatInterval"
    assert ("Reset", {"type": "Soft"}) in received16
    assert ("RemoteStartTransaction", {"id_tag": "RFID-1", "connector_id": 1}) in received16
    assert reset201 == {"status": "Accepted"} and ("Reset", {"type": "Immediate"}) in received201
    assert variables["getVariableResult"][0]["attributeValue"] == "300"


def test_command_errors_say_why(live_daphne, station_factory):
    _, secret = station_factory("CP-CMD-ERR")

    def reason(**kwargs):
        try:
            command_send(**kwargs)
        except CommandError as exc:
            return exc.reason, exc.error_code
        return None

    assert reason(identity="NO-SUCH", action="Reset", payload={"type": "Soft"}) == ("not_found", "")
    assert reason(identity="CP-CMD-ERR", action="Reset", payload={"type": "Soft"}) == ("offline", "")

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP-CMD-ERR"), "CP-CMD-ERR", secret):
            return [
                # the simulated charger has no handler for ClearCache: it answers with a CALLERROR
                await in_thread(reason, identity="CP-CMD-ERR", action="ClearCache", payload={}),
                # not a 1.6 action / not a valid request: refused before anything is sent
                await in_thread(reason, identity="CP-CMD-ERR", action="RequestStartTransaction", payload={}),
                await in_thread(reason, identity="CP-CMD-ERR", action="Reset", payload={"type": "Gentle"}),
            ]

    assert asyncio.run(scenario()) == [("call_error", "NotImplemented"), ("invalid", ""), ("invalid", "")]


def test_manage_py_ocpp_call_from_another_process(live_daphne, station_factory):
    _, secret = station_factory("CP-CMD-CLI")

    async def scenario():
        async with connected(live_daphne.ocpp_url("CP-CMD-CLI"), "CP-CMD-CLI", secret) as cp:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "manage.py",
                "ocpp_call",
                "CP-CMD-CLI",
                "Reset",
                '{"type": "Hard"}',
                cwd=ROOT,
                env=server_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            return proc.returncode, out.decode(), err.decode(), cp.received

    code, out, err, received = asyncio.run(scenario())
    assert code == 0, err
    assert json.loads(out) == {"status": "Accepted"}
    assert ("Reset", {"type": "Hard"}) in received
    # The command line is audited like the dashboard: who, what, and the charger's answer.
    entry = AuditLog.objects.get(identity="CP-CMD-CLI", action="Reset")
    assert entry.username == f"command line ({getpass.getuser()})"
    assert (entry.payload, entry.ok, entry.answer) == ({"type": "Hard"}, True, {"status": "Accepted"})


def test_manage_py_ocpp_call_writes_a_named_command_in_the_station_s_version(live_daphne, station_factory):
    _, secret = station_factory("CS-CMD-CLI-201")

    async def scenario():
        async with connected(live_daphne.ocpp_url("CS-CMD-CLI-201"), "CS-CMD-CLI-201", secret, version="2.0.1") as cp:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "manage.py",
                "ocpp_call",
                "CS-CMD-CLI-201",
                "reset",
                '{"hard": true}',
                cwd=ROOT,
                env=server_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            return proc.returncode, out.decode(), err.decode(), cp.received

    code, out, err, received = asyncio.run(scenario())
    assert code == 0, err
    assert json.loads(out) == {"status": "Accepted"}
    assert received == [("Reset", {"type": "Immediate"})]


def test_a_profile_staff_set_with_ocpp_call_is_kept_as_theirs(live_daphne, station_factory):
    """The station page lists every profile a station was sent with its source: one set by hand is staff's."""
    _, secret = station_factory("CP-CMD-PROFILE")
    arguments = {
        "evse_id": 1,
        "transaction_id": None,
        "profile_id": 7,
        "purpose": "TxDefaultProfile",
        "stack_level": 3,
        "schedule": {"charging_rate_unit": "A", "periods": [{"start_period": 0, "limit": 10}]},
    }

    async def scenario():
        url = live_daphne.ocpp_url("CP-CMD-PROFILE")
        async with connected(url, "CP-CMD-PROFILE", secret, cls=ProfiledCharger16) as cp:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "manage.py",
                "ocpp_call",
                "CP-CMD-PROFILE",
                "set-charging-profile",
                json.dumps(arguments),
                cwd=ROOT,
                env=server_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            return proc.returncode, err.decode(), cp.limits("TxDefaultProfile")

    code, err, limits = asyncio.run(scenario())
    assert code == 0, err
    assert limits == [10.0]
    profile = ChargingProfile.objects.get(station__identity="CP-CMD-PROFILE")
    assert (profile.source, profile.status, profile.purpose, profile.stack_level, profile.limit) == (
        "staff",
        "Accepted",
        "TxDefaultProfile",
        3,
        10,
    )


def test_two_daphne_processes_share_the_network_through_redis(live_daphne, station_factory):
    """A charger on server B gets a command sent while it connected there; reconnecting on server A replaces
    the socket on B."""
    _, secret = station_factory("CP-CMD-MULTI")
    other = start_daphne("second")
    try:

        async def scenario():
            async with connected(other.ocpp_url("CP-CMD-MULTI"), "CP-CMD-MULTI", secret) as on_b:
                first = await send_in_thread(identity="CP-CMD-MULTI", action="Reset", payload={"type": "Soft"})
                async with connected(live_daphne.ocpp_url("CP-CMD-MULTI"), "CP-CMD-MULTI", secret) as on_a:
                    await asyncio.wait_for(on_b._connection.wait_closed(), 5)
                    second = await send_in_thread(identity="CP-CMD-MULTI", action="Reset", payload={"type": "Hard"})
                    return first, second, on_b.received, on_a.received

        first, second, received_b, received_a = asyncio.run(scenario())
        assert first == second == {"status": "Accepted"}
        assert received_b == [("Reset", {"type": "Soft"})]
        assert received_a == [("Reset", {"type": "Hard"})]
    finally:
        stop(other)
