"""Password rotation (issue 10 item 4): staff give a charger a new HTTP Basic password; the charger gets it over OCPP
(1.6 ChangeConfiguration AuthorizationKey, 2.0.1 SetVariables SecurityCtrlr.BasicAuthPassword), logs in with it,
and the old one is refused from then on; a charger that rejects it keeps the old one. The password is in no log."""

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

import pytest
import websockets
from django.utils import timezone
from ocpp.routing import on
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from cpo.dashboard.models import AuditLog  # the dashboard audits rotations; no password may be there either
from cpo.models import ChargingStation, SecurityProfile
from cpo.services import station_secret_hash
from ocpp_gateway.models import MessageLog
from ocpp_gateway.requests import BasicAuthPasswordSet
from ocpp_gateway.services.passwords import (
    PasswordRotationRefused,
    station_password_generate,
    station_password_rotate,
    stations_due_for_rotation,
)
from ocpp_gateway.services.provisioning import station_authenticate
from tests.ocpp_gateway.chargers import Charger16, Charger201, connected
from tests.support import ROOT, await_until, in_thread, server_env, start_daphne, stop, wait_until

live = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="commands across processes need REDIS_URL")


class PasswordCharger16(Charger16):
    """Keeps the AuthorizationKey it is given (security whitepaper), or rejects it when `answer` says so."""

    answer = "Accepted"

    @on(Action16.change_configuration)
    def on_change_configuration(self, key, value, **kwargs):
        self.received.append(("ChangeConfiguration", {"key": key, "value": value}))
        return result16.ChangeConfiguration(status=self.answer)


class RejectingCharger16(PasswordCharger16):
    answer = "Rejected"


class PasswordCharger201(Charger201):
    answer = "Accepted"

    @on(Action201.set_variables)
    def on_set_variables(self, set_variable_data, **kwargs):
        self.received.append(("SetVariables", {"set_variable_data": set_variable_data}))
        return result201.SetVariables(
            set_variable_result=[
                {"attribute_status": self.answer, "component": d["component"], "variable": d["variable"]}
                for d in set_variable_data
            ]
        )


class RejectingCharger201(PasswordCharger201):
    answer = "Rejected"


@pytest.fixture(scope="module")
def chatty_daphne(django_db_setup, django_db_blocker):
    """A daphne whose ocpp library logs every frame (OCPP_LIB_LOG_LEVEL=INFO): the password must not be in its log."""
    server = start_daphne("passwords", OCPP_LIB_LOG_LEVEL="INFO")
    yield server
    stop(server)


def given_password(received) -> str:
    action, payload = received[-1]
    if action == "ChangeConfiguration":
        assert payload["key"] == "AuthorizationKey"
        return payload["value"]
    (data,) = payload["set_variable_data"]
    assert (data["component"], data["variable"]) == ({"name": "SecurityCtrlr"}, {"name": "BasicAuthPassword"})
    return data["attribute_value"]


def logs_in(server, identity: str, password: str, version: str = "1.6") -> bool:
    async def run():
        async with connected(server.ocpp_url(identity), identity, password, version=version):
            return True

    try:
        return asyncio.run(run())
    except websockets.InvalidStatus:  # the handshake was refused
        return False


async def wait_online(identity: str) -> None:
    await await_until(lambda: ChargingStation.objects.get(identity=identity).online)


def assert_nowhere(password: str, server, identity: str) -> None:
    """Not in the message log, the audit log or the server's log (the ocpp library logs frames there)."""
    logged = wait_until(lambda: list(MessageLog.objects.filter(identity=identity, message_type=2)))
    assert logged and not any(password in entry.payload for entry in logged)
    assert not any(password in str(a.payload) + str(a.answer) + a.error for a in AuditLog.objects.all())
    assert password not in server.log()


# --- Scenarios on a live daphne ------------------------------------------------------------------------------------


@live
@pytest.mark.django_db(transaction=True)
def test_manage_py_rotates_a_2_0_1_charger_through_set_variables(chatty_daphne, station_factory):
    _, old = station_factory("CS201-ROT", evses=1)

    async def scenario():
        url = chatty_daphne.ocpp_url("CS201-ROT")
        async with connected(url, "CS201-ROT", old, version="2.0.1", cls=PasswordCharger201) as cp:
            await wait_online("CS201-ROT")
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "manage.py",
                "rotate_station_password",
                "CS201-ROT",
                cwd=ROOT,
                env=server_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            return proc.returncode, out.decode(), err.decode(), cp.received

    code, out, err, received = asyncio.run(scenario())
    assert code == 0, err
    new = given_password(received)
    assert "CS201-ROT accepted its new password (Accepted)" in out and new not in out + err
    assert logs_in(chatty_daphne, "CS201-ROT", new, version="2.0.1")
    assert not logs_in(chatty_daphne, "CS201-ROT", old, version="2.0.1")
    assert_nowhere(new, chatty_daphne, "CS201-ROT")


@live
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("version, cls", [("1.6", RejectingCharger16), ("2.0.1", RejectingCharger201)])
def test_a_charger_that_rejects_the_new_password_keeps_the_old_one(chatty_daphne, station_factory, version, cls):
    identity = f"CP-REJ-{version}"
    _, old = station_factory(identity, evses=1)

    async def scenario():
        async with connected(chatty_daphne.ocpp_url(identity), identity, old, version=version, cls=cls) as cp:
            await wait_online(identity)
            rotation = await in_thread(station_password_rotate, identity=identity)
            return rotation, cp.received

    rotation, received = asyncio.run(scenario())
    assert (rotation.result, rotation.detail) == ("rejected", "Rejected")
    assert given_password(received) == rotation.password
    assert not logs_in(chatty_daphne, identity, rotation.password, version=version)
    assert logs_in(chatty_daphne, identity, old, version=version)
    assert ChargingStation.objects.get(identity=identity).pending_secret_hash == ""


