"""The garbage collector in a process that holds thousands of charger sockets (cpo/asgi.py).

Full collections walk every tracked object: with 10,000 chargers held that paused the event loop for 0.5-2.5 s
(bench/RESULTS.md). Two remedies: long-lived objects are frozen (`gc.freeze()`, out of the collector's view) every
few hundred connections, and the young generation is large (GC_THRESHOLD in cpo/asgi.py).

Frozen objects are never collected, so the reference cycles of a connection that closes after it was frozen would
stay for good (about 75 objects a connection: 225,000 after 3,000 chargers connected and left). So once enough
connections have closed, and at most every `collect_seconds`, the frozen objects are collected (a single full
collection, the pause freezing otherwise avoids) and the survivors frozen again.
"""

import asyncio
import gc
import time


def gc_freeze_every(app, every: int, *, collect_seconds: float = 600.0):
    """ASGI middleware: `gc.freeze()` after every `every` websocket connections; once `every` websockets have closed,
    the frozen objects are collected, `collect_seconds` after the last time at the soonest (a burst of closes, a
    network cut, is collected in full, late rather than in pieces). every <= 0: neither."""
    if every <= 0:
        return app
    opened = closed = 0
    last_collect = time.monotonic()
    due: asyncio.TimerHandle | None = None

    def collect() -> None:
        nonlocal closed, last_collect, due
        closed, last_collect, due = 0, time.monotonic(), None
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    async def wrapped(scope, receive, send):
        nonlocal opened, closed, due
        if scope["type"] != "websocket":
            return await app(scope, receive, send)
        opened += 1
        if opened % every == 0:
            gc.freeze()
        try:
            return await app(scope, receive, send)
        finally:
            closed += 1
            if closed >= every and due is None:
                wait = max(0.0, collect_seconds - (time.monotonic() - last_collect))
                due = asyncio.get_running_loop().call_later(wait, collect)

    return wrapped
