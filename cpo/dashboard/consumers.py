"""The dashboard's live channel: browsers of logged-in staff join the "dashboard" group and receive small events
(an EVSE's status, a transaction's progress, a station going on- or offline). Pages refresh the fragments the
event concerns from the server, so what they show is always what the database says."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from cpo.dashboard.permissions import Role, user_has_role

DASHBOARD_GROUP = "dashboard"


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    joined = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not await database_sync_to_async(user_has_role)(user, Role.VIEWER):
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(DASHBOARD_GROUP, self.channel_name)
        self.joined = True
        await self.accept()

    async def disconnect(self, code) -> None:
        if self.joined:
            await self.channel_layer.group_discard(DASHBOARD_GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        """Browsers only listen; anything they send is ignored."""

    async def dashboard_event(self, event) -> None:
        await self.send_json(event["data"])

    async def dashboard_events(self, event) -> None:
        """A batch from one process (cpo/dashboard/receivers.py), sent to the browser one event at a time."""
        for data in event["events"]:
            await self.send_json(data)
