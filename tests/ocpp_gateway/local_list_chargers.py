"""Simulated chargers that keep a local authorization list as the specification says (1.6 and 2.0.1): a Full update
replaces it, a Differential one adds, changes or removes entries and must carry a newer version."""

import asyncio
import json

from ocpp.routing import after, on
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from tests.ocpp_gateway.chargers import Charger16, Charger201


class LocalList:
    """The list itself: idTag -> status, its version, and every update as it came (kind, version, idTags)."""

    def __init__(self) -> None:
        self.version = 0
        self.entries: dict[str, str] = {}
        self.updates: list[tuple[str, int, list[tuple[str, str | None]]]] = []
        self.answer = "Accepted"  # what the next SendLocalList gets (Failed, VersionMismatch, ...)
        self.silent = False  # never answer SendLocalList

    def apply(self, update_type: str, version: int, items: list[tuple[str, str | None]]) -> str:
        self.updates.append((update_type, version, items))
        if self.answer != "Accepted":
            return self.answer
        if update_type == "Differential" and version <= self.version:
            return "VersionMismatch"
        if update_type == "Full":
            self.entries = {}
        for id_tag, status in items:
            if status is None:
                self.entries.pop(id_tag, None)
            else:
                self.entries[id_tag] = status
        self.version = version
        return "Accepted"


class ListCharger16(Charger16):
    """A 1.6 charger with a local list; `keys` is what GetConfiguration answers."""

    keys: dict[str, str] = {"HeartbeatInterval": "300"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.local_list = LocalList()
        self.version_asked = 0

    @on(Action16.get_configuration)
    def on_get_configuration(self, **kwargs):
        return result16.GetConfiguration(
            configuration_key=[{"key": k, "readonly": True, "value": v} for k, v in self.keys.items()]
        )

    @on(Action16.get_local_list_version)
    def on_get_local_list_version(self, **kwargs):
        self.version_asked += 1
        return result16.GetLocalListVersion(list_version=self.local_list.version)

    async def route_message(self, raw_msg):
        if self.local_list.silent and '"SendLocalList"' in raw_msg:
            return None  # never answered
        return await super().route_message(raw_msg)

    @on(Action16.send_local_list)
    def on_send_local_list(self, list_version, update_type, local_authorization_list=None, **kwargs):
        items = [
            (item["id_tag"], (item.get("id_tag_info") or {}).get("status")) for item in local_authorization_list or []
        ]
        return result16.SendLocalList(status=self.local_list.apply(update_type, list_version, items))


class ListCharger201(Charger201):
    """A 2.0.1 station with a local list."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.local_list = LocalList()
        self.types: dict[str, str] = {}

    @on(Action201.get_base_report)
    def on_get_base_report(self, request_id, report_base, **kwargs):
        return result201.GetBaseReport(status="NotSupported")

    @on(Action201.get_local_list_version)
    def on_get_local_list_version(self, **kwargs):
        return result201.GetLocalListVersion(version_number=self.local_list.version)

    @on(Action201.send_local_list)
    def on_send_local_list(self, version_number, update_type, local_authorization_list=None, **kwargs):
        items = []
        for item in local_authorization_list or []:
            token = item["id_token"]
            self.types[token["id_token"]] = token["type"]
            items.append((token["id_token"], (item.get("id_token_info") or {}).get("status")))
        return result201.SendLocalList(status=self.local_list.apply(update_type, version_number, items))


def limit(component: str, variable: str, value: int, instance: str = "") -> dict:
    """One ReadOnly integer of a NotifyReport's reportData."""
    return {
        "component": {"name": component},
        "variable": {"name": variable, **({"instance": instance} if instance else {})},
        "variable_attribute": [{"type": "Actual", "value": str(value), "mutability": "ReadOnly"}],
        "variable_characteristics": {"data_type": "integer", "supports_monitoring": False},
    }


class SmallMessagesCharger201(ListCharger201):
    """A 2.0.1 station that takes small messages only: it reports its limits (`limits`, NotifyReport after
    GetBaseReport, before it answers anything about its list) and refuses (Failed, Rejected) a SendLocalList or a
    GetVariables over them. `frames` keeps (action, bytes, entries) of each it got."""

    limits: list[dict] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reported = asyncio.Event()
        self.answering: set[asyncio.Task] = set()
        self.frames: list[tuple[str, int, int]] = []
        self.oversized: list[str] = []

    def allowed(self, component: str, variable: str, instance: str = "") -> int:
        for item in self.limits:
            if (item["component"]["name"], item["variable"]["name"], item["variable"].get("instance", "")) == (
                component,
                variable,
                instance,
            ):
                return int(item["variable_attribute"][0]["value"])
        return 10**9

    @on(Action201.get_base_report)
    def on_get_base_report(self, request_id, report_base, **kwargs):
        return result201.GetBaseReport(status="Accepted")

    @after(Action201.get_base_report)
    async def after_get_base_report(self, request_id, **kwargs):
        await self.call(
            call201.NotifyReport(
                request_id=request_id, generated_at="2026-11-20T10:00:00Z", seq_no=0, report_data=self.limits
            )
        )
        self.reported.set()

    @on(Action201.get_local_list_version)
    async def on_get_local_list_version(self, **kwargs):
        await asyncio.wait_for(self.reported.wait(), 10)
        return result201.GetLocalListVersion(version_number=self.local_list.version)

    async def route_message(self, raw_msg):
        frame = json.loads(raw_msg)
        if frame[0] == 2 and frame[2] == "GetLocalListVersion":
            # Its answer waits for NotifyReport's CALLRESULT, which only this reader can take in: answer it aside,
            # or a CSMS that asks before it answers NotifyReport finds the charger deaf for 10 s.
            self.answering.add(task := asyncio.create_task(super().route_message(raw_msg)))
            task.add_done_callback(self.answering.discard)
            return None
        if frame[0] == 2 and frame[2] in ("SendLocalList", "GetVariables"):
            component, instance = (
                ("LocalAuthListCtrlr", "") if frame[2] == "SendLocalList" else ("DeviceDataCtrlr", "GetVariables")
            )
            entries = len(frame[3].get("localAuthorizationList") or frame[3].get("getVariableData") or [])
            size = len(raw_msg.encode())
            self.frames.append((frame[2], size, entries))
            if size > self.allowed(component, "BytesPerMessage", instance) or entries > self.allowed(
                component, "ItemsPerMessage", instance
            ):
                self.oversized.append(frame[1])
        return await super().route_message(raw_msg)

    @on(Action201.send_local_list)
    def on_send_local_list(self, version_number, update_type, local_authorization_list=None, **kwargs):
        if self.oversized:
            return result201.SendLocalList(status="Failed")
        return super().on_send_local_list(version_number, update_type, local_authorization_list, **kwargs)

    @on(Action201.get_variables)
    def on_get_variables(self, get_variable_data, **kwargs):
        return result201.GetVariables(
            get_variable_result=[
                {
                    "attribute_status": "Rejected" if self.oversized else "Accepted",
                    "component": d["component"],
                    "variable": d["variable"],
                    "attribute_value": f"value of {d['variable']['name']}",
                }
                for d in get_variable_data
            ]
        )
