"""Daphne as the benchmark starts it: the daphne command line (arguments are daphne's own), after raising the
open-files limit (one socket per charger).

`BENCH_GC_STATS=path` writes, every 2 s, the collector's pauses to `path` as JSON: collections and total seconds per
generation, and every pause of at least 20 ms with its wall-clock time (run.py attributes them to phases).

What earlier runs measured here as experiments is in the product now: gc.freeze() every N websocket connections
(`cpo/asgi.py`, `GC_FREEZE_EVERY_CONNECTIONS`, run.py's `--gc-freeze`), no close_old_connections hop per consumer
message (`OcppConsumer.dispatch`), dashboard and OCPI reactions to gateway events batched off the charger path
(`ocpp_gateway/batching.py`), and the database thread pool (`OCPP_DB_THREADS`, run.py's `--db-threads`).
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


if __name__ == "__main__":
    raise_fd_limit()
    if os.environ.get("BENCH_GC_STATS"):
        GcStats(os.environ["BENCH_GC_STATS"])
    from cpo.server import ServerCommandLine

    sys.argv[0] = "daphne"
    ServerCommandLine.entrypoint()
