"""Simulated chargers for the tests: the `ocpp` package's ChargePoint on a real `websockets` client."""

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16Base
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201Base
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from tests.support import basic_auth

# What the platform asks a station by itself after an accepted boot (its configuration on the first one, its local
# authorization list on each): tests that count a charger's frames leave these out.
PLATFORM_READS_AFTER_BOOT = ("GetConfiguration", "GetLocalListVersion", "SendLocalList")


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Charger16(ChargePoint16Base):
    """Answers the CSMS commands a real 1.6 charger would, and remembers what it was asked."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict]] = []

    @on(Action16.reset)
    def on_reset(self, type, **kwargs):
        self.received.append(("Reset", {"type": type}))
        return result16.Reset(status="Accepted")

    @on(Action16.remote_start_transaction)
    def on_remote_start(self, id_tag, **kwargs):
        self.received.append(("RemoteStartTransaction", {"id_tag": id_tag, **kwargs}))
        return result16.RemoteStartTransaction(status="Accepted")

    @on(Action16.remote_stop_transaction)
    def on_remote_stop(self, transaction_id, **kwargs):
        self.received.append(("RemoteStopTransaction", {"transaction_id": transaction_id}))
        return result16.RemoteStopTransaction(status="Accepted")

    @on(Action16.get_configuration)
    def on_get_configuration(self, **kwargs):
        return result16.GetConfiguration(
            configuration_key=[{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
        )

    @on(Action16.unlock_connector)
    def on_unlock(self, connector_id, **kwargs):
        return result16.UnlockConnector(status="Unlocked")


class Charger201(ChargePoint201Base):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict]] = []

    @on(Action201.reset)
    def on_reset(self, type, **kwargs):
        self.received.append(("Reset", {"type": type}))
        return result201.Reset(status="Accepted")

    @on(Action201.request_start_transaction)
    def on_request_start(self, id_token, remote_start_id, **kwargs):
        self.received.append(("RequestStartTransaction", {"id_token": id_token, "remote_start_id": remote_start_id}))
        return result201.RequestStartTransaction(status="Accepted")

    @on(Action201.get_variables)
    def on_get_variables(self, get_variable_data, **kwargs):
        return result201.GetVariables(
            get_variable_result=[
                {
                    "attribute_status": "Accepted",
                    "component": d["component"],
                    "variable": d["variable"],
                    "attribute_value": "300",
                }
                for d in get_variable_data
            ]
        )


class ProfiledCharger16(Charger16):
    """Applies charging profiles (or refuses them, when told), remembering when each arrived."""

    refuse = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.profiles: list[tuple[float, dict]] = []

    @on(Action16.set_charging_profile)
    def on_set_charging_profile(self, connector_id, cs_charging_profiles, **kwargs):
        self.profiles.append((time.monotonic(), {"connector_id": connector_id, **cs_charging_profiles}))
        return result16.SetChargingProfile(status="Rejected" if self.refuse else "Accepted")

    def limits(self, purpose="TxProfile") -> list[float]:
        return [
            p["charging_schedule"]["charging_schedule_period"][0]["limit"]
            for _, p in self.profiles
            if p["charging_profile_purpose"] == purpose
        ]


class ProfiledCharger201(Charger201):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.profiles: list[tuple[float, dict]] = []

    @on(Action201.set_charging_profile)
    def on_set_charging_profile(self, evse_id, charging_profile, **kwargs):
        self.profiles.append((time.monotonic(), {"evse_id": evse_id, **charging_profile}))
        return result201.SetChargingProfile(status="Accepted")


@contextlib.asynccontextmanager
async def connected(url: str, identity: str, secret: str | None, *, version: str = "1.6", cls=None):
    """Open a charger's socket with Basic auth and serve the CSMS's calls while the block runs."""
    subprotocol = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
    cls = cls or (Charger16 if version == "1.6" else Charger201)
    headers = basic_auth(identity, secret) if secret is not None else {}
    async with websockets.connect(url, subprotocols=[subprotocol], additional_headers=headers) as ws:
        cp = cls(identity, ws, response_timeout=10)
        task = asyncio.create_task(cp.start())
        try:
            yield cp
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await task


async def raw_exchange(ws, frame: str, timeout: float = 5.0):
    """Send one raw frame and return the next frame the server sends, parsed."""
    import json

    await ws.send(frame)
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))
