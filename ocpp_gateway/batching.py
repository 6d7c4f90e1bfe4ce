"""Writes that may lag a little (message log, last seen) are collected per process and written in one call by
one task, so that they never sit between a charger's CALL and our CALLRESULT."""

import asyncio
import logging
from collections.abc import Callable

from ocpp_gateway.handlers.base import db

logger = logging.getLogger(__name__)


class BatchWriter:
    def __init__(self, name: str, write: Callable[[list], None], *, interval: Callable[[], float],
                 max_items: int = 50_000, unique: bool = False):
        self.name = name
        self.write = write
        self.interval = interval
        self.max_items = max_items
        self.unique = unique
        self.items: list | dict = {} if unique else []
        self.task: asyncio.Task | None = None

    def add(self, item) -> None:
        if len(self.items) >= self.max_items:
            logger.error("%s buffer full; dropping an entry", self.name)
            return
        if self.unique:
            self.items[item] = None
        else:
            self.items.append(item)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._flush_while_pending())

    async def _flush_while_pending(self) -> None:
        while self.items:
            await asyncio.sleep(self.interval())
            await self.flush()

    async def flush(self) -> None:
        batch = list(self.items)
        self.items = {} if self.unique else []
        if not batch:
            return
        try:
            await db(self.write)(batch)
        except Exception:
            logger.exception("%s: could not write %d entries", self.name, len(batch))
