"""The ASGI server's event loop, for code on its threads that must hand work back to it (the channel layer's
connections and the chargers' sockets belong to that loop).

`server_loop_remember` wraps the ASGI application (cpo/asgi.py) and notes the running loop, asyncio's own
`get_running_loop()`, on every connection; `server_loop()` gives it to any thread of that process. Processes without
an ASGI server (Celery workers, the shell, WSGI) get None; `channel_layer_loop()` gives them a loop of their own on a
daemon thread. This replaces reading asgiref's private `SyncToAsync.threadlocal.main_event_loop`.
"""

import asyncio
import os
import threading

_loop: asyncio.AbstractEventLoop | None = None
_pid: int | None = None


def server_loop_remember(app):
    """ASGI middleware: remember the loop the server runs the application on."""

    async def remembering(scope, receive, send):
        global _loop, _pid
        loop = asyncio.get_running_loop()
        if loop is not _loop:
            _loop, _pid = loop, os.getpid()
        return await app(scope, receive, send)

    return remembering


def server_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop of this process's ASGI server; None when there is none (or it stopped)."""
    loop = _loop
    if loop is None or _pid != os.getpid() or loop.is_closed() or not loop.is_running():
        return None
    return loop


_own: tuple[int, asyncio.AbstractEventLoop] | None = None
_own_lock = threading.Lock()


def channel_layer_loop() -> asyncio.AbstractEventLoop:
    """The loop on which this process waits on the channel layer: the server's, else one of the process's own on a
    daemon thread (made on first use, again after a fork). One loop, because channels_redis lets one event loop at
    a time receive: a worker's threads each waiting for a charger's answer in a loop of their own failed with "Two
    event loops are trying to receive() on one channel layer at once"."""
    loop = server_loop()
    if loop is not None:
        return loop
    global _own
    with _own_lock:
        if _own is None or _own[0] != os.getpid() or _own[1].is_closed():
            own = asyncio.new_event_loop()
            threading.Thread(target=own.run_forever, name="channel-layer-loop", daemon=True).start()
            _own = (os.getpid(), own)
        return _own[1]
