"""Simulated chargers that keep a local authorization list as the specification says (1.6 and 2.0.1): a Full update
replaces it, a Differential one adds, changes or removes entries and must carry a newer version."""

from ocpp.routing import on
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
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
