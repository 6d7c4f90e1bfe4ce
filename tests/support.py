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


def ocpi_examples_dir():
    """The specification's example objects: OCPI_EXAMPLES_DIR, else the steering repo's shared/ beside this
    checkout (as CI lays it out), else /work/shared."""
    import os
    from pathlib import Path

    if os.environ.get("OCPI_EXAMPLES_DIR"):
        return Path(os.environ["OCPI_EXAMPLES_DIR"])
    beside = Path(__file__).resolve().parents[2] / "shared" / "ocpi-2.2.1-examples"
    return beside if beside.exists() else Path("/work/shared/ocpi-2.2.1-examples")
