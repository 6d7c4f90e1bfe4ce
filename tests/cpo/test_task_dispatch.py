"""Queueing tasks: published for a worker with a broker; in-process tasks at once in the caller's thread, or, in a
server process, on its background thread, in the order they fall due."""

import threading
from types import SimpleNamespace

import pytest

from cpo import task_dispatch


class RecordingTask:
    """Stands in for a Celery task: records which thread ran it, and how it was queued."""

    name = "recording"

    def __init__(self, *, eager: bool):
        self.app = SimpleNamespace(conf=SimpleNamespace(task_always_eager=eager))
        self.calls: list[tuple[str, tuple, str]] = []

    def _record(self, how: str, args: tuple) -> SimpleNamespace:
        self.calls.append((how, tuple(args), threading.current_thread().name))
        return SimpleNamespace(failed=lambda: False)

    def delay(self, *args):
        return self._record("delay", args)

    def apply_async(self, args=(), countdown=None):
        return self._record(f"apply_async countdown={countdown}", args)

    def apply(self, args=()):
        return self._record("apply", args)


@pytest.fixture
def background():
    yield task_dispatch.background_start()
    task_dispatch.background_stop()


def test_without_a_background_thread_in_process_tasks_run_in_the_callers_thread():
    task = RecordingTask(eager=True)
    task_dispatch.task_dispatch(task, 1)
    assert task.calls == [("delay", (1,), threading.current_thread().name)]


def test_in_a_server_in_process_tasks_run_on_the_background_thread_in_order(background):
    task = RecordingTask(eager=True)
    task_dispatch.task_dispatch(task, "later", countdown=60)
    for n in range(3):
        task_dispatch.task_dispatch(task, n)
    assert background.drain(timeout=5)
    assert task.calls == [("apply", (n,), "in-process-tasks") for n in range(3)]  # "later" is not due yet


def test_with_a_broker_tasks_are_published_even_in_a_server(background):
    task = RecordingTask(eager=False)
    task_dispatch.task_dispatch(task, 1)
    task_dispatch.task_dispatch(task, 2, countdown=5)
    me = threading.current_thread().name
    assert task.calls == [("delay", (1,), me), ("apply_async countdown=5", (2,), me)]