# --- The rules, on the services ------------------------------------------------------------------------------------


def authenticates(identity: str, password: str) -> bool:
    return not station_authenticate(identity=identity, username=identity, secret=password).refusal


def rotation_pending(station, *, accepted_ago: timedelta | None) -> str:
    new = station_password_generate()
    station.pending_secret_hash = station_secret_hash(new)
    station.pending_secret_accepted_at = None if accepted_ago is None else timezone.now() - accepted_ago
    station.save()
    return new


@pytest.mark.django_db
def test_the_old_password_stops_working_when_the_grace_window_after_acceptance_ends(station_factory, settings):
    settings.OCPP_PASSWORD_ROTATION_GRACE_SECONDS = 3600
    station, old = station_factory("CP-GRACE")
    new = rotation_pending(station, accepted_ago=timedelta(minutes=59))
    assert authenticates("CP-GRACE", old)
    station.pending_secret_accepted_at = timezone.now() - timedelta(minutes=61)
    station.save()
    assert not authenticates("CP-GRACE", old)
    assert authenticates("CP-GRACE", new)
    assert ChargingStation.objects.get(pk=station.pk).pending_secret_hash == ""


@pytest.mark.django_db
def test_an_unanswered_rotation_leaves_both_passwords_until_the_new_one_is_used(station_factory, settings):
    settings.OCPP_PASSWORD_ROTATION_GRACE_SECONDS = 1
    station, old = station_factory("CP-UNCONFIRMED")
    new = rotation_pending(station, accepted_ago=None)  # the charger never answered: no grace window starts
    assert authenticates("CP-UNCONFIRMED", old) and authenticates("CP-UNCONFIRMED", old)
    assert authenticates("CP-UNCONFIRMED", new)
    assert not authenticates("CP-UNCONFIRMED", old)


@pytest.mark.django_db
def test_only_online_http_basic_stations_can_be_rotated(station_factory):
    station_factory("CP-OFFLINE")
    with pytest.raises(PasswordRotationRefused, match="offline"):
        station_password_rotate(identity="CP-OFFLINE")
    station, _ = station_factory("CP-LAB")
    ChargingStation.objects.filter(pk=station.pk).update(
        security_profile=SecurityProfile.NONE, online=True, connection_channel="specific.gateway!cp-lab"
    )
    with pytest.raises(PasswordRotationRefused, match="does not use HTTP Basic"):
        station_password_rotate(identity="CP-LAB")


@pytest.mark.django_db
def test_the_rotation_policy_is_off_by_default_and_picks_online_stations_with_old_passwords(station_factory, settings):
    fresh, _ = station_factory("CP-FRESH")
    old, _ = station_factory("CP-OLD")
    offline, _ = station_factory("CP-OLD-OFFLINE")
    ChargingStation.objects.filter(pk__in=[fresh.pk, old.pk]).update(online=True)
    ChargingStation.objects.filter(pk__in=[old.pk, offline.pk]).update(created_at=timezone.now() - timedelta(days=100))
    ChargingStation.objects.filter(pk=fresh.pk).update(created_at=timezone.now())
    assert settings.OCPP_PASSWORD_ROTATION_DAYS == 0 and stations_due_for_rotation() == []
    assert "ocpp-station-passwords-rotate" not in settings.CELERY_BEAT_SCHEDULE
    settings.OCPP_PASSWORD_ROTATION_DAYS = 90
    assert stations_due_for_rotation() == ["CP-OLD"]
    ChargingStation.objects.filter(pk=old.pk).update(secret_rotated_at=timezone.now() - timedelta(days=1))
    assert stations_due_for_rotation() == []


def test_the_password_request_has_each_version_s_words_and_no_password_in_its_repr():
    request = BasicAuthPasswordSet(password="0123456789abcdef0123456789abcdef01234567")
    assert request.for_version("1.6").payload == {
        "key": "AuthorizationKey",
        "value": "0123456789abcdef0123456789abcdef01234567",
    }
    assert request.for_version("2.0.1").payload == {
        "setVariableData": [
            {
                "attributeValue": "0123456789abcdef0123456789abcdef01234567",
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
            }
        ]
    }
    assert "0123" not in repr(request)
    assert BasicAuthPasswordSet.status({"setVariableResult": [{"attributeStatus": "Rejected"}]}) == "Rejected"
    assert BasicAuthPasswordSet.status({"status": "RebootRequired"}) == "RebootRequired"


def test_the_ocpp_library_s_frame_log_lines_are_redacted(caplog):
    """The ocpp library logs every frame it sends or receives at INFO (OCPP_LIB_LOG_LEVEL): the settings put the
    redaction filter on its logger."""
    import logging

    frame = '[2,"m1","ChangeConfiguration",{"key":"AuthorizationKey","value":"0123456789abcdef0123456789abcdef"}]'
    with caplog.at_level(logging.INFO, logger="ocpp"):
        logging.getLogger("ocpp").info("%s: send %s", "CP-1", frame)
    assert "0123456789abcdef" not in caplog.text and "AuthorizationKey" in caplog.text
