"""Queueing a Celery task from code that may be answering a charger.

With a broker (REDIS_URL) `task_dispatch` publishes the task and a worker runs it. A server process publishes from a
background thread (`Publisher`): the charger's answer never waits for the broker, and a task that cannot be
published while Redis is down is kept and published when it is back. Elsewhere (a worker, a management command) the
caller publishes, retrying for up to about a minute while the broker is away. Without one (the embedded
default) tasks run in-process (CELERY_TASK_ALWAYS_EAGER), and `task.delay()` would run the task in the caller's
thread: a gateway event or an outbox delivery queued when a charger's message commits would keep the charger waiting
for billing and for a partner's HTTP answer. A server process therefore calls `background_start()` (cpo.asgi does):
in-process tasks then run one after the other on one daemon thread of the process, `countdown` honoured. Elsewhere
(management commands, the test suite) they run at once in the caller's thread, as Celery's eager mode does, so a
short-lived process does not exit with its work still queued.
"""

import atexit
import heapq
import itertools
import logging
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta

from celery import Task
from django.conf import settings
from django.db import close_old_connections
from kombu.exceptions import OperationalError as BrokerUnavailable

from cpo.celery import app as celery_app

logger = logging.getLogger(__name__)


class BackgroundTasks:
    """In-process tasks run on one daemon thread, in the order they fall due."""

    def __init__(self) -> None:
        self.queue: list[tuple[float, int, Task, tuple]] = []
        self.order = itertools.count()
        self.condition = threading.Condition()
        self.running = 0
        self.thread: threading.Thread | None = None

    def put(self, task: Task, args: tuple, *, countdown: float = 0.0) -> None:
        with self.condition:
            heapq.heappush(self.queue, (time.monotonic() + max(countdown, 0.0), next(self.order), task, args))
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="in-process-tasks", daemon=True)
                self.thread.start()
            self.condition.notify_all()

    def _next(self) -> tuple[Task, tuple]:
        with self.condition:
            while True:
                wait = self.queue[0][0] - time.monotonic() if self.queue else None
                if wait is not None and wait <= 0:
                    _, _, task, args = heapq.heappop(self.queue)
                    self.running += 1
                    return task, args
                self.condition.wait(wait)

    def _run(self) -> None:
        while True:
            task, args = self._next()
            try:
                result = task.apply(args=args)
                if result.failed():
                    logger.error("in-process task %s%r failed:\n%s", task.name, args, result.traceback)
            except Exception:
                logger.exception("in-process task %s%r failed", task.name, args)
            finally:
                close_old_connections()
                with self.condition:
                    self.running -= 1
                    self.condition.notify_all()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until no task is due or running (tasks due later are not waited for); False on timeout."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while self.running or (self.queue and self.queue[0][0] <= time.monotonic()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.condition.wait(min(left, 0.05))
        return True


# Publishing from a worker or a command waits for a broker that is away this long at most (kombu retry policy:
# 0 s, then 1 s more each time up to 5 s between tries, 15 tries) before the caller gets the error.
CALLER_PUBLISH_RETRY = {"max_retries": 15, "interval_start": 0, "interval_step": 1, "interval_max": 5}


class Publisher:
    """Tasks for the workers, published in the order they were queued by one daemon thread of a server process.

    Why a thread: the caller is often answering a charger (a gateway event after the commit of its message), and a
    publish to a broker that is down or unreachable waits for connection timeouts and retries; a charger must get
    its answer in milliseconds whatever Redis does. The caller only appends to a deque.

    Why kept in memory, not spooled to the database: a task published here announces something the database already
    holds (a transaction that started or ended, an outbox row, a reservation), and beat reconciles what a lost task
    left undone (`billing.tasks.transactions_reconcile`, `ocpi_api.tasks.outbox_deliver_due`). A process that dies
    during a broker outage costs those minutes, not data. A spool table would add a write to the commit path of
    every charger frame (the gateway's cost per CALL is the platform's limit) and would share the fate of PostgreSQL
    outages. While the broker is away, tasks wait here in order (at most TASK_PUBLISH_BACKLOG_MAX; past that the
    oldest is dropped with an error, to be reconciled) and the thread tries again with backoff, up to
    PUBLISH_RETRY_MAX seconds apart; the backlog goes out as soon as a publish succeeds.
    """

    RETRY_MIN, PUBLISH_RETRY_MAX = 0.2, 2.0

    def __init__(self, max_items: int | None = None) -> None:
        self.max_items = max_items or settings.TASK_PUBLISH_BACKLOG_MAX
        self.queue: deque[tuple[Task, tuple, datetime | None, str]] = deque()
        self.condition = threading.Condition()
        self.publishing = False
        self.dropped = 0
        self.thread: threading.Thread | None = None

    def put(self, task: Task, args: tuple, *, countdown: float = 0.0) -> str:
        """Queue `task(*args)` to run `countdown` seconds from now (counted from now, not from the publish).
        Returns the task id it will be published with."""
        eta = datetime.now(UTC) + timedelta(seconds=countdown) if countdown > 0 else None
        task_id = str(uuid.uuid4())
        with self.condition:
            if len(self.queue) >= self.max_items:
                self.queue.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    logger.error("task backlog full (%d): dropped %d oldest task(s)", self.max_items, self.dropped)
            self.queue.append((task, args, eta, task_id))
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="task-publisher", daemon=True)
                self.thread.start()
            self.condition.notify_all()
        return task_id

    def backlog(self) -> int:
        """Tasks queued and not yet published (a gauge for readiness and metrics)."""
        return len(self.queue)  # the one being published stays first in the queue until it is out

    def _run(self) -> None:
        delay = 0.0
        down_since: float | None = None
        while True:
            with self.condition:
                while not self.queue:
                    self.condition.wait()
                task, args, eta, task_id = self.queue[0]
                self.publishing = True
            try:
                if eta is None:
                    task.apply_async(args=args, task_id=task_id, retry=False)
                else:
                    task.apply_async(args=args, eta=eta, task_id=task_id, retry=False)
            except BrokerUnavailable as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    logger.warning("broker unavailable (%s): keeping tasks until it is back", exc)
                delay = min(max(delay * 2, self.RETRY_MIN), self.PUBLISH_RETRY_MAX)
                with self.condition:
                    self.publishing = False
                    self.condition.wait(delay)
                continue
            except Exception:  # not the broker's fault (e.g. arguments that do not serialise): never blocks the rest
                logger.exception("could not publish task %r%r; dropped", task, args)
            with self.condition:
                if self.queue and self.queue[0][3] == task_id:
                    self.queue.popleft()
                self.publishing = False
                self.condition.notify_all()
            if down_since is not None:
                logger.warning(
                    "broker back after %.1f s: publishing %d kept task(s)",
                    time.monotonic() - down_since,
                    len(self.queue) + 1,
                )
                down_since, delay = None, 0.0

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued task was published; False on timeout."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while self.queue or self.publishing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.condition.wait(min(left, 0.05))
        return True


