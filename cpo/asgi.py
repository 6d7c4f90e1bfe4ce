"""ASGI entry point: HTTP (dashboard, admin, OCPI) and websockets (chargers at /ocpp/<identity>, dashboard live)."""

import gc
import logging
import os

from django.core.asgi import get_asgi_application

from cpo.envfile import env_file_load

env_file_load()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cpo.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from cpo import task_dispatch  # noqa: E402
from cpo.memory import gc_freeze_every  # noqa: E402
from cpo.proxy import trusted_proxy_headers  # noqa: E402
from cpo.routing import websocket_urlpatterns  # noqa: E402
from ocpp_gateway.event_loop import server_loop_remember  # noqa: E402
from ocpp_gateway.services.liveness import gateway_lease_start  # noqa: E402

# This process answers chargers: in-process tasks (the embedded default) run on a background thread, not in the
# thread that commits a charger's message (see cpo/task_dispatch.py).
task_dispatch.background_start(beat=True)
# It holds charger sockets: a lease says it lives (renewed by a thread, released at a clean exit), so that the
# stations of a process that died go offline (ocpp_gateway/services/liveness.py).
gateway_lease_start()

GC_FREEZE_EVERY = int(os.environ.get("GC_FREEZE_EVERY_CONNECTIONS", "500"))
GC_COLLECT_FROZEN_SECONDS = float(os.environ.get("GC_COLLECT_FROZEN_SECONDS", "600"))
# The collector's first threshold is 700 allocations by default: at a few hundred CALLs a second nearly every
# object that lives through one CALL (its frames, futures, batched writes) outlives two young collections and counts
# towards a full one, and with 10,000 chargers held a full collection (0 objects freed) paused the event loop for
# 500-690 ms every 6-10 s: the held busy hour's p99 was 420-500 ms, 73 ms with 50,000 (bench/RESULTS.md).
GC_THRESHOLD = tuple(int(n) for n in os.environ.get("GC_THRESHOLD", "50000,20,10").split(","))
gc.set_threshold(*GC_THRESHOLD)
logger = logging.getLogger(__name__)


async def websocket_unrouted(scope, receive, send) -> None:
    """A websocket to a path nobody serves (typically a charger configured without /ocpp/): its handshake is refused
    (HTTP 403) with one log line, where the router would raise and daphne print a traceback and answer 500."""
    await receive()  # websocket.connect
    logger.warning("websocket to %s refused: no such endpoint (chargers connect at /ocpp/<identity>)", scope["path"])
    await send({"type": "websocket.close"})


application = server_loop_remember(
    gc_freeze_every(
        trusted_proxy_headers(
            ProtocolTypeRouter(
                {
                    "http": django_asgi_app,
                    "websocket": URLRouter([*websocket_urlpatterns, re_path(r"", websocket_unrouted)]),
                }
            )
        ),
        GC_FREEZE_EVERY,
        collect_seconds=GC_COLLECT_FROZEN_SECONDS,
    )
)
