"""The gateway's CPU per CALL on a fixed workload, in one process: a figure that survives a busy machine.

`bench/run.py` measures CPU per CALL at offered rates; when other processes take the core, the platform reaches a
fraction of the rate and fixed costs (timers, batch threads) weigh on fewer CALLs. This drives the platform's ASGI
application (`cpo.asgi.application`: the Channels consumer, the handlers, the services, the batch writers, the
channel layer and Celery dispatch, PostgreSQL and Redis as configured) with N chargers over Channels' in-memory
websocket communicator and counts the process's CPU time (user+system, every thread) for a fixed number of CALLs
in the realistic mix of `bench/loadgen.py` (same seed, same sequence), batches flushed inside the window. daphne's
websocket framing is not in it; the load generator's own share is (the same in every run), so compare runs of this
script with each other, not with `run.py`'s figures.

    DATABASE_URL=postgres://.../x REDIS_URL=redis://.../N python bench/cpu_per_call.py --db-name cpo_x_bench \\
        [--chargers 100] [--calls 6000] [--repeat 3] [--pyspy FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import loadgen  # noqa: E402
import servers  # noqa: E402


class CommunicatorSocket:
    """What loadgen.Charger needs of a websocket, over Channels' WebsocketCommunicator."""

    def __init__(self, communicator):
        self.communicator = communicator
        self.close_code = None

    async def send(self, frame: str) -> None:
        await self.communicator.send_to(text_data=frame)

    def __aiter__(self):
        return self

    async def __anext__(self) -> str:
        message = await self.communicator.receive_output(timeout=3600)
        if message["type"] == "websocket.send":
            return message.get("text") or message["bytes"].decode()
        self.close_code = message.get("code")
        raise StopAsyncIteration

    async def close(self) -> None:
        await self.communicator.disconnect()


async def open_charger(application, identity: str, settings: loadgen.Settings, stats: loadgen.Stats):
    from channels.testing import WebsocketCommunicator

    token = base64.b64encode(f"{identity}:{loadgen.secret_for(identity)}".encode()).decode()
    communicator = WebsocketCommunicator(
        application,
        f"/ocpp/{identity}",
        headers=[(b"authorization", f"Basic {token}".encode())],
        subprotocols=["ocpp1.6"],
    )
    connected, _ = await communicator.connect(timeout=30)
    if not connected:
        raise SystemExit(f"{identity}: handshake refused")
    charger = loadgen.Charger(identity, settings, stats)
    charger.ws = CommunicatorSocket(communicator)
    charger.reader = asyncio.create_task(charger._read())
    return charger


class QueryCounter:
    """SQL statements sent by every connection of this process (a count that does not depend on the machine)."""

    count = 0

    def __call__(self, execute, sql, params, many, context):
        QueryCounter.count += 1
        return execute(sql, params, many, context)

    @classmethod
    def install(cls) -> None:
        from django.db.backends.signals import connection_created

        def attach(sender, connection, **kwargs) -> None:
            if cls not in {type(w) for w in connection.execute_wrappers}:
                connection.execute_wrappers.append(cls())

        connection_created.connect(attach, weak=False)


async def measure(chargers, calls: int, flush_wait: float) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, CALLs) for `calls` CALLs of the realistic mix, closed loop, plus the wait for the
    batch writers to flush what the CALLs queued."""
    done = 0

    async def life(charger) -> None:
        nonlocal done
        while done < calls:
            done += 1
            try:
                await charger.next_call()
            except loadgen.CallFailed:
                pass

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(life(c) for c in chargers))
    await asyncio.sleep(flush_wait)
    return time.process_time() - cpu, time.perf_counter() - wall, done


async def main_async(args) -> None:
    from cpo.asgi import application

    random.seed(args.seed)
    stats = loadgen.Stats()
    settings = loadgen.Settings(url="", call_timeout=120)
    chargers = [
        await open_charger(application, identity, settings, stats) for identity in loadgen.identities(args.chargers)
    ]
    for charger in chargers:
        await charger.boot()
    await loadgen.prime(chargers, share=0.7, rate=1000)
    await measure(chargers, args.chargers * 5, flush_wait=args.flush_wait)  # warm-up: caches, prepared code paths
    profiler = None
    if args.pyspy:
        py_spy = Path(sys.executable).parent / "py-spy"
        profiler = subprocess.Popen(
            [str(py_spy), "record", "--pid", str(os.getpid()), "--rate", "200", "--format", "raw", "--gil",
             "--nonblocking", "--output", args.pyspy],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(1)
    results = []
    for _ in range(args.repeat):
        before, queries = dict(stats.errors), QueryCounter.count
        cpu, wall, calls = await measure(chargers, args.calls, flush_wait=args.flush_wait)
        errors = {k: v - before.get(k, 0) for k, v in stats.errors.items() if v - before.get(k, 0)}
        results.append(cpu / calls * 1000)
        load = os.getloadavg()[0]
        print(
            f"{calls} CALLs: CPU {cpu:.2f} s = {cpu / calls * 1000:.3f} ms/CALL, "
            f"{(QueryCounter.count - queries) / calls:.2f} SQL statements/CALL, wall {wall:.1f} s, "
            f"load avg {load:.2f}, errors {errors or 0}",
            flush=True,
        )
    if profiler is not None:
        profiler.send_signal(2)
        profiler.wait(timeout=60)
    results.sort()
    per_action = {action: len(v) for action, v in stats.latencies.items()}
    print(f"median {results[len(results) // 2]:.3f} ms/CALL (min {results[0]:.3f}), per action {per_action}")
    # Together: each waits up to 10 s for its reader, which Channels' communicator never ends (one by one, 100
    # chargers kept the script alive for a quarter of an hour after its figures).
    await loadgen.close_all(chargers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chargers", type=int, default=100)
    parser.add_argument("--calls", type=int, default=6000, help="CALLs per measurement")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--flush-wait", type=float, default=2.5, help="batches' flush wait")
    parser.add_argument("--db-name", required=True, help="dropped and recreated; must contain 'bench'")
    parser.add_argument("--reuse-db", action="store_true", help="keep the database of an earlier run")
    parser.add_argument("--pyspy", help="also record the measurements with py-spy (raw format) into this file")
    args = parser.parse_args()
    url = servers.bench_database_url(os.environ["DATABASE_URL"], args.db_name)
    prefix = os.environ.get("CHANNEL_LAYER_PREFIX", "cpucall")
    env = servers.platform_env(database_url=url, redis_url=os.environ.get("REDIS_URL", ""), prefix=prefix, port=1)
    env["CELERY_QUEUE"] = f"{prefix}-celery"
    if not args.reuse_db:
        servers.database_recreate(url)
    if env["REDIS_URL"]:
        servers.redis_keys_delete(env["REDIS_URL"], [prefix, env["CELERY_QUEUE"]])
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cpo.settings")
    import django

    django.setup()
    QueryCounter.install()
    if not args.reuse_db:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        servers.stations_create(count=args.chargers, connectors=2, id_tag="BENCH-TAG")
    else:
        from ocpp_gateway.models import Transaction

        Transaction.objects.filter(status=Transaction.Status.ACTIVE).update(status=Transaction.Status.ENDED)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
