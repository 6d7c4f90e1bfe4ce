from channels.generic.websocket import AsyncWebsocketConsumer


class OcppConsumer(AsyncWebsocketConsumer):
    """Placeholder; replaced by the gateway."""

    async def connect(self):
        await self.close()
