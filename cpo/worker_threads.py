"""Threads of a Celery worker process for the items of one batch task (transactions to bill, EVSEs to announce, pushes
to send), so that their waits overlap.

The pipeline's work waits far more than it computes: database round trips (a transaction's billing makes dozens) and
partners' HTTP answers. A worker process runs one task at a time, so a batch worked item by item waits item by item
(bench/RESULTS.md: the worker used a tenth of a core while the CDRs queued). The pool is made once per process (after
the prefork), so its threads keep their database connections from one task to the next; each item runs between two
`close_old_connections()`, as a task does, so a connection past CONN_MAX_AGE or broken by an error is replaced.
"""

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def worker_pool() -> ThreadPoolExecutor:
    """This process's pool (WORKER_THREADS threads), made on first use; a forked child makes its own."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=settings.WORKER_THREADS, thread_name_prefix="worker-item")
            _pool_pid = os.getpid()
        return _pool


def _item(func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()


def in_worker_thread(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
    """Run `func(*args, **kwargs)` on a thread of the pool, with a fresh-enough database connection of its own."""
    return worker_pool().submit(_item, func, args, kwargs)


def each_in_worker_threads(func: Callable[[Any], Any], items: Iterable) -> list[tuple[Any, BaseException | None]]:
    """`func(item)` for every item, WORKER_THREADS at a time; waits for all. Returns (item, the exception it raised or
    None) per item, in order: one item failing does not stop the others."""
    futures = [(item, in_worker_thread(func, item)) for item in items]
    return [(item, future.exception()) for item, future in futures]


def worker_pool_close() -> None:
    """Stop this process's pool (tests): its threads end, and their database connections are closed with them."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)
