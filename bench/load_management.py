"""Load-management benchmark: how long after a session starts (or stops) at a busy site every charger holds its new
share. One command: `make bench-load` (or `python bench/load_management.py --help`).

The platform runs as `make run` starts it (the gateway and the Celery worker from the Makefile's `run` recipe) in
production settings on PostgreSQL and Redis, like bench/run.py. One location with --stations stations of
--connectors EVSEs each (200 connectors by default) under one load group of --limit-amps. Every connector but one
charges; then, --rounds times, the last connector starts a session (every share goes down: each charger must hold
its reduced profile before the newcomer is raised) and stops it again (every share goes up). For each step: the time
from the StartTransaction / StopTransaction sent to the moment the last charger received its new TxProfile, and
how many profiles that took. The issue's target: within 2 s of a session starting, at 200 connectors.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(ROOT))

import loadgen  # noqa: E402
import servers  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def site_create(*, stations: int, connectors: int, limit_amps: Decimal, id_tag: str) -> None:
    """The stations (bench/servers.py's bulk creation), all moved to one location under one load group."""
    from cpo.models import EVSE, ChargingStation, LoadGroup, Location

    servers.stations_create(count=stations, connectors=connectors, id_tag=id_tag)
    names = loadgen.identities(stations)
    site = Location.objects.order_by("id").first()
    ChargingStation.objects.filter(identity__in=names).update(location=site)
    EVSE.objects.filter(station__identity__in=names).update(location=site)
    Location.objects.exclude(pk=site.pk).delete()
    LoadGroup.objects.create(name="bench grid", location=site, limit_amps=limit_amps, min_charging_amps=Decimal(6))


class Site:
    """The chargers of the site and the latest TxProfile limit each connector received, with when."""

    def __init__(self, chargers: list[loadgen.Charger]):
        self.chargers = chargers
        self.limits: dict[tuple[str, int], tuple[float, float]] = {}
        self.profiles = 0
        for charger in chargers:
            charger.on_call = self.answer

    def answer(self, charger: loadgen.Charger, action: str, payload: dict, received: float) -> dict | None:
        if action != "SetChargingProfile":
            return None
        profile = payload["csChargingProfiles"]
        if profile["chargingProfilePurpose"] == "TxProfile":
            limit = profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
            self.limits[(charger.identity, payload["connectorId"])] = (float(limit), received)
            self.profiles += 1
        return {"status": "Accepted"}

    async def until(self, connectors: list[tuple[str, int]], limit: float, timeout: float) -> float | None:
        """Wait until every connector holds `limit`; the time its last profile arrived (perf_counter), or None."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            held = [self.limits.get(c) for c in connectors]
            if all(h is not None and abs(h[0] - limit) < 0.05 for h in held):
                return max(h[1] for h in held if h is not None)
            await asyncio.sleep(0.01)
        return None


async def bench(args, url: str) -> list[dict]:
    stats = loadgen.Stats()
    settings = loadgen.Settings(url=url, connectors=args.connectors, id_tag=args.id_tag)
    chargers = [loadgen.Charger(identity, settings, stats) for identity in loadgen.identities(args.stations)]
    site = Site(chargers)
    for charger in chargers:
        if not (await charger.open()).ok:
            raise SystemExit(f"{charger.identity} could not connect: {dict(stats.errors)}")
        await charger.call("BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "LM"})
    connectors = [(c.identity, n) for c in chargers for n in range(1, args.connectors + 1)]
    transactions: dict[tuple[str, int], int] = {}
    by_identity = {c.identity: c for c in chargers}

    async def start(connector: tuple[str, int]) -> None:
        answer = await by_identity[connector[0]].call(
            "StartTransaction",
            {"connectorId": connector[1], "idTag": args.id_tag, "meterStart": 0, "timestamp": loadgen.now_iso()},
        )
        transactions[connector] = answer["transactionId"]

    async def stop(connector: tuple[str, int]) -> None:
        await by_identity[connector[0]].call(
            "StopTransaction",
            {"transactionId": transactions.pop(connector), "meterStop": 1000, "timestamp": loadgen.now_iso()},
        )

    total = len(connectors)
    limit = Decimal(args.limit_amps)
    share_all = float((limit / total).quantize(Decimal("0.1"), rounding="ROUND_DOWN"))
    share_but_one = float(min(Decimal(32), (limit / (total - 1)).quantize(Decimal("0.1"), rounding="ROUND_DOWN")))
    if share_all == share_but_one:
        raise SystemExit(f"--limit-amps {limit} gives {share_all} A with and without one session: choose another")
    rest, last = connectors[:-1], connectors[-1]
    log(f"{len(chargers)} chargers connected; starting {len(rest)} sessions")
    for i in range(0, len(rest), 20):
        await asyncio.gather(*(start(c) for c in rest[i : i + 20]))
    if await site.until(rest, share_but_one, timeout=120) is None:
        raise SystemExit("the site did not settle at the share of the priming sessions")
    log(f"{len(rest)} sessions at {share_but_one} A each; measuring {args.rounds} rounds")
    rows = []
    for round_ in range(1, args.rounds + 1):
        for step, action, share, expected in (
            ("session starts", start, share_all, connectors),
            ("session stops", stop, share_but_one, rest),
        ):
            before = site.profiles
            sent = time.perf_counter()
            await action(last)
            settled = await site.until(expected, share, timeout=args.timeout)
            rows.append(
                {
                    "round": round_,
                    "step": step,
                    "connectors": len(expected),
                    "share_a": share,
                    "settled_ms": None if settled is None else (settled - sent) * 1000,
                    "profiles": site.profiles - before,
                }
            )
            log(f"round {round_} {step}: {rows[-1]['settled_ms'] or 'NOT SETTLED'} ms, {rows[-1]['profiles']} profiles")
            await asyncio.sleep(args.pause)
    for charger in chargers:
        await charger.close()
    return rows


def report(rows: list[dict], args) -> None:
    print()
    print(
        f"load management: {args.stations} stations x {args.connectors} connectors under {args.limit_amps} A, "
        f"{args.rounds} rounds"
    )
    print()
    print("| step | connectors | share (A) | settled p50 (ms) | settled max (ms) | profiles per step | target |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for step in ("session starts", "session stops"):
        mine = [r for r in rows if r["step"] == step]
        times = [r["settled_ms"] for r in mine if r["settled_ms"] is not None]
        unsettled = len(mine) - len(times)
        p50 = f"{statistics.median(times):.0f}" if times else "-"
        worst = f"{max(times):.0f}" if times else "-"
        if unsettled:
            worst += f" ({unsettled} not settled in {args.timeout:.0f} s)"
        target = "< 2000 ms" if step == "session starts" else ""
        print(
            f"| {step} | {mine[0]['connectors']} | {mine[0]['share_a']} | {p50} | {worst} | "
            f"{statistics.median(r['profiles'] for r in mine):.0f} | {target} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=20)
    parser.add_argument("--connectors", type=int, default=10, help="EVSEs per station")
    parser.add_argument("--limit-amps", default="1990", help="the site's limit (A per phase)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between steps")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a step may take to settle")
    parser.add_argument("--db-name", default="cpo_bench_load")
    parser.add_argument("--prefix", default="bench-load")
    parser.add_argument("--id-tag", default="BENCH-TAG")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the servers to CPUs")
    args = parser.parse_args()

    database_url = servers.bench_database_url(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL, args.db_name)
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    server_cpus, helper_cpus = servers.pinning(not args.no_pin)
    port = servers.free_port()
    env = servers.platform_env(database_url=database_url, redis_url=redis_url, prefix=args.prefix, port=port)
    servers.database_recreate(database_url)
    servers.redis_keys_delete(redis_url, [args.prefix])
    servers.django_setup(
        {
            k: env[k]
            for k in ("DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "CHANNEL_LAYER_PREFIX", "CELERY_QUEUE")
        }
        | {"DJANGO_SETTINGS_MODULE": "cpo.settings"}
    )
    from django.core.management import call_command
    from django.db import connections

    logging.getLogger("httpx").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0, interactive=False)
    site_create(
        stations=args.stations, connectors=args.connectors, limit_amps=Decimal(args.limit_amps), id_tag=args.id_tag
    )
    connections.close_all()
    gateway, worker = servers.platform_start(
        env=env, port=port, cpus=server_cpus, helper_cpus=helper_cpus, worker=True, name="load"
    )
    try:
        rows = asyncio.run(bench(args, f"ws://127.0.0.1:{port}/ocpp/"))
    finally:
        gateway.stop()
        if worker is not None:
            worker.stop()
    report(rows, args)


if __name__ == "__main__":
    main()
