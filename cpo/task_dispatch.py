"""Queueing a Celery task from code that may be answering a charger.

With a broker (REDIS_URL) `task_dispatch` publishes the task and a worker runs it. Without one (the embedded
default) tasks run in-process (CELERY_TASK_ALWAYS_EAGER), and `task.delay()` would run the task in the caller's
thread: a gateway event or an outbox delivery queued when a charger's message commits would keep the charger waiting
for billing and for a partner's HTTP answer. A server process therefore calls `background_start()` (cpo.asgi does):
in-process tasks then run one after the other on one daemon thread of the process, `countdown` honoured. Elsewhere
(management commands, the test suite) they run at once in the caller's thread, as Celery's eager mode does, so a
short-lived process does not exit with its work still queued.
"""

import heapq
import itertools
import logging
import threading
import time

from celery import Task
from django.db import close_old_connections

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


_background: BackgroundTasks | None = None


def background_start() -> BackgroundTasks:
    """From now on, in-process tasks of this process run on a background thread (idempotent)."""
    global _background
    if _background is None:
        _background = BackgroundTasks()
    return _background


def background_stop() -> None:
    """Back to running in-process tasks in the caller's thread (tests)."""
    global _background
    _background = None


def in_process(task: Task) -> bool:
    """Whether `task` runs in this process (CELERY_TASK_ALWAYS_EAGER) rather than on a worker."""
    return bool(task.app.conf.task_always_eager)


def task_dispatch(task: Task, *args, countdown: float = 0.0) -> None:
    """Queue `task(*args)`, to run `countdown` seconds from now: on a worker, or in-process on the background thread
    once `background_start()` was called, else at once in this thread (in-process tasks ignore `countdown` then)."""
    if in_process(task) and _background is not None:
        _background.put(task, args, countdown=countdown)
    elif countdown > 0:
        task.apply_async(args=args, countdown=countdown)
    else:
        task.delay(*args)
