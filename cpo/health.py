"""Liveness and readiness for load balancers and orchestrators.

`/healthz` (liveness) says the process answers: restart it when it does not. `/readyz` (readiness) says it can serve:
the database answers a query and, when REDIS_URL is set, Redis answers a PING; a process that is not ready gets no
traffic (HTTP 503) but is not restarted, because the fault is elsewhere and it recovers on its own.

Each check runs on a thread of its own and is waited for at most CHECK_TIMEOUT_SECONDS: a database that accepts
connections but never answers (a hung server, packets dropped on the way) held the probe, and the thread serving
every synchronous view with it, for as long as TCP took to give up. A check still waiting is not started again: the
next probe waits on the same one, so a hang costs one thread per dependency, not one per probe."""

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

CHECK_TIMEOUT_SECONDS = 2.0

_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")
_pending: dict[str, Future] = {}
_pending_lock = threading.Lock()


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> None:
    """On the check's own thread, with a connection of its own, closed after: none is kept idle for the probe."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()


def _redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT_SECONDS, socket_connect_timeout=CHECK_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()


def _started(name: str, check: Callable[[], None]) -> Future:
    """The running check of `name`, started unless one still runs."""
    with _pending_lock:
        future = _pending.get(name)
        if future is None or future.done():
            future = _pending[name] = _checks.submit(check)
        return future


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database}
    if settings.REDIS_URL:
        checks["redis"] = _redis
    started = time.monotonic()
    futures = {name: _started(name, check) for name, check in checks.items()}  # side by side: one bound for all
    results = {}
    for name, future in futures.items():
        try:
            future.result(timeout=max(0.0, started + CHECK_TIMEOUT_SECONDS - time.monotonic()))
        except FutureTimeout:
            results[name] = {"ok": False, "error": "Timeout"}
        except Exception as exc:  # any failure means "not ready": say which part and why, never raise
            results[name] = {"ok": False, "error": type(exc).__name__}
        else:
            results[name] = {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}
    ready = all(r["ok"] for r in results.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": results}, status=200 if ready else 503)