_background: BackgroundTasks | None = None
_publisher: Publisher | None = None
_beat: "InProcessBeat | None" = None


class InProcessBeat:
    """Celery beat for the embedded default (no broker, so no beat process): every periodic task of
    CELERY_BEAT_SCHEDULE is queued on the in-process task thread at its interval, first one interval after the
    server started. Without it `make run` would never expire reservations, close stale transactions, check alerts
    or deliver due outbox messages. Only interval schedules (seconds or timedelta) are used here, as ours all are."""

    def __init__(self, background: BackgroundTasks, schedule: dict) -> None:
        self.background = background
        self.entries = []
        for name, entry in schedule.items():
            every = entry["schedule"]
            every = every.total_seconds() if isinstance(every, timedelta) else every
            if isinstance(every, int | float) and every > 0:
                self.entries.append((name, entry["task"], tuple(entry.get("args", ())), float(every)))
            else:
                logger.warning("in-process beat: %s has a schedule it does not run (%r)", name, every)
        self.thread = threading.Thread(target=self._run, name="in-process-beat", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        due = {name: started + every for name, _, _, every in self.entries}
        while True:
            now = time.monotonic()
            for name, task_name, args, every in self.entries:
                if due[name] <= now:
                    due[name] = now + every
                    try:
                        self.background.put(celery_app.tasks[task_name], args)
                    except Exception:  # an unknown task name must not stop the other schedules
                        logger.exception("in-process beat: could not queue %s", task_name)
            time.sleep(max(0.05, min(due.values(), default=now + 60) - time.monotonic()))


def background_start(*, beat: bool = False) -> BackgroundTasks:
    """From now on, this process answers chargers: in-process tasks run on a background thread, and tasks for the
    workers are published by another (idempotent). A server process (`beat=True`, cpo.asgi) without a broker also
    runs the beat schedule (`InProcessBeat`), unless EMBEDDED_BEAT is off (the test suite's servers: tests run
    periodic tasks themselves)."""
    global _background, _publisher, _beat
    if _background is None:
        _background = BackgroundTasks()
    if _publisher is None:
        _publisher = Publisher()
        atexit.register(_publisher.drain, 5.0)  # a clean shutdown hands on what it still holds, if the broker is up
    if beat and _beat is None and settings.CELERY_TASK_ALWAYS_EAGER and settings.EMBEDDED_BEAT:
        _beat = InProcessBeat(_background, settings.CELERY_BEAT_SCHEDULE)
        _beat.start()
    return _background


def background_stop() -> None:
    """Back to running in-process tasks and publishing in the caller's thread (tests)."""
    global _background, _publisher
    _background = None
    if _publisher is not None:
        atexit.unregister(_publisher.drain)
    _publisher = None


def publisher() -> Publisher | None:
    """This server process's publisher (None outside servers)."""
    return _publisher


def in_process(task: Task) -> bool:
    """Whether `task` runs in this process (CELERY_TASK_ALWAYS_EAGER) rather than on a worker."""
    return bool(task.app.conf.task_always_eager)


def task_dispatch(task: Task, *args, countdown: float = 0.0) -> None:
    """Queue `task(*args)`, to run `countdown` seconds from now: on a worker, or in-process on the background thread
    once `background_start()` was called, else at once in this thread (in-process tasks ignore `countdown` then).

    For a worker: a server process hands the task to its publisher thread and returns at once (kept while the broker
    is down); elsewhere it is published here, waiting for an absent broker for up to about a minute
    (CALLER_PUBLISH_RETRY) before raising kombu's OperationalError."""
    if in_process(task):
        if _background is not None:
            _background.put(task, args, countdown=countdown)
        else:
            task.delay(*args)
    elif _publisher is not None:
        _publisher.put(task, args, countdown=countdown)
    elif countdown > 0:
        task.apply_async(args=args, countdown=countdown, retry=True, retry_policy=CALLER_PUBLISH_RETRY)
    else:
        task.apply_async(args=args, retry=True, retry_policy=CALLER_PUBLISH_RETRY)
