"""The ASGI server's event loop, for code on its threads that must hand work back to it (the channel layer's
connections and the chargers' sockets belong to that loop).

`server_loop_remember` wraps the ASGI application (cpo/asgi.py) and notes the running loop, asyncio's own
`get_running_loop()`, on every connection; `server_loop()` gives it to any thread of that process. Processes without
an ASGI server (Celery workers, the shell, WSGI) get None and run such work themselves. This replaces reading
asgiref's private `SyncToAsync.threadlocal.main_event_loop`.
"""

import asyncio
import os

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
