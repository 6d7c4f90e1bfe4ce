"""The dashboard's live channel: browsers of logged-in staff join the "dashboard" group and receive small events
(an EVSE's status, a transaction's progress, a station going on- or offline). Pages refresh the fragments the
event concerns from the server, so what they show is always what the database says.

A browser tab may stay open for days, but the channel layer forgets a group member CHANNEL_GROUP_EXPIRY seconds
after it joined, and a Redis restart forgets the whole group. So each socket joins again every
`group_rejoin_seconds()`: its membership never ages out, and after Redis comes back it is listening again within a
minute. While Redis is unavailable the socket stays open and simply gets no events."""

import asyncio
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from cpo.channel_layer import CHANNEL_LAYER_ERRORS
from cpo.dashboard.permissions import Role, user_has_role

logger = logging.getLogger(__name__)

DASHBOARD_GROUP = "dashboard"
REJOIN_MAX_SECONDS = 60.0


def group_rejoin_seconds() -> float:
    """Well within the group expiry, and often enough to be back soon after a Redis restart."""
    return min(REJOIN_MAX_SECONDS, settings.CHANNEL_GROUP_EXPIRY / 2)


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    rejoin_task: asyncio.Task | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not await database_sync_to_async(user_has_role)(user, Role.VIEWER):
            await self.close(code=4403)
            return
        await self.group_join()
        self.rejoin_task = asyncio.create_task(self.group_stay())
        await self.accept()

    async def disconnect(self, code) -> None:
        if self.rejoin_task is None:
            return
        self.rejoin_task.cancel()
        try:
            await self.channel_layer.group_discard(DASHBOARD_GROUP, self.channel_name)
        except CHANNEL_LAYER_ERRORS:
            pass  # the membership expires on its own

    async def group_join(self) -> None:
        try:
            await self.channel_layer.group_add(DASHBOARD_GROUP, self.channel_name)
        except CHANNEL_LAYER_ERRORS as exc:
            logger.warning("dashboard socket not in the live group until the channel layer is back: %r", exc)

    async def group_stay(self) -> None:
        while True:
            await asyncio.sleep(group_rejoin_seconds())
            await self.group_join()

    async def receive_json(self, content, **kwargs) -> None:
        """Browsers only listen; anything they send is ignored."""

    async def dashboard_event(self, event) -> None:
        await self.send_json(event["data"])

    async def dashboard_events(self, event) -> None:
        """A batch from one process (cpo/dashboard/receivers.py), sent to the browser one event at a time."""
        for data in event["events"]:
            await self.send_json(data)
