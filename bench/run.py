"""The OCPP gateway benchmark, start to finish: `make bench` (or `python bench/run.py --help`).

It sets everything up itself: a dedicated PostgreSQL database (dropped and migrated on every run), N stations with
known secrets created in bulk, ONE daphne process on a free loopback port with the Redis channel layer, then the
load generator (bench/loadgen.py, in this process) runs the scenarios and the tables are printed.

Scenarios (pick with --scenarios, default all three):
  a  hold:   N chargers ramp up at --ramp per second, then stay connected --hold seconds, heartbeating every
             --heartbeat seconds, a --charging share of them in a transaction with MeterValues every --meter-interval.
             Target: every charger held, 0 errors.
  b  steady: --rate CALLs per second (a mix of Heartbeat, StatusNotification, Authorize, Start/StopTransaction and
             MeterValues) for --steady-seconds, spread over the connected fleet. Target: p99 < 100 ms.
  c  storm:  every charger's connection is cut at once and all reconnect at once (retrying with 1-5 s backoff on a
             failed handshake, as firmware does). Reported: time until all are booted again.
The fleet of N chargers persists across scenarios: b and c first connect whatever is not connected.

Environment: DATABASE_URL names the PostgreSQL server (its database name is ignored: the benchmark uses --db-name,
which must contain "bench" because it is dropped); REDIS_URL the Redis for the channel layer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import loadgen  # noqa: E402  (bench/ is sys.path[0] when run as a script)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/cpo_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# The server settings run.py uses unless told otherwise: the product's (gc.freeze every 500 connections is
# cpo/asgi.py's default; backlog and connect timeout are what `make run` passes to daphne).
SERVER_DEFAULTS = {"db_threads": 0, "gc_freeze": 500, "backlog": 4096, "connect_timeout": 60, "access_log": False}
LOCATION_ID = "BENCH-LOC"


# -- setup ---------------------------------------------------------------------------------------------------------
def bench_database_url(base_url: str, name: str) -> str:
    if "bench" not in name:
        raise SystemExit(f"refusing to drop database {name!r}: its name must contain 'bench'")
    parts = urlsplit(base_url)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit(f"the benchmark needs PostgreSQL, DATABASE_URL is {base_url!r}")
    return urlunsplit(parts._replace(path="/" + name))


def database_recreate(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def django_setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cpo.settings")
    import django

    django.setup()


def stations_create(*, count: int, connectors: int, prefix: str, id_tag: str) -> None:
    """N stations with known secrets (loadgen.secret_for), `connectors` EVSEs each, at one location, and the local
    token the chargers present. Bulk inserts with precomputed hashes: seconds for thousands of stations."""
    from decimal import Decimal

    from django.conf import settings
    from django.db import transaction

    from cpo.models import EVSE, ChargingStation, Connector, Location, Token
    from cpo.services import station_secret_hash

    with transaction.atomic():
        location = Location.objects.create(
            id=LOCATION_ID, name="Bench Plaza", address="Benchstraat 1", city="Utrecht", postal_code="3511AA",
            country="NLD", latitude=Decimal("52.090737"), longitude=Decimal("5.121420"),
        )
        names = loadgen.identities(count, prefix)
        ChargingStation.objects.bulk_create(
            [ChargingStation(identity=i, secret_hash=station_secret_hash(loadgen.secret_for(i)), location=location)
             for i in names],
            batch_size=1000,
        )
        stations = ChargingStation.objects.filter(identity__in=names).only("pk", "identity")
        evses = [
            EVSE(
                uid=f"{s.identity}-{n}", location=location, station=s, ocpp_evse_id=n,
                evse_id=f"{settings.OCPI_COUNTRY_CODE}*{settings.OCPI_PARTY_ID}*E{s.identity}*{n}".replace("-", ""),
                capabilities=["REMOTE_START_STOP_CAPABLE", "RFID_READER"], physical_reference=str(n),
            )
            for s in stations
            for n in range(1, connectors + 1)
        ]
        EVSE.objects.bulk_create(evses, batch_size=1000)
        evse_pks = EVSE.objects.filter(location=location).values_list("pk", flat=True)
        Connector.objects.bulk_create(
            [Connector(evse_id=pk, connector_id="1", max_electric_power=22000) for pk in evse_pks], batch_size=2000
        )
        Token.objects.create(uid=id_tag, contract_id="NL-CPO-C00000001-X")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daphne_args(args, port: int | str = "P") -> list[str]:
    """The daphne command line. Chargers need: no 24 h socket lifetime (-1), a handshake timeout long enough for a
    reconnect storm (daphne's default is 5 s), a listen backlog for thousands of simultaneous SYNs (Twisted's
    default is 50) and no access log line per handshake (daphne's -v 1 default writes one to stdout)."""
    return [
        "-e", f"tcp:port={port}:interface=127.0.0.1:backlog={args.backlog}",
        "--websocket_timeout", "-1",
        "--websocket_connect_timeout", f"{args.connect_timeout:g}",
        *([] if args.access_log else ["-v", "0"]),
        *args.daphne_arg,
    ]


def daphne_start(*, port: int, env: dict, log_path: Path, daphne: list[str]) -> subprocess.Popen:
    """One daphne on loopback (bench/server.py: daphne's CLI after raising the open-files limit)."""
    cmd = [sys.executable, str(BENCH / "server.py"), *daphne, "cpo.asgi:application"]
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"daphne exited with {proc.returncode}:\n{log_path.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"daphne did not listen on {port}:\n{log_path.read_text()}")


# -- process monitor -------------------------------------------------------------------------------------------------
class Monitor:
    """Samples CPU % (100 = one core) and RSS of the server and of this generator once a second."""

    def __init__(self, server_pid: int, interval: float = 1.0):
        self.server = psutil.Process(server_pid)
        self.generator = psutil.Process()
        self.interval = interval
        # (time, server cpu, server rss MB, gen cpu, 1-min load average)
        self.samples: list[tuple[float, float, float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.server.cpu_percent(None)
        self.generator.cpu_percent(None)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.samples.append((
                    time.monotonic(),
                    self.server.cpu_percent(None),
                    self.server.memory_info().rss / 2**20,
                    self.generator.cpu_percent(None),
                    os.getloadavg()[0],
                ))
            except psutil.Error:
                return

    def window(self, start: float, end: float) -> dict:
        rows = [s for s in self.samples if start < s[0] <= end + self.interval / 2]
        if not rows:
            return {}
        return {
            "server_cpu_mean": round(sum(r[1] for r in rows) / len(rows)),
            "server_cpu_max": round(max(r[1] for r in rows)),
            "server_rss_mb_max": round(max(r[2] for r in rows)),
            "server_rss_mb_end": round(rows[-1][2]),
            "generator_cpu_mean": round(sum(r[3] for r in rows) / len(rows)),
            "loadavg_max": round(max(r[4] for r in rows), 1),
        }


# -- scenarios ---------------------------------------------------------------------------------------------------
@dataclass
class Phase:
    scenario: str
    phase: str
    seconds: float
    wall: tuple[float, float]  # time.time() at start and end (for the server's GC pauses)
    stats: loadgen.Stats
    resources: dict
    notes: dict = field(default_factory=dict)

    def row(self, gc_stats: dict | None = None) -> dict:
        summary = self.stats.summary(actions=True)
        gc_pauses = {}
        if gc_stats is not None:
            long = [(g, s) for t, g, s in gc_stats.get("long", []) if self.wall[0] <= t <= self.wall[1]]
            gc_pauses = {"gc_max_ms": round(max((s for _, s in long), default=0) * 1000),
                         "gc_long": len(long)}
        return {
            "scenario": self.scenario,
            "phase": self.phase,
            "seconds": round(self.seconds, 1),
            "held_end": self.stats.connected_at_end,
            "held_max": self.stats.max_connected,
            "results": summary["results"],
            "msg_per_s": round(summary["results"] / self.seconds, 1) if self.seconds else None,
            **{k: summary[k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "errors", "errors_by_kind")},
            "error_samples": self.stats.error_samples,
            "actions": summary["actions"],
            **self.resources,
            **gc_pauses,
            **self.notes,
        }


class Bench:
    def __init__(self, args, url: str, monitor: Monitor):
        self.args = args
        self.monitor = monitor
        self.settings = loadgen.Settings(
            url=url, connectors=args.connectors, id_tag=args.id_tag, call_timeout=args.call_timeout,
            meter_interval=args.meter_interval,
        )
        self.fleet = [loadgen.Charger(i, self.settings, loadgen.Stats()) for i in loadgen.identities(args.chargers)]
        self.phases: list[Phase] = []

    def measure_into(self, stats: loadgen.Stats) -> None:
        connected = sum(1 for c in self.fleet if c.is_open)
        stats.connected = connected
        stats.max_connected = connected
        for charger in self.fleet:
            charger.stats = stats

    async def phase(self, scenario: str, name: str, coro_factory, **notes) -> Phase:
        stats = loadgen.Stats()
        self.measure_into(stats)
        start = time.monotonic()
        result = await coro_factory()
        end = time.monotonic()
        stats.connected_at_end = sum(1 for c in self.fleet if c.is_open)
        phase = Phase(scenario, name, end - start, (time.time() - (end - start), time.time()), stats,
                      self.monitor.window(start, end), notes)
        if isinstance(result, dict):
            phase.notes.update(result)
        self.phases.append(phase)
        print(f"  {scenario}/{name}: {end - start:.1f}s, {stats.connected_at_end} held, "
              f"{stats.results()} results, errors {dict(stats.errors)}", flush=True)
        return phase

    async def ensure_connected(self, scenario: str) -> None:
        missing = [c for c in self.fleet if not c.is_open]
        if not missing:
            return

        async def connect() -> dict:
            took = await loadgen.ramp(missing, rate=self.args.ramp, deadline=time.monotonic() + 600, retry=True)
            return {"booted": sum(1 for c in missing if c.is_open), "of": len(missing), "all_booted_s": round(took, 1)}

        await self.phase(scenario, "connect", connect)

    async def scenario_a(self) -> None:
        missing = [c for c in self.fleet if not c.is_open]

        async def ramp() -> dict:
            took = await loadgen.ramp(missing, rate=self.args.ramp, deadline=time.monotonic() + 600)
            return {"booted": sum(1 for c in missing if c.is_open), "of": len(missing), "all_booted_s": round(took, 1)}

        await self.phase("a", f"ramp {self.args.ramp:g}/s", ramp)
        await self.phase(
            "a", "hold",
            lambda: loadgen.hold(self.fleet, seconds=self.args.hold, heartbeat_interval=self.args.heartbeat,
                                 charging_share=self.args.charging),
        )

    async def scenario_b(self) -> None:
        await self.ensure_connected("b")

        async def run() -> dict:
            sent = await loadgen.steady(self.fleet, rate=self.args.rate, seconds=self.args.steady_seconds)
            return {"calls_started": sent, "target_rate": self.args.rate}

        await self.phase("b", f"steady {self.args.rate:g}/s", run)

    async def scenario_c(self) -> None:
        await self.ensure_connected("c")
        for charger in self.fleet:  # a network cut: no closing handshake, the server finds out from TCP
            charger.abort()
        await asyncio.sleep(0.2)

        async def storm() -> dict:
            deadline = time.monotonic() + self.args.storm_timeout
            took = await loadgen.ramp(self.fleet, rate=0, deadline=deadline, retry=True)
            booted = sum(1 for c in self.fleet if c.is_open)
            return {"booted": booted, "of": len(self.fleet), "all_booted_s": round(took, 1) if booted == len(
                self.fleet) else None}

        await self.phase("c", "storm", storm)

    async def run(self) -> None:
        for scenario in self.args.scenarios:
            print(f"scenario {scenario}", flush=True)
            await getattr(self, f"scenario_{scenario}")()
        await loadgen.close_all(self.fleet)


# -- report ----------------------------------------------------------------------------------------------------------
def fmt(value) -> str:
    return "-" if value is None else str(value)


def tables(rows: list[dict]) -> str:
    out = [
        "| scenario | phase | s | held (end/max) | booted | CALLRESULTs | msg/s | p50 ms | p95 ms | p99 ms | max ms "
        "| errors | server CPU % mean/max | server RSS MB max | max GC pause ms (pauses >= 20 ms) "
        "| generator CPU % | load avg max |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        booted = f"{r['booted']}/{r['of']} in {fmt(r.get('all_booted_s'))} s" if "booted" in r else ""
        errors = str(r["errors"]) + (f" {r['errors_by_kind']}" if r["errors"] else "")
        out.append(
            f"| {r['scenario']} | {r['phase']} | {r['seconds']} | {r['held_end']}/{r['held_max']} | {booted} "
            f"| {r['results']} | {r['msg_per_s']} | {fmt(r['p50_ms'])} | {fmt(r['p95_ms'])} | {fmt(r['p99_ms'])} "
            f"| {fmt(r['max_ms'])} | {errors} | {fmt(r.get('server_cpu_mean'))}/{fmt(r.get('server_cpu_max'))} "
            f"| {fmt(r.get('server_rss_mb_max'))} | {fmt(r.get('gc_max_ms'))} ({fmt(r.get('gc_long'))}) "
            f"| {fmt(r.get('generator_cpu_mean'))} | {fmt(r.get('loadavg_max'))} |"
        )
    out += ["", "Per action (CALL -> CALLRESULT):", "",
            "| scenario | phase | action | n | p50 ms | p95 ms | p99 ms | max ms |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        for action, a in r["actions"].items():
            out.append(f"| {r['scenario']} | {r['phase']} | {action} | {a['n']} | {a['p50_ms']} | {a['p95_ms']} "
                       f"| {a['p99_ms']} | {a['max_ms']} |")
    samples = [(r["scenario"], r["phase"], k, v) for r in rows for k, v in r["error_samples"].items()]
    if samples:
        out += ["", "First error of each kind:", ""] + [f"- {s}/{p} {k}: `{v}`" for s, p, k, v in samples]
    return "\n".join(out)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.node()}: {cpu}, {psutil.cpu_count()} logical CPUs, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def source_revision() -> str:
    """The commit the server ran, and whether the working tree differed from it (others edit the same checkout)."""
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    dirty = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
             if not line[3:].startswith("bench/")]
    return git("rev-parse", "--short", "HEAD") + (f" + uncommitted changes in {len(dirty)} files" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="abc", help="which scenarios, in order: any of a, b, c")
    parser.add_argument("--chargers", type=int, default=2000, help="fleet size N")
    parser.add_argument("--connectors", type=int, default=2, help="connectors (EVSEs) per charger")
    parser.add_argument("--ramp", type=float, default=100, help="connections started per second while ramping")
    parser.add_argument("--hold", type=float, default=120, help="a: seconds to hold the fleet after the ramp")
    parser.add_argument("--heartbeat", type=float, default=60, help="a: heartbeat interval, seconds")
    parser.add_argument("--meter-interval", type=float, default=10, help="a: MeterValues interval while charging")
    parser.add_argument("--charging", type=float, default=0.25, help="a: share of chargers in a transaction")
    parser.add_argument("--rate", type=float, default=200, help="b: CALLs per second")
    parser.add_argument("--steady-seconds", type=float, default=60, help="b: duration")
    parser.add_argument("--storm-timeout", type=float, default=180, help="c: give up after this many seconds")
    parser.add_argument("--call-timeout", type=float, default=30, help="a charger's wait for a CALLRESULT")
    parser.add_argument("--id-tag", default="BENCH-TAG")
    parser.add_argument("--db-name", default="cpo_bench", help="dropped and recreated; must contain 'bench'")
    parser.add_argument("--channel-prefix", default=os.environ.get("CHANNEL_LAYER_PREFIX", "bench"))
    server = parser.add_argument_group("server settings (defaults: the best measured, see bench/RESULTS.md)")
    server.add_argument("--db-threads", type=int, default=SERVER_DEFAULTS["db_threads"],
                        help="OCPP_DB_THREADS: threads (and database connections) for the gateway's database work; "
                             "0 = leave the environment / settings default")
    server.add_argument("--message-log", choices=["0", "1"], default=None,
                        help="OCPP_MESSAGE_LOG_ENABLED (default: the environment / settings default, on)")
    server.add_argument("--gc-freeze", type=int, default=SERVER_DEFAULTS["gc_freeze"],
                        help="gc.freeze() after every N accepted websocket connections (0 = off, as shipped)")
    server.add_argument("--backlog", type=int, default=SERVER_DEFAULTS["backlog"],
                        help="listen backlog (Twisted's default is 50; the kernel caps it at net.core.somaxconn)")
    server.add_argument("--connect-timeout", type=float, default=SERVER_DEFAULTS["connect_timeout"],
                        help="daphne --websocket_connect_timeout (daphne's default is 5)")
    server.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=SERVER_DEFAULTS["access_log"],
                        help="daphne's access log (one line per handshake on stdout; daphne's default is on)")
    server.add_argument("--daphne-arg", action="append", default=[], help="extra daphne argument (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    args.scenarios = [s for s in args.scenarios if s in "abc"]

    fd_limit = loadgen.raise_fd_limit()
    if fd_limit < args.chargers + 100:
        raise SystemExit(f"open-files limit {fd_limit} is below {args.chargers} chargers; raise the hard limit")
    database_url = bench_database_url(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL, args.db_name)
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL

    started = datetime.now(UTC)
    t0 = time.monotonic()
    database_recreate(database_url)
    django_setup(database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    t1 = time.monotonic()
    stations_create(count=args.chargers, connectors=args.connectors, prefix="BENCH-", id_tag=args.id_tag)
    from django.db import connections

    connections.close_all()
    print(f"database {args.db_name}: migrated in {t1 - t0:.1f}s, {args.chargers} stations in "
          f"{time.monotonic() - t1:.1f}s", flush=True)

    port = free_port()
    env = os.environ.copy()
    env.update(
        DATABASE_URL=database_url, REDIS_URL=redis_url, CHANNEL_LAYER_PREFIX=args.channel_prefix,
        CELERY_QUEUE=f"{args.channel_prefix}-celery", DEBUG=env.get("DEBUG", "1"),
        LOG_LEVEL=env.get("LOG_LEVEL", "WARNING"), GC_FREEZE_EVERY_CONNECTIONS=str(args.gc_freeze),
    )
    if args.db_threads:
        env["OCPP_DB_THREADS"] = str(args.db_threads)
    if args.message_log is not None:
        env["OCPP_MESSAGE_LOG_ENABLED"] = args.message_log
    log_path = ROOT / "var" / f"bench-daphne-{port}.log"
    log_path.parent.mkdir(exist_ok=True)
    gc_path = ROOT / "var" / f"bench-gc-{port}.json"
    env["BENCH_GC_STATS"] = str(gc_path)
    load_start = os.getloadavg()
    server = daphne_start(port=port, env=env, log_path=log_path, daphne=daphne_args(args, port))
    monitor = Monitor(server.pid)
    monitor.start()
    print(f"daphne pid {server.pid} on 127.0.0.1:{port}, log {log_path}", flush=True)
    bench = Bench(args, f"ws://127.0.0.1:{port}/ocpp/", monitor)
    try:
        asyncio.run(bench.run())
    finally:
        monitor.stop()
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()

    load_end = os.getloadavg()
    try:
        gc_stats = json.loads(gc_path.read_text())
    except (OSError, ValueError):
        gc_stats = None
    rows = [p.row(gc_stats) for p in bench.phases]
    settings_line = {k: v for k, v in vars(args).items() if k not in ("json",)}
    settings_line["json"] = str(args.json) if args.json else None
    print()
    print(f"date: {started.isoformat(timespec='seconds')}")
    print(f"machine: {machine()}")
    print(f"source: {source_revision()}")
    print(f"settings: {json.dumps(settings_line, default=str)}")
    print(f"server: one daphne `bench/server.py {' '.join(daphne_args(args))} cpo.asgi:application`, "
          f"DEBUG={env['DEBUG']}, LOG_LEVEL={env['LOG_LEVEL']}, "
          f"OCPP_DB_THREADS={env.get('OCPP_DB_THREADS', '(settings default)')}, "
          f"OCPP_MESSAGE_LOG_ENABLED={env.get('OCPP_MESSAGE_LOG_ENABLED', '(settings default)')}, "
          f"gc.freeze every {args.gc_freeze or '-'} connections, "
          f"channel layer Redis {redis_url} prefix "
          f"{args.channel_prefix}, database {args.db_name}; generator and server share this machine's cores")
    print(f"load average (1/5/15 min): {' '.join(f'{x:.1f}' for x in load_start)} at start, "
          f"{' '.join(f'{x:.1f}' for x in load_end)} at end")
    if gc_stats:
        print(f"server GC: collections per generation {gc_stats['collections']}, seconds {gc_stats['total_s']}, "
              f"objects frozen at the end {gc_stats.get('frozen')}")
    print()
    print(tables(rows))
    if args.json:
        args.json.write_text(json.dumps({"date": started.isoformat(), "machine": machine(), "settings": settings_line,
                                         "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
