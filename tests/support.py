"""Small helpers for tests that talk to live servers from synchronous test code."""

import asyncio
import time

from django.db import connections


def wait_until(predicate, timeout: float = 5.0):
    """Poll `predicate` until it returns something truthy (servers write asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def in_thread(func, **kwargs):
    """Run blocking `func` in a worker thread from async code, closing the database connection it opened."""

    def run():
        try:
            return func(**kwargs)
        finally:
            connections.close_all()

    return asyncio.to_thread(run)
