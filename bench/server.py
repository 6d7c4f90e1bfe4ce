"""Daphne as the benchmark starts it: the daphne command line, after raising the open-files limit (one socket per
charger). Arguments are daphne's own.

`BENCH_GC_FREEZE_SECONDS=N` (off by default) additionally calls `gc.freeze()` every N seconds, moving the
long-lived objects of held connections out of the collector's reach. It exists to measure that remedy
(DESIGN.md, "What the hardware allows") without changing the application; the figures without it are the ones
that describe the platform as shipped.

`BENCH_DB_THREAD_SENSITIVE=0` (experiment, off by default) makes the gateway's `db()` wrapper run services with
`thread_sensitive=False`, i.e. on the default executor's pool (ASGI_THREADS threads, one database connection
each) instead of the single shared thread every consumer queues on. It is patched in before the application is
imported, to measure the proposed change to `ocpp_gateway/handlers/base.py` without editing it. KNOWN DEFECT:
django.setup() already imports the handler modules, which bind `db` by name, so the patch comes too late and only
some calls move to the pool; do not trust figures from it until the patch is applied where `db` is bound.
"""

import gc
import os
import resource
import sys
import threading


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def freeze_every(seconds: float) -> None:
    def loop() -> None:
        while not stop.wait(seconds):
            gc.freeze()

    stop = threading.Event()
    threading.Thread(target=loop, name="gc-freeze", daemon=True).start()


if __name__ == "__main__":
    raise_fd_limit()
    if float(os.environ.get("BENCH_GC_FREEZE_SECONDS", "0") or 0) > 0:
        freeze_every(float(os.environ["BENCH_GC_FREEZE_SECONDS"]))
    if os.environ.get("BENCH_DB_THREAD_SENSITIVE", "1") == "0":
        sys.path.insert(0, os.getcwd())
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cpo.settings")
        import django

        django.setup()
        from channels.db import database_sync_to_async

        from ocpp_gateway.handlers import base

        base.db = lambda func: database_sync_to_async(func, thread_sensitive=False)
    from daphne.cli import CommandLineInterface

    sys.argv[0] = "daphne"
    CommandLineInterface.entrypoint()
