"""Daphne as the benchmark starts it: the daphne command line (arguments are daphne's own), after raising the
open-files limit (one socket per charger), with two optional experiments that need no change to the application:

`BENCH_GC_FREEZE_EVERY=N` (0/unset = off, as shipped) calls `gc.freeze()` after every N accepted websocket
connections, moving the long-lived objects of held connections (consumers, ChargePoint objects, Twisted protocols)
out of the cyclic collector's reach so that each full collection does not walk all of them again (DESIGN.md, "What
the hardware allows"). It wraps the ASGI application daphne loads; the product equivalent is the same wrapper in
`cpo/asgi.py` (or a counter in the consumer's `connect()`).

`BENCH_GC_STATS=path` writes, every 2 s, the collector's pauses to `path` as JSON: collections and total seconds per
generation, and every pause of at least 20 ms with its wall-clock time (run.py attributes them to phases).

Two experiments that patch the application in this process only (proposed product changes, measured before they
are made; both off by default):

`BENCH_NO_CLOSE_OLD_CONNECTIONS=1`: channels 4.2+ runs `close_old_connections()` through `sync_to_async` (a hop to
the single sync thread and back) before EVERY message a consumer receives; the gateway never touches the database
from that thread, so the hop is pure overhead on the event loop. Product equivalent: override `dispatch()` in
`OcppConsumer` without the `aclose_old_connections()` call (or call `close_old_connections` in the db() pool).

`BENCH_DASHBOARD_PUBLISH_ASYNC=1`: `cpo.dashboard.receivers.dashboard_publish` runs `async_to_sync(group_send)` on
the gateway's database thread, which then waits for the event loop to do the Redis call; the patch schedules the
group_send on the loop and returns at once (fire and forget). Product equivalent: the same in receivers.py.

The database thread pool is the application's own setting now (`OCPP_DB_THREADS`, read by
`ocpp_gateway/handlers/base.py`); run.py passes it through the environment. (The earlier monkey-patch of `db()`
came after django.setup() had imported the handlers, so it only moved some calls; it is gone.)
"""

import gc
import json
import os
import resource
import sys
import threading
import time


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class GcStats:
    LONG_SECONDS = 0.02

    def __init__(self, path: str):
        self.path = path
        self.collections = [0, 0, 0]
        self.total = [0.0, 0.0, 0.0]
        self.long: list[tuple[float, int, float]] = []
        self.started = 0.0
        gc.callbacks.append(self.callback)
        threading.Thread(target=self.loop, name="gc-stats", daemon=True).start()

    def callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        took = time.perf_counter() - self.started
        gen = info.get("generation", 0)
        self.collections[gen] += 1
        self.total[gen] += took
        if took >= self.LONG_SECONDS and len(self.long) < 5000:
            self.long.append((time.time(), gen, round(took, 4)))

    def loop(self) -> None:
        while True:
            time.sleep(2)
            self.write()

    def write(self) -> None:
        data = {"collections": self.collections, "total_s": [round(t, 3) for t in self.total],
                "long": list(self.long), "frozen": gc.get_freeze_count()}
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self.path)


LOOP = None  # the server's event loop, captured on the first connection


def wrap(application, freeze_every: int):
    """ASGI middleware: remembers the event loop; gc.freeze() after every `freeze_every` websocket connections."""
    count = 0

    async def app(scope, receive, send):
        nonlocal count
        global LOOP
        if LOOP is None:
            import asyncio

            LOOP = asyncio.get_running_loop()
        if freeze_every and scope["type"] == "websocket":
            count += 1
            if count % freeze_every == 0:
                gc.freeze()
        return await application(scope, receive, send)

    return app


def patch_no_close_old_connections() -> None:
    import channels.consumer
    import channels.generic.websocket

    async def nothing() -> None:
        return None

    channels.consumer.aclose_old_connections = nothing
    channels.generic.websocket.aclose_old_connections = nothing


def patch_dashboard_publish_async() -> None:
    from channels.layers import get_channel_layer

    from cpo.dashboard import consumers, receivers

    def publish(data: dict) -> None:
        layer = get_channel_layer()
        if layer is None or LOOP is None:
            return
        message = {"type": "dashboard.event", "data": data}
        LOOP.call_soon_threadsafe(lambda: LOOP.create_task(layer.group_send(consumers.DASHBOARD_GROUP, message)))

    receivers.dashboard_publish = publish


if __name__ == "__main__":
    raise_fd_limit()
    if os.environ.get("BENCH_GC_STATS"):
        GcStats(os.environ["BENCH_GC_STATS"])
    from daphne.cli import CommandLineInterface

    every = int(os.environ.get("BENCH_GC_FREEZE_EVERY", "0") or 0)
    load = CommandLineInterface.load_asgi_app

    def load_and_patch(self, path):
        application = load(self, path)  # imports cpo.asgi, i.e. django.setup()
        if os.environ.get("BENCH_NO_CLOSE_OLD_CONNECTIONS") == "1":
            patch_no_close_old_connections()
        if os.environ.get("BENCH_DASHBOARD_PUBLISH_ASYNC") == "1":
            patch_dashboard_publish_async()
        return wrap(application, every)

    CommandLineInterface.load_asgi_app = load_and_patch
    sys.argv[0] = "daphne"
    CommandLineInterface.entrypoint()
