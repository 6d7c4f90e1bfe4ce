"""Work that may lag a little is collected per process and done in one go, so that it never sits between a
charger's CALL and our CALLRESULT: writes (message log, last seen) by an asyncio task, reactions to gateway events
by a thread."""

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import ClassVar

from django.db import InterfaceError, OperationalError, close_old_connections

from cpo.lifecycle import process_stopping
from ocpp_gateway.handlers.base import db

logger = logging.getLogger(__name__)


class BatchWriter:
    def __init__(
        self,
        name: str,
        write: Callable[[list], None],
        *,
        interval: Callable[[], float],
        max_items: int = 50_000,
        unique: bool = False,
    ):
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
        except (OperationalError, InterfaceError) as exc:  # the database is away: keep them for the next flush
            logger.warning("%s: database unavailable, keeping %d entries (%s)", self.name, len(batch), exc)
            self._keep(batch)
        except Exception:
            logger.exception("%s: could not write %d entries", self.name, len(batch))

    def _keep(self, batch: list) -> None:
        """Put a batch that could not be written back in front of what came since, within `max_items` (the oldest
        go first when a database outage outlasts the buffer)."""
        if self.unique:
            kept = dict.fromkeys(batch)
            kept.update(self.items)
            items: list = list(kept)
        else:
            items = batch + list(self.items)
        if len(items) > self.max_items:
            logger.error("%s buffer full; dropping %d oldest entries", self.name, len(items) - self.max_items)
            items = items[-self.max_items :]
        self.items = dict.fromkeys(items) if self.unique else items


class PeriodicBatch:
    """Keys added from any thread, handed deduplicated to `flush(keys)` once per `interval` seconds on a daemon
    thread of this process.

    For reactions to gateway events that cost CPU per call (a Celery publish, a channel-layer send, a query): a
    charger network produces thousands of events a second, mostly repeats of the same transaction or EVSE, and the
    daphne process answering the chargers has one core's worth of Python (bench/RESULTS.md: these reactions were a
    fifth of its CPU). A process stopping gracefully hands on what is pending (`hand_on_all`); a key added while the
    process dies before the next flush is lost, and receivers keep their own reconciliation for what must not be lost
    (ocpi_api's beat re-pushes transactions without a session or CDR).
    """

    instances: ClassVar[list["PeriodicBatch"]] = []  # every batch of this process, for `hand_on_all`

    def __init__(self, name: str, flush: Callable[[list], None], *, interval: Callable[[], float]):
        self.name = name
        self.flush = flush
        self.interval = interval
        self.pending: dict = {}
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.stopping = False  # the interpreter refused a hand-on: it is exiting
        PeriodicBatch.instances.append(self)

    def pending_take(self) -> list:
        """The keys added since the last hand-on, taken out of the batch."""
        with self.lock:
            batch, self.pending = list(self.pending), {}
        return batch

    def hand_on_now(self) -> None:
        """Hand on what is pending now rather than at the next interval."""
        if batch := self.pending_take():
            self.flush_now(batch)

    @classmethod
    def hand_on_all(cls, **kwargs) -> None:
        """Every batch's pending keys, now: a server process stopping gracefully (cpo.lifecycle.process_stopping)
        would otherwise drop what came in since the last interval, such as the stations its own shutdown just
        marked offline (10,000 of them for a gateway holding 10,000 chargers)."""
        for batch in cls.instances:
            batch.hand_on_now()

    def add(self, key) -> None:
        with self.lock:
            self.pending[key] = None
            if (self.thread is None or not self.thread.is_alive()) and not (self.stopping or _process_stopping()):
                self.thread = threading.Thread(target=self._run, name=f"batch-{self.name}", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.interval())
            batch = self.pending_take()
            if _process_stopping():
                # Its event loop and executors are gone or going: handing on would fail on every interval until
                # the process is gone (a gateway closing a thousand chargers logged dozens of tracebacks).
                if batch:
                    self._dropped(batch)
                return
            if batch and not self.flush_now(batch):
                return

    def flush_now(self, batch: list) -> bool:
        """Hand the batch on; False when the process turned out to be stopping (nothing more can be handed on)."""
        try:
            self.flush(batch)
        except Exception as exc:
            # The interpreter's exit hooks shut the executors down before its main thread counts as ended: a
            # gateway stopping with 10,000 chargers logged a traceback per interval until it was gone. The executor
            # says "after interpreter shutdown", or "after shutdown" once its own thread has seen the exit first.
            if isinstance(exc, RuntimeError) and str(exc).startswith("cannot schedule new futures after"):
                self.stopping = True
                self._dropped(batch)
                return False
            logger.exception("%s: could not hand on %d events", self.name, len(batch))
        finally:
            close_old_connections()
        return True

    def _dropped(self, batch: list) -> None:
        logger.info("%s: %d events not handed on, the process is stopping", self.name, len(batch))


def _process_stopping() -> bool:
    """The interpreter is shutting down: its main thread has ended and it waits for the threads still working."""
    return not threading.main_thread().is_alive()


process_stopping.connect(PeriodicBatch.hand_on_all, dispatch_uid="periodic batches hand on")
