"""The OCPP gateway benchmark, start to finish, in one command: `make bench` (or `python bench/run.py --help`).

Every figure of the platform is measured in the same run, on the same core and with the same load as a bare
`ocpp`-library central system on `websockets` (bench/bare.py: schema validation on, HTTP Basic checked, no
database), and given as a ratio to it: absolute numbers drift on a shared machine, ratios much less.

The platform runs as `make run` starts it (the gateway's and the worker's command lines are read from the
Makefile's `run` recipe) in production settings: DEBUG=0, PostgreSQL (a dedicated database, dropped and migrated
on every run, with the stations created in bulk), Redis, and a Celery worker. The server under test is pinned to
CPU 0 and the load generator (this process), the worker and the loopback EMSP to the other CPUs, when taskset and
two CPUs are there. Every process of ours runs with a raised open-files limit.

Scenarios (--scenarios, default all, in this order):
  t  throughput: --fleet chargers; open-loop steps of --steps CALL/s for --step-seconds each, in the realistic
     mix (Heartbeat, StatusNotification, MeterValues with 4 samples, Authorize/Start/Stop), the bare library and
     the platform alternating step by step. Achieved CALL/s, p50/p99, server CPU (cores) and CPU per CALL.
     Then, with --profile-rate, the platform at that rate under py-spy: its top functions by CPU.
  h  held: --chargers chargers ramped at --ramp per second, held --hold seconds with the busy-hour mix
     (heartbeat every --heartbeat s, a --charging share charging with MeterValues every --meter-interval s,
     sessions of --session-seconds on average). p99, errors, RSS per connection.
  s  storm: the held fleet's connections are cut at once (no closing handshake) and every charger reconnects at
     t=0, retrying as firmware does (after Retry-After on a 503, else 1-5 s). Time until all booted, HTTP 5xx,
     503 with Retry-After, handshake timeouts and failures, dropped sockets, connect p50/p99.
  x  scale-out (platform only): the throughput steps (--scale-steps) against one gateway process behind HAProxy
     (`balance leastconn`, as deploy/haproxy.cfg), then against two (the second on the other CPU), the same
     fleet reconnected so that it spreads; then a third process is started and put into rotation through
     HAProxy's runtime API while the two-process fleet stays connected, and --fleet/2 new chargers connect:
     where they land, and whether any connected charger was disturbed. Needs haproxy.
  e  end to end (platform only): a loopback EMSP registered through `manage.py ocpi_invite` and the OCPI
     credentials handshake pushes one token per charger; --e2e-chargers chargers charge with them and stop
     --stops-per-s sessions per second for --e2e-seconds while --status-per-s connectors change status.
     StopTransaction -> CDR received by the EMSP, and StatusNotification -> EVSE status PATCH received, p50/p99.

--quick is a smoke test of the harness (300 chargers, short phases, about two minutes); the default measures at
the issue's scale (1,000-charger throughput steps, 10,000 held and storming).

Environment: DATABASE_URL names the PostgreSQL server (its database name is ignored: the benchmark uses --db-name,
which must contain "bench" because it is dropped); REDIS_URL the Redis (only keys under --prefix are touched).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform as platform_module
import random
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(ROOT))

import balancer  # noqa: E402
import loadgen  # noqa: E402
import servers  # noqa: E402
from loadgen import Charger, Settings, Stats, percentile  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/cpo_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
BARE, PLATFORM = "bare", "platform"

PRESETS = {
    "full": dict(
        chargers=10_000,
        fleet=1_000,
        steps="200,300,500,1000,1500",
        step_seconds=30,
        ramp=500,
        hold=120,
        heartbeat=300,
        meter_interval=60,
        charging=0.3,
        session_seconds=600,
        storm_timeout=180,
        e2e_chargers=1_000,
        stops_per_s=50,
        e2e_seconds=60,
        status_per_s=10,
        e2e_drain=90,
        profile_rate=500,
        profile_seconds=30,
        scale_steps="300,600,900,1200,1800",
    ),
    "quick": dict(
        chargers=300,
        fleet=300,
        steps="100,300",
        step_seconds=6,
        ramp=300,
        hold=10,
        heartbeat=20,
        meter_interval=10,
        charging=0.3,
        session_seconds=20,
        storm_timeout=60,
        e2e_chargers=100,
        stops_per_s=10,
        e2e_seconds=10,
        status_per_s=5,
        e2e_drain=30,
        profile_rate=200,
        profile_seconds=6,
        scale_steps="100,300",
    ),
}

TARGETS = {
    "throughput_calls": 1000,
    "p99_ms": 100,
    "cpu_ms_per_call": 1.0,
    "held_p99_ms": 100,
    "rss_kb": 50,
    "storm_s": 60,
    "cdr_p99_s": 2,
    "patch_p99_s": 5,
    "scale_out_ratio": 1.8,
}


# -- measuring one phase -------------------------------------------------------------------------------------------
@dataclass
class Phase:
    """One measured stretch against one server: what the chargers saw (Stats) and what the server cost."""

    scenario: str
    server: str
    name: str
    stats: Stats
    seconds: float = 0.0
    cpu_s: float | None = None  # server CPU seconds in the window
    worker_cpu_s: float | None = None
    generator_cpu_s: float | None = None
    load: tuple[float, float] = (0.0, 0.0)  # 1-min load average at start and end
    notes: dict = field(default_factory=dict)

    def summary(self) -> dict:
        s = self.stats.summary(actions=True)
        out = {
            "scenario": self.scenario,
            "server": self.server,
            "phase": self.name,
            "seconds": round(self.seconds, 1),
            **s,
            "error_samples": self.stats.error_samples,
            "handshake_statuses": dict(self.stats.handshake_statuses),
            "boot_statuses": dict(self.stats.boot_statuses),
            "cpu_s": self.cpu_s,
            "worker_cpu_s": self.worker_cpu_s,
            "generator_cpu_s": self.generator_cpu_s,
            "load": self.load,
            **self.notes,
        }
        return out


class Meter:
    """CPU seconds of the server, the worker and this generator between start() and stop()."""

    def __init__(self, server: servers.Proc, worker: servers.Proc | None = None):
        self.server = server
        self.worker = worker
        self.me = psutil.Process()

    def snapshot(self) -> tuple[float, float | None, float, float, float]:
        gen = self.me.cpu_times()
        return (
            self.server.cpu_seconds(),
            self.worker.cpu_seconds(children=True) if self.worker else None,
            gen.user + gen.system,
            time.perf_counter(),
            os.getloadavg()[0],
        )

    def start(self) -> None:
        self.begin = self.snapshot()

    def stop(self) -> None:
        self.end = self.snapshot()

    def fill(self, phase: Phase) -> Phase:
        b, e = self.begin, self.end
        phase.seconds = e[3] - b[3]
        phase.cpu_s = round(e[0] - b[0], 2)
        phase.worker_cpu_s = round(e[1] - b[1], 2) if b[1] is not None else None
        phase.generator_cpu_s = round(e[2] - b[2], 2)
        phase.load = (round(b[4], 2), round(e[4], 2))
        return phase


class ProcGroup:
    """Several gateway processes measured as one server (their CPU seconds summed)."""

    def __init__(self, procs: list[servers.Proc]):
        self.procs = procs

    def cpu_seconds(self, children: bool = False) -> float:
        return sum(p.cpu_seconds(children) for p in self.procs)


def chargers_for(url: str, names: list[str], args, stats: Stats) -> list[Charger]:
    settings = Settings(
        url=url,
        connectors=2,
        id_tag=args.id_tag,
        call_timeout=args.call_timeout,
        open_timeout=args.open_timeout,
        meter_interval=args.meter_interval,
    )
    return [Charger(identity, settings, stats) for identity in names]


def fleet_of(url: str, count: int, args, stats: Stats) -> list[Charger]:
    return chargers_for(url, loadgen.identities(count), args, stats)


def measure_into(fleet: list[Charger], stats: Stats) -> None:
    stats.connected = sum(1 for c in fleet if c.is_open)
    stats.max_connected = stats.connected
    for charger in fleet:
        charger.stats = stats


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


# -- the run -------------------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args, env: dict, *, server_cpus: list[str] | None, helper_cpus: set[int] | None):
        self.args = args
        self.env = env  # the platform's environment, without its port
        self.phases: list[Phase] = []
        self.profile: dict | None = None
        self.logs: list[dict] = []
        self.commands: dict = {}
        self.limits: dict = {}
        # Decided once, before this process pinned itself to the helpers' CPUs: asked again here, `pinning` saw
        # only those, pinned nothing, and every server inherited the generator's CPU (all runs before 2026-12-03).
        self.server_cpus, self.helper_cpus = server_cpus, helper_cpus

    # -- servers
    def start_platform(self, *, worker: bool = True) -> tuple[servers.Proc, servers.Proc | None, str]:
        # Each scenario starts with an empty broker: scenarios run without a worker leave the tasks their boots and
        # sessions queued (thousands after a storm), which the end-to-end scenario's worker would inherit.
        deleted = servers.redis_keys_delete(self.env["REDIS_URL"], [self.args.prefix])
        if deleted:
            log(f"{deleted} Redis keys of the previous scenario deleted (its queued tasks among them)")
        port = servers.free_port()
        env = {**self.env, "OCPI_BASE_URL": f"http://127.0.0.1:{port}"}
        gateway, worker_proc = servers.platform_start(
            env=env,
            port=port,
            cpus=self.server_cpus,
            helper_cpus=self.helper_cpus,
            worker=worker,
            gateway_server=self.args.gateway_server,
        )
        self.commands[PLATFORM] = gateway.command
        if worker_proc is not None:
            self.commands["worker"] = worker_proc.command
        self.limits[PLATFORM] = gateway.open_files_limit()
        log(
            f"platform gateway pid {gateway.popen.pid} on :{port}"
            + (f", worker pid {worker_proc.popen.pid}" if worker_proc else "")
        )
        return gateway, worker_proc, f"ws://127.0.0.1:{port}/ocpp/"

    def start_bare(self) -> tuple[servers.Proc, None, str]:
        port = servers.free_port()
        proc = servers.bare_start(port=port, cpus=self.server_cpus)
        self.commands[BARE] = proc.command
        self.limits[BARE] = proc.open_files_limit()
        log(f"bare library pid {proc.popen.pid} on :{port}")
        return proc, None, f"ws://127.0.0.1:{port}/ocpp/"

    def start(self, server: str, **kwargs):
        return self.start_platform(**kwargs) if server == PLATFORM else self.start_bare()

    def stop(self, *procs) -> None:
        """Stop servers and keep what their logs say went wrong."""
        for proc in procs:
            if proc is not None:
                proc.stop()
                self.logs.append({"process": proc.name, **servers.log_summary(proc.log_path)})

    async def connect(self, fleet: list[Charger], server: str, scenario: str, rate: float) -> Phase:
        stats = Stats()
        measure_into(fleet, stats)
        started = time.monotonic()
        took = await loadgen.ramp([c for c in fleet if not c.is_open], rate=rate, deadline=started + 600, retry=True)
        phase = Phase(
            scenario,
            server,
            "connect",
            stats,
            seconds=took,
            notes={"booted": sum(c.is_open for c in fleet), "of": len(fleet), "all_booted_s": round(took, 1)},
        )
        log(
            f"{scenario}/{server}: {phase.notes['booted']}/{len(fleet)} connected in {took:.1f}s, "
            f"errors {dict(stats.errors)}"
        )
        return phase

    # -- t: throughput
    async def throughput(self) -> None:
        args = self.args
        procs, fleets = {}, {}
        try:
            for server in args.servers:
                proc, worker, url = self.start(server)
                procs[server] = (proc, worker)
                fleets[server] = fleet_of(url, args.fleet, args, Stats())
            for server in args.servers:
                await self.connect(fleets[server], server, "throughput", args.ramp)
                await loadgen.prime(fleets[server], share=0.7, rate=args.ramp)
            await asyncio.sleep(3)
            for rate in args.steps:
                for server in args.servers:
                    phase = await self.offered(fleets[server], procs[server], server, rate, args.step_seconds)
                    self.phases.append(phase)
                    await asyncio.sleep(2)
            if args.profile_rate and PLATFORM in procs:
                await self.profiled(fleets[PLATFORM], procs[PLATFORM], args.profile_rate, args.profile_seconds)
        finally:
            for fleet in fleets.values():
                await loadgen.close_all(fleet)
            for proc, worker in procs.values():
                self.stop(proc, worker)

    async def offered(self, fleet, procs, server: str, rate: float, seconds: float, name: str | None = None) -> Phase:
        stats = Stats()
        measure_into(fleet, stats)
        meter = Meter(*procs)
        meter.start()
        result = await loadgen.offered_load(fleet, rate=rate, seconds=seconds, on_window_end=meter.stop)
        phase = meter.fill(Phase("throughput", server, name or f"{rate:g}/s", stats))
        start, end = result["window"]
        achieved = stats.received_between(start, end) / (end - start)
        phase.notes.update(
            offered=rate,
            achieved=round(achieved, 1),
            received_in_window=round(achieved * (end - start)),
            calls_sent=result["calls_sent"],
            calls_unsent=result["calls_unsent"],
            held_end=sum(c.is_open for c in fleet),
        )
        s = stats.summary()
        log(
            f"throughput/{server} {rate:g}/s: achieved {achieved:.0f}/s, p50 {s['p50_ms']} p99 {s['p99_ms']} ms, "
            f"server {phase.cpu_s / phase.seconds:.2f} cores, errors {dict(stats.errors)}, unsent "
            f"{result['calls_unsent']}"
        )
        return phase

    async def profiled(self, fleet, procs, rate: float, seconds: float) -> None:
        """The platform at `rate` under py-spy (GIL-holding samples, 100 Hz, non-blocking): its top functions."""
        py_spy = shutil.which("py-spy") or (str(servers.BIN / "py-spy") if (servers.BIN / "py-spy").exists() else None)
        if py_spy is None:
            self.profile = {"error": "py-spy is not installed (pip install py-spy)"}
            log("profile: py-spy not installed, skipped")
            return
        out = servers.VAR / "profile.txt"
        command = [
            py_spy,
            "record",
            "--pid",
            str(procs[0].popen.pid),
            "--rate",
            "100",
            "--format",
            "raw",
            "--gil",
            "--nonblocking",
            "--duration",
            str(int(seconds)),
            "--output",
            str(out),
        ]
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        await asyncio.sleep(1)
        phase = await self.offered(fleet, procs, PLATFORM, rate, seconds - 1, name=f"{rate:g}/s under py-spy")
        phase.scenario = "profile"
        self.phases.append(phase)
        try:
            _, err = await asyncio.to_thread(spy.communicate, timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            err = b"timeout"
        if not out.exists():
            self.profile = {"error": f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}"}
            return
        self.profile = profile_summary(out.read_text(), calls=phase.stats.results())
        self.profile["command"] = " ".join(command)

    # -- h and s: held, then storm
    async def held_and_storm(self, held: bool, storm: bool) -> None:
        args = self.args
        for server in args.servers:
            proc, worker, url = self.start(server)
            fleet = fleet_of(url, args.chargers, args, Stats())
            try:
                await asyncio.sleep(1)
                rss_before = proc.rss_mb()
                stats = Stats()
                measure_into(fleet, stats)
                meter = Meter(proc, worker)
                meter.start()
                took = await loadgen.ramp(
                    fleet,
                    rate=args.ramp,
                    deadline=time.monotonic() + args.chargers / max(args.ramp, 1) + 120,
                    retry=True,
                )
                meter.stop()
                booted = sum(c.is_open for c in fleet)
                self.phases.append(
                    meter.fill(
                        Phase(
                            "held",
                            server,
                            f"ramp {args.ramp:g}/s",
                            stats,
                            notes={
                                "booted": booted,
                                "of": len(fleet),
                                "all_booted_s": round(took, 1) if booted == len(fleet) else None,
                                "connect_p99_s": sec(percentile(sorted(stats.connect_times), 99)),
                                "boot_p99_s": sec(percentile(sorted(stats.boot_times), 99)),
                            },
                        )
                    )
                )
                log(f"held/{server}: {booted}/{len(fleet)} booted in {took:.1f}s, errors {dict(stats.errors)}")
                if held and worker is not None:
                    # The hold measures the busy hour, not the tail of the boot wave (the storm measures boots):
                    # the fleet's boot checks (configuration reads, local-list versions) are done first.
                    drained = await asyncio.to_thread(celery_queues_drain, self.env, 600)
                    log(f"held/{server}: boot checks done after {drained:.0f} s")
                if held:
                    stats = Stats()
                    measure_into(fleet, stats)
                    meter.start()
                    await loadgen.busy_hour(
                        fleet,
                        seconds=args.hold,
                        heartbeat_interval=args.heartbeat,
                        charging_share=args.charging,
                        session_seconds=args.session_seconds,
                    )
                    meter.stop()
                    stats.connected_at_end = sum(c.is_open for c in fleet)
                    rss_held = proc.rss_mb()
                    phase = meter.fill(
                        Phase(
                            "held",
                            server,
                            f"hold {args.hold:g}s",
                            stats,
                            notes={
                                "held_end": stats.connected_at_end,
                                "of": len(fleet),
                                "rss_before_mb": round(rss_before),
                                "rss_held_mb": round(rss_held),
                                "rss_kb_per_connection": round(
                                    (rss_held - rss_before) * 1024 / stats.connected_at_end, 1
                                )
                                if stats.connected_at_end
                                else None,
                            },
                        )
                    )
                    self.phases.append(phase)
                    s = stats.summary()
                    log(
                        f"held/{server}: {stats.connected_at_end} held, {s['results']} CALLs, p99 {s['p99_ms']} ms, "
                        f"errors {dict(stats.errors)}, RSS {rss_before:.0f} -> {rss_held:.0f} MB"
                    )
                if storm:
                    await self.storm(fleet, server, proc, worker)
            finally:
                await loadgen.close_all(fleet)
                self.stop(proc, worker)

    async def storm(self, fleet, server, proc, worker) -> None:
        args = self.args
        missing = [c for c in fleet if not c.is_open]
        if missing:
            await loadgen.ramp(missing, rate=args.ramp, deadline=time.monotonic() + 300, retry=True)
        for charger in fleet:  # a network cut: no closing handshake, the server finds out from TCP
            charger.abort()
        await asyncio.sleep(0.5)
        stats = Stats()
        for charger in fleet:
            charger.stats = stats
        meter = Meter(proc, worker)
        meter.start()
        took = await loadgen.ramp(fleet, rate=0, deadline=time.monotonic() + args.storm_timeout, retry=True)
        meter.stop()
        booted = sum(c.is_open for c in fleet)
        phase = meter.fill(
            Phase(
                "storm",
                server,
                f"{len(fleet)} at t=0",
                stats,
                notes={
                    "booted": booted,
                    "of": len(fleet),
                    "all_booted_s": round(took, 1) if booted == len(fleet) else None,
                    "connect_p50_s": sec(percentile(sorted(stats.connect_times), 50)),
                    "connect_p99_s": sec(percentile(sorted(stats.connect_times), 99)),
                    "boot_p99_s": sec(percentile(sorted(stats.boot_times), 99)),
                    "rss_mb": round(proc.rss_mb()),
                },
            )
        )
        self.phases.append(phase)
        log(
            f"storm/{server}: {booted}/{len(fleet)} booted in {took:.1f}s, errors {dict(stats.errors)}, "
            f"refusals {dict(stats.handshake_statuses)}, boots answered {dict(stats.boot_statuses)}"
        )

    # -- e: end to end
    # -- x: scale-out behind HAProxy
    async def scale_out(self) -> None:
        """One gateway, then two, behind the same balancer and the same fleet; then a third added live."""
        args = self.args
        ports = [servers.free_port() for _ in range(3)]
        cpus = sorted(os.sched_getaffinity(0))
        # Process i on CPU i (mod the CPUs): with two CPUs the second gateway shares the generator's CPU, which the
        # report says; the balancer and the worker go with the helpers.
        pin = [[str(cpus[i % len(cpus)])] for i in range(3)] if self.server_cpus else [None, None, None]
        helpers = [str(c) for c in sorted(self.helper_cpus)] if self.helper_cpus else None
        lb = balancer.Balancer(gateways=ports, enabled=1, cpus=helpers)
        log(f"scale-out: HAProxy pid {lb.proc.popen.pid} on :{lb.port}, gateways on {ports}")
        gateways: list[servers.Proc] = []
        worker = None
        names = loadgen.identities(args.fleet + args.fleet // 2)
        fleet_names, extra_names = names[: args.fleet], names[args.fleet :]
        fleet: list[Charger] = []
        try:
            for count in (1, 2):
                while len(gateways) < count:
                    i = len(gateways)
                    env = {**self.env, "OCPI_BASE_URL": f"http://127.0.0.1:{ports[0]}"}
                    gateway, started_worker = servers.platform_start(
                        env=env,
                        port=ports[i],
                        cpus=pin[i],
                        helper_cpus=self.helper_cpus,
                        worker=worker is None,
                        name=f"scaleout{i + 1}",
                    )
                    worker = worker or started_worker
                    gateways.append(gateway)
                    lb.enable(f"g{i + 1}")
                    self.commands[f"gateway {i + 1}"] = gateway.command
                label = "1 process" if count == 1 else f"{count} processes"
                await loadgen.close_all(fleet)
                fleet = chargers_for(lb.url, fleet_names, args, Stats())
                await self.connect(fleet, label, "scale-out", args.ramp)
                await loadgen.prime(fleet, share=0.7, rate=args.ramp)
                spread = lb.sessions()
                log(f"scale-out/{label}: connections per gateway {spread}")
                await asyncio.sleep(2)
                for rate in args.scale_steps:
                    phase = await self.offered(fleet, (ProcGroup(gateways), worker), label, rate, args.step_seconds)
                    phase.scenario = "scale-out"
                    phase.notes["spread"] = spread
                    phase.notes["processes"] = count
                    self.phases.append(phase)
                    await asyncio.sleep(2)
            # A third process joins while the two-process fleet stays connected.
            env = {**self.env, "OCPI_BASE_URL": f"http://127.0.0.1:{ports[0]}"}
            third, _ = servers.platform_start(
                env=env, port=ports[2], cpus=pin[2], helper_cpus=self.helper_cpus, worker=False, name="scaleout3"
            )
            gateways.append(third)
            before = lb.sessions()
            lb.enable("g3")
            stats = Stats()
            extra = chargers_for(lb.url, extra_names, args, stats)
            measure_into(fleet, stats)
            took = await loadgen.ramp(extra, rate=args.ramp, deadline=time.monotonic() + 120, retry=True)
            after = lb.sessions()
            still_open = sum(c.is_open for c in fleet)
            check = await self.offered(fleet + extra, (ProcGroup(gateways), worker), "3 processes", 100, 5)
            check.scenario = "scale-out-join"
            check.notes.update(
                before=before,
                after=after,
                joined=sum(c.is_open for c in extra),
                of=len(extra),
                join_s=round(took, 1),
                fleet_open=still_open,
                fleet_of=len(fleet),
            )
            self.phases.append(check)
            log(
                f"scale-out: third process joined; new chargers {check.notes['joined']}/{len(extra)} in {took:.1f}s, "
                f"sessions {before} -> {after}; earlier fleet still open {still_open}/{len(fleet)}"
            )
            await loadgen.close_all(extra)
        finally:
            await loadgen.close_all(fleet)
            for gateway in gateways:
                self.stop(gateway)
            self.stop(worker)
            lb.stop()

    async def end_to_end(self) -> None:
        args = self.args
        gateway, worker, url = self.start_platform()
        emsp = servers.emsp_start(cpus=self.helper_cpus)
        fleet = fleet_of(url, args.e2e_chargers, args, Stats())
        try:
            await self.connect(fleet, PLATFORM, "e2e", args.ramp)
            platform_url = url.replace("ws://", "http://").removesuffix("/ocpp/")
            env = {**self.env, "OCPI_BASE_URL": platform_url}
            await asyncio.to_thread(servers.emsp_register, emsp=emsp, platform_url=platform_url, env=env)
            for charger in fleet:
                charger.id_tag = "E2E-" + charger.identity
            await asyncio.to_thread(servers.emsp_tokens_push, emsp=emsp, uids=[c.id_tag for c in fleet])
            settled = await asyncio.to_thread(emsp_settle, emsp, 120)
            log(f"e2e: EMSP registered, {len(fleet)} tokens pushed, {settled} pushes after registration settled")
            # The fleet's boots queued their checks (configuration, local list: a charger round trip each); the
            # target is about charging in steady state, so they finish first (the storm scenario measures boots).
            drained = await asyncio.to_thread(celery_queues_drain, self.env, 600)
            log(f"e2e: boot checks and registration work done after {drained:.0f} s")
            since = settled + len(await asyncio.to_thread(emsp.log, settled))
            await self.e2e_run(fleet, gateway, worker, emsp, since)
        finally:
            await loadgen.close_all(fleet)
            self.stop(gateway, worker, emsp.proc)

    async def e2e_run(self, fleet, gateway, worker, emsp, since: int) -> None:
        """Sessions on every charger, started evenly over one session length (chargers / stops per second), then
        `stops_per_s` stops per second, oldest session first, for e2e_seconds; a stopped charger starts again
        after 0.5-2 s. Meanwhile `status_per_s` connectors 2 change status (each at most every 30 s)."""
        args = self.args
        stats = Stats()
        measure_into(fleet, stats)
        stops: list[tuple[str, str, float]] = []  # (token uid, stop timestamp, monotonic)
        starts: list[tuple[str, float]] = []
        toggles: list[tuple[str, str, float]] = []  # (evse uid, OCPI status, monotonic)
        charging: list[Charger] = []  # FIFO by start
        stop_events: dict[str, asyncio.Event] = {}
        measuring = {"on": False}

        def sent(charger, action, payload, _perf):
            if not measuring["on"]:
                return
            now = time.monotonic()
            if action == "StopTransaction":
                stops.append((charger.id_tag, payload["timestamp"], now))
            elif action == "StartTransaction":
                starts.append((charger.id_tag, now))
            elif action == "StatusNotification" and payload["connectorId"] == 2:
                status = {"Available": "AVAILABLE", "Unavailable": "INOPERATIVE"}[payload["status"]]
                toggles.append((f"{charger.identity}-2", status, now))

        for charger in fleet:
            charger.on_sent = sent
        session_seconds = len(fleet) / args.stops_per_s
        end = time.monotonic() + session_seconds + args.e2e_seconds

        async def sessions(charger: Charger, first_delay: float) -> None:
            await asyncio.sleep(first_delay)
            while time.monotonic() < end and charger.is_open:
                try:
                    await charger.start_transaction()
                    if charger.transaction_id is None:
                        return
                    event = stop_events[charger.identity] = asyncio.Event()
                    charging.append(charger)
                    while not event.is_set():
                        try:
                            await asyncio.wait_for(event.wait(), args.e2e_meter_interval)
                        except TimeoutError:
                            await charger.meter_values()
                    await charger.stop_transaction()
                    await asyncio.sleep(random.uniform(0.5, 2))
                except loadgen.CallFailed:
                    return

        async def stopper() -> None:
            await asyncio.sleep(session_seconds)
            measuring["on"] = True
            begin = time.monotonic()
            done = 0
            while time.monotonic() < end:
                due = int((time.monotonic() - begin) * args.stops_per_s) - done
                for _ in range(due):
                    if not charging:
                        break
                    charger = charging.pop(0)
                    stop_events[charger.identity].set()
                    done += 1
                await asyncio.sleep(0.005)

        async def toggler() -> None:
            await asyncio.sleep(session_seconds)
            begin = time.monotonic()
            last: dict[str, float] = {}
            done = 0
            while time.monotonic() < end:
                due = int((time.monotonic() - begin) * args.status_per_s) - done
                for _ in range(due):
                    charger = random.choice(fleet)
                    if time.monotonic() - last.get(charger.identity, -1e9) < 30:
                        continue
                    last[charger.identity] = time.monotonic()
                    asyncio.create_task(quiet(charger.toggle_availability(2)))
                    done += 1
                await asyncio.sleep(0.01)

        queue_depths: list[int] = []

        async def queue_sampler() -> None:
            import redis

            client = redis.Redis.from_url(self.env["REDIS_URL"])
            try:
                while True:
                    queue_depths.append(await asyncio.to_thread(celery_queue_depth, client, self.env))
                    await asyncio.sleep(1)
            finally:
                client.close()

        sampler = asyncio.create_task(queue_sampler())
        meter = Meter(gateway, worker)
        meter.start()
        tasks = [asyncio.create_task(sessions(c, i / args.stops_per_s)) for i, c in enumerate(fleet)]
        await asyncio.gather(stopper(), toggler())
        depth_at_end = queue_depths[-1] if queue_depths else None
        measuring["on"] = False
        for charger in list(charging):  # the rest stop unmeasured, after the window
            stop_events[charger.identity].set()
        meter.stop()
        log(f"e2e: {len(stops)} stops and {len(toggles)} status changes sent; waiting for the EMSP to receive them")
        deadline = time.monotonic() + args.e2e_drain
        records: list[dict] = []
        while True:
            records += await asyncio.to_thread(emsp.log, since + len(records))
            result = e2e_match(records, stops, starts, toggles)
            if (
                result["cdr"]["n"] >= len(stops) and result["patch"]["n"] >= len(toggles)
            ) or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        await asyncio.wait(tasks, timeout=args.call_timeout + 5)
        sampler.cancel()
        result["stops_per_s_achieved"] = round(len(stops) / args.e2e_seconds, 1)
        result["celery_queue"] = {
            "max": max(queue_depths, default=None),
            "at_window_end": depth_at_end,
            "at_drain_end": queue_depths[-1] if queue_depths else None,
        }
        phase = meter.fill(Phase("e2e", PLATFORM, f"{args.stops_per_s:g} stops/s", stats, notes=result))
        self.phases.append(phase)
        log(
            f"e2e: CDRs {result['cdr']['n']}/{len(stops)} p99 {result['cdr']['p99_s']} s; PATCHes "
            f"{result['patch']['n']}/{len(toggles)} p99 {result['patch']['p99_s']} s"
        )

    async def run(self) -> None:
        scenarios = self.args.scenarios
        if "t" in scenarios:
            log("scenario t: throughput")
            await self.throughput()
        if "h" in scenarios or "s" in scenarios:
            log("scenario h/s: held, storm")
            await self.held_and_storm("h" in scenarios, "s" in scenarios)
        if "x" in scenarios and PLATFORM in self.args.servers:
            log("scenario x: scale-out")
            await self.scale_out()
        if "e" in scenarios and PLATFORM in self.args.servers:
            log("scenario e: end to end")
            await self.end_to_end()


async def quiet(coro) -> None:
    try:
        await coro
    except loadgen.CallFailed:
        pass


def sec(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 2)


def celery_queue_depth(client, env: dict) -> int:
    """Tasks waiting in the platform's Celery queues (settings.CELERY_TASK_QUEUES: bulk and urgent), in one snapshot."""
    with client.pipeline() as pipe:
        for queue in (env["CELERY_QUEUE"], env["CELERY_QUEUE"] + "-urgent"):
            pipe.llen(queue)
        return sum(pipe.execute())


def celery_queues_drain(env: dict, timeout: float) -> float:
    """Wait until the platform's Celery queues (settings.CELERY_TASK_QUEUES) stay empty for 5 s; the seconds it
    took."""
    import redis

    client = redis.Redis.from_url(env["REDIS_URL"])
    began = time.monotonic()
    empty_since = None
    try:
        while time.monotonic() - began < timeout:
            if celery_queue_depth(client, env) == 0:
                empty_since = empty_since or time.monotonic()
                if time.monotonic() - empty_since >= 5:
                    break
            else:
                empty_since = None
            time.sleep(0.5)
    finally:
        client.close()
    return time.monotonic() - began


def emsp_settle(emsp: servers.Emsp, timeout: float) -> int:
    """Wait until the EMSP has received nothing new for 3 s (what registration pushes: locations ...)."""
    deadline = time.monotonic() + timeout
    count, quiet_since = 0, time.monotonic()
    while time.monotonic() < deadline:
        new = len(emsp.log(count))
        if new:
            count, quiet_since = count + new, time.monotonic()
        elif time.monotonic() - quiet_since >= 3:
            break
        time.sleep(0.5)
    return count


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def latency_summary(values: list[float], sent: int) -> dict:
    values = sorted(values)
    return {
        "n": len(values),
        "of": sent,
        "p50_s": sec(percentile(values, 50)),
        "p95_s": sec(percentile(values, 95)),
        "p99_s": sec(percentile(values, 99)),
        "max_s": sec(values[-1] if values else None),
    }


def e2e_match(records: list[dict], stops, starts, toggles) -> dict:
    """Each stop to its CDR (same token, nearest end time), each start to the first Session PUT of its token after
    it, each status change to the first PATCH of that EVSE with that status after it. Delays in seconds."""
    cdrs = [r for r in records if r["module"] == "cdrs" and r["method"] == "POST"]
    by_token = defaultdict(list)
    for i, (uid, stamp, t) in enumerate(stops):
        by_token[uid].append((parse_time(stamp), t, i))
    cdr_delays, matched, unmatched_cdrs = [], set(), 0
    cdr_ids = Counter(r.get("id") for r in cdrs)
    for cdr in cdrs:
        candidates = [s for s in by_token.get(cdr.get("token_uid"), []) if s[2] not in matched]
        end = parse_time(cdr.get("end"))
        if not candidates or end is None:
            unmatched_cdrs += 1
            continue
        stamp, t, i = min(candidates, key=lambda s: abs((s[0] or 0) - end))
        if abs((stamp or 0) - end) > 2:
            unmatched_cdrs += 1
            continue
        matched.add(i)
        cdr_delays.append(cdr["t"] - t)
    session_puts = defaultdict(list)
    for r in records:
        if r["module"] == "sessions" and r["method"] == "PUT":
            session_puts[r.get("token_uid")].append(r["t"])
    put_delays = []
    for uid, t in starts:
        after = [x for x in session_puts.get(uid, []) if x >= t]
        if after:
            put_delays.append(min(after) - t)
    patches = defaultdict(list)
    for r in records:
        if r["module"] == "locations" and r["method"] == "PATCH" and "evse_uid" in r:
            patches[(r["evse_uid"], r.get("status"))].append(r["t"])
    patch_delays = []
    for evse, status, t in sorted(toggles, key=lambda x: x[2]):  # one PATCH per change, in order
        arrivals = sorted(patches.get((evse, status), []))
        after = next((x for x in arrivals if x >= t), None)
        if after is not None:
            patch_delays.append(after - t)
            patches[(evse, status)].remove(after)
    return {
        "cdr": {
            **latency_summary(cdr_delays, len(stops)),
            "unmatched": unmatched_cdrs,
            "duplicates": sum(n - 1 for n in cdr_ids.values() if n > 1),
        },
        "session_put": latency_summary(put_delays, len(starts)),
        "patch": latency_summary(patch_delays, len(toggles)),
        "emsp_received": dict(Counter(f"{r['method']} {r['module']}" for r in records)),
    }


PROJECT_PACKAGES = ("cpo/", "ocpp_gateway/", "billing/", "ocpi_api/")
# Where a sample's top frame is, by the path of its module: the first prefix that matches names the area.
AREAS = (
    ("django/db/", "Django ORM and database adapter"),
    ("psycopg", "Django ORM and database adapter"),
    ("django/", "Django (other)"),
    ("ocpp/", "ocpp library (routing, dataclasses, validation)"),
    ("jsonschema", "ocpp library (routing, dataclasses, validation)"),
    ("fastjsonschema", "schema validation (fastjsonschema)"),
    ("<string>", "schema validation (fastjsonschema)"),
    ("channels_redis/", "channel layer (Redis)"),
    ("redis/", "channel layer (Redis)"),
    ("msgpack", "channel layer (Redis)"),
    ("channels/", "Channels consumer machinery"),
    ("asgiref/", "asgiref sync/async thread hops"),
    ("concurrent/futures", "thread pool hand-offs"),
    ("threading", "thread pool hand-offs"),
    ("queue.py", "thread pool hand-offs"),
    ("twisted/", "daphne/Twisted/autobahn websocket"),
    ("autobahn/", "daphne/Twisted/autobahn websocket"),
    ("daphne/", "daphne/Twisted/autobahn websocket"),
    ("txaio/", "daphne/Twisted/autobahn websocket"),
    ("asyncio/", "asyncio event loop"),
    ("selectors", "asyncio event loop"),
    ("json/", "json encode/decode"),
    ("inspect", "inspect (signature lookups)"),
    ("copy", "copy/deepcopy"),
    ("dataclasses", "dataclasses"),
    ("re/", "regular expressions"),
    ("logging/", "logging"),
    ("gc", "garbage collector"),
)


def area_of(frame: str) -> str:
    where = frame.rpartition(" (")[2]
    if where.startswith(PROJECT_PACKAGES):
        return "project code (" + where.split("/", 1)[0] + ")"
    for prefix, area in AREAS:
        if prefix in where:
            return area
    return "other"


def profile_summary(raw: str, *, calls: int, top: int = 25) -> dict:
    """py-spy's collapsed stacks -> where the GIL-holding time went, in % of samples: by area (the top frame's
    package), the functions on top of the stack (self), and the project's functions anywhere on the stack
    (inclusive: the cost of each step of a CALL with everything it calls)."""
    self_counts, total_counts, areas = Counter(), Counter(), Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [frame_name(f) for f in stack.split(";")]
        self_counts[frames[-1]] += n
        areas[area_of(frames[-1])] += n
        for name in set(frames):
            if name.rpartition(" (")[2].startswith(PROJECT_PACKAGES):
                total_counts[name] += n

    def rows(counter, limit=top):
        return [(name, round(100 * n / max(samples, 1), 1)) for name, n in counter.most_common(limit)]

    return {
        "samples": samples,
        "calls": calls,
        "self": rows(self_counts),
        "total": rows(total_counts),
        "areas": rows(areas, 30),
    }


def frame_name(frame: str) -> str:
    """`func (path/to/module.py:123)` -> `func (module path relative to the project or site-packages)`."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rpartition(":")[0] or where.rstrip(")")
    for marker in ("site-packages/", str(ROOT) + "/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3.":
                path = "stdlib/" + path.split("/", 1)[-1]
            break
    return f"{name} ({path})"


# -- report --------------------------------------------------------------------------------------------------------
def fmt(value, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        value = f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{suffix}"


def ratio(platform_value, bare_value) -> str:
    if platform_value is None or bare_value in (None, 0):
        return "-"
    return f"{platform_value / bare_value:.2f}x"


class Missing(dict):
    """A server that did not run (--servers): every figure None."""

    def __missing__(self, key):
        return None


MISSING = Missing()


def errors_text(summary: dict) -> str:
    if summary is MISSING:
        return "-"
    kinds = summary.get("errors_by_kind") or {}
    return "0" if not kinds else ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))


def cores(phase: dict) -> float | None:
    return phase["cpu_s"] / phase["seconds"] if phase.get("cpu_s") is not None and phase.get("seconds") else None


def gen_cores(phase: dict) -> float | None:
    return phase["generator_cpu_s"] / phase["seconds"] if phase.get("generator_cpu_s") is not None else None


def cpu_ms_per_call(phase: dict) -> float | None:
    """Server CPU in the window / CALLs answered in it (a step's CALLs still in flight when it ends are answered
    with the CPU of the next stretch, not this one)."""
    n = phase.get("received_in_window") or phase.get("results") or 0
    return 1000 * phase["cpu_s"] / n if n and phase.get("cpu_s") is not None else None


def report(rows: list[dict], profile: dict | None) -> str:
    out: list[str] = []
    by = defaultdict(dict)
    for r in rows:
        by[(r["scenario"], r["phase"])][r["server"]] = r

    t_rows = [(key, v) for key, v in by.items() if key[0] == "throughput"]
    if t_rows:
        out += [
            "### Throughput (realistic mix, open loop)",
            "",
            "| offered CALL/s | platform: achieved | p50 ms | p99 ms | gateway cores | gateway CPU ms/CALL "
            "| worker cores | errors | bare: achieved | p50 ms | p99 ms | cores | CPU ms/CALL | errors "
            "| platform/bare: achieved | p99 | CPU/CALL | generator cores | load avg |",
            "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|",
        ]
        for (_, _name), v in t_rows:
            p, b = v.get(PLATFORM, MISSING), v.get(BARE, MISSING)
            worker_cores = p["worker_cpu_s"] / p["seconds"] if p.get("worker_cpu_s") is not None else None
            out.append(
                f"| {fmt(p['offered'] or b['offered'])} | {fmt(p['achieved'])} | {fmt(p['p50_ms'])} "
                f"| {fmt(p['p99_ms'])} "
                f"| {fmt(cores(p))} | {fmt(cpu_ms_per_call(p))} | {fmt(worker_cores)} | {errors_text(p)} "
                f"| {fmt(b['achieved'])} | {fmt(b['p50_ms'])} | {fmt(b['p99_ms'])} | {fmt(cores(b))} "
                f"| {fmt(cpu_ms_per_call(b))} | {errors_text(b)} | {ratio(p['achieved'], b['achieved'])} "
                f"| {ratio(p['p99_ms'], b['p99_ms'])} | {ratio(cpu_ms_per_call(p), cpu_ms_per_call(b))} "
                f"| {fmt(gen_cores(p))} / {fmt(gen_cores(b))} | {fmt((p['load'] or [None])[0])} / "
                f"{fmt((b['load'] or [None])[0])} |"
            )
        out += [
            "",
            "Achieved = CALLRESULTs received in the step's window / its length; CPU = the server process's "
            "user+system time in the window (1.00 = one core); worker = the Celery worker and its children; "
            "generator = this load generator (platform / bare; near 1.00 it is the limit, not the server); "
            "load avg = the machine's 1-min load average at the step's start (platform / bare). A CALL due when "
            "all chargers had one outstanding was not sent (OCPP-J: one at a time): "
            + ", ".join(
                f"{fmt(v[s]['offered'])}/s {s} {v[s]['calls_unsent']}"
                for (_, _n), v in t_rows
                for s in (PLATFORM, BARE)
                if s in v and v[s]["calls_unsent"]
            )
            or "none.",
            "",
        ]

    held = [(key, v) for key, v in by.items() if key[0] == "held"]
    if held:
        out += [
            "### Held (busy-hour mix)",
            "",
            "| server | phase | connected / N | all booted s | boot p99 s | CALLs | CALL/s | p50 ms | p99 ms "
            "| max ms | errors | server cores | generator cores | RSS before / held MB | KB per connection "
            "| load avg |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|",
        ]
        for (_, name), v in held:
            for server in (PLATFORM, BARE):
                r = v.get(server)
                if r is None:
                    continue
                connected = r.get("booted", r.get("held_end"))
                rss = f"{r['rss_before_mb']} / {r['rss_held_mb']}" if "rss_held_mb" in r else "-"
                out.append(
                    f"| {server} | {name} | {fmt(connected)} / {fmt(r.get('of'))} | {fmt(r.get('all_booted_s'))} "
                    f"| {fmt(r.get('boot_p99_s'))} | {fmt(r['results'])} | {fmt(r['results'] / r['seconds'])} "
                    f"| {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {fmt(r['max_ms'])} | {errors_text(r)} "
                    f"| {fmt(cores(r))} | {fmt(gen_cores(r))} | {rss} | {fmt(r.get('rss_kb_per_connection'))} "
                    f"| {r['load'][0]} |"
                )
            p, b = v.get(PLATFORM), v.get(BARE)
            if p and b:
                out.append(
                    f"| platform/bare | {name} | | {ratio(p.get('all_booted_s'), b.get('all_booted_s'))} "
                    f"| {ratio(p.get('boot_p99_s'), b.get('boot_p99_s'))} | | | "
                    f"{ratio(p['p50_ms'], b['p50_ms'])} | {ratio(p['p99_ms'], b['p99_ms'])} | | "
                    f"| {ratio(cores(p), cores(b))} | | "
                    f"| {ratio(p.get('rss_kb_per_connection'), b.get('rss_kb_per_connection'))} | |"
                )
        out += ["", "RSS per connection = (RSS at the end of the hold - RSS before the ramp) / chargers held.", ""]

    storm = [(key, v) for key, v in by.items() if key[0] == "storm"]
    if storm:
        out += [
            "### Storm (every charger reconnects at t=0)",
            "",
            "| server | chargers | booted | all booted s | connect p50 s | connect p99 s | boot p99 s | HTTP 5xx "
            "| 503 with Retry-After | BootNotification Pending | other refusals | handshake timeouts "
            "| handshake failures | dropped | other errors | server cores | generator cores | RSS MB | load avg |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---|",
        ]
        for (_, name), v in storm:
            for server in (PLATFORM, BARE):
                r = v.get(server)
                if r is None:
                    continue
                statuses = r["handshake_statuses"]
                errs = dict(r["errors_by_kind"])
                fivexx = errs.pop("http_5xx", 0)
                timeouts = errs.pop("handshake_timeout", 0)
                failures = errs.pop("handshake_failed", 0)
                dropped = errs.pop("dropped", 0)
                errs.pop("handshake_refused", None)
                other_refusals = ", ".join(f"{k} {n}" for k, n in statuses.items() if k != "503 Retry-After") or "0"
                out.append(
                    f"| {server} | {fmt(r['of'])} | {fmt(r['booted'])} | {fmt(r.get('all_booted_s'))} "
                    f"| {fmt(r['connect_p50_s'])} | {fmt(r['connect_p99_s'])} | {fmt(r['boot_p99_s'])} | {fivexx} "
                    f"| {statuses.get('503 Retry-After', 0)} | {r.get('boot_statuses', {}).get('Pending', 0)} "
                    f"| {other_refusals} | {timeouts} | {failures} "
                    f"| {dropped} | {', '.join(f'{k} {n}' for k, n in errs.items()) or '0'} | {fmt(cores(r))} "
                    f"| {fmt(gen_cores(r))} | {fmt(r['rss_mb'])} | {r['load'][0]} |"
                )
            p, b = v.get(PLATFORM), v.get(BARE)
            if p and b:
                out.append(
                    f"| platform/bare | | | {ratio(p.get('all_booted_s'), b.get('all_booted_s'))} "
                    f"| {ratio(p['connect_p50_s'], b['connect_p50_s'])} "
                    f"| {ratio(p['connect_p99_s'], b['connect_p99_s'])} "
                    f"| {ratio(p['boot_p99_s'], b['boot_p99_s'])} | | | | | | | | | | | | |"
                )
        out += [
            "",
            "Connect = from a charger's first attempt to its socket open (retries included); boot = to its "
            "BootNotification and StatusNotifications answered. Handshake failures = reset or closed during "
            "the handshake; dropped = closed by the server after it was open.",
            "",
        ]

    scale = [r for r in rows if r["scenario"] == "scale-out"]
    if scale:
        out += [
            "### Scale-out (HAProxy `balance leastconn` in front of N gateway processes, one Celery worker)",
            "",
            "| processes | offered CALL/s | achieved | p50 ms | p99 ms | gateway cores (sum) | CPU ms/CALL | errors "
            "| connections per gateway | load avg |",
            "|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
        ]
        for r in scale:
            out.append(
                f"| {r['processes']} | {fmt(r['offered'])} | {fmt(r['achieved'])} | {fmt(r['p50_ms'])} "
                f"| {fmt(r['p99_ms'])} | {fmt(cores(r))} | {fmt(cpu_ms_per_call(r))} | {errors_text(r)} "
                f"| {r.get('spread')} | {fmt((r['load'] or [None])[0])} |"
            )
        one, two = scale_best(rows, 1), scale_best(rows, 2)
        out += [
            "",
            f"Highest step sustained (achieved >= 97 % of offered, p99 < 100 ms, no errors): one process "
            f"{one:,.0f} CALL/s, two processes {two:,.0f} CALL/s ({ratio(two, one) if one else '-'}).",
            "",
        ]
        for r in (r for r in rows if r["scenario"] == "scale-out-join"):
            out += [
                f"A third process put into rotation (HAProxy runtime API, no reload) while {r['fleet_of']:,} "
                f"chargers were connected: {r['joined']:,}/{r['of']:,} new chargers booted in {fmt(r['join_s'])} s; "
                f"connections per gateway {r['before']} before, {r['after']} after; earlier chargers still "
                f"connected {r['fleet_open']:,}/{r['fleet_of']:,}; then 100 CALL/s over all: p99 "
                f"{fmt(r['p99_ms'])} ms, errors {errors_text(r)}.",
                "",
            ]

    e2e = [r for r in rows if r["scenario"] == "e2e"]
    for r in e2e:
        out += [
            f"### End to end ({r['phase']} offered, {fmt(r.get('stops_per_s_achieved'))} sent: a stop needs a "
            f"charger whose session has started; {fmt(r['results'])} CALLs from the chargers meanwhile, "
            f"p99 {fmt(r['p99_ms'])} ms, errors {errors_text(r)}; gateway {fmt(cores(r))} cores, worker "
            f"{fmt(r['worker_cpu_s'] / r['seconds'] if r.get('worker_cpu_s') is not None else None)} cores)",
            "",
            "| what | sent | received | p50 s | p95 s | p99 s | max s | target |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for key, label, target in (
            ("cdr", "StopTransaction -> CDR POST at the EMSP", f"p99 < {TARGETS['cdr_p99_s']} s"),
            ("patch", "StatusNotification -> EVSE PATCH at the EMSP", f"p99 < {TARGETS['patch_p99_s']} s"),
            ("session_put", "StartTransaction -> Session PUT at the EMSP", ""),
        ):
            x = r[key]
            out.append(
                f"| {label} | {fmt(x['of'])} | {fmt(x['n'])} | {fmt(x['p50_s'])} | {fmt(x['p95_s'])} "
                f"| {fmt(x['p99_s'])} | {fmt(x['max_s'])} | {target} |"
            )
        q = r.get("celery_queue") or {}
        out += [
            "",
            f"Celery queue depth (tasks waiting in Redis, sampled each second): max {fmt(q.get('max'))}, "
            f"{fmt(q.get('at_window_end'))} when the stops ended, {fmt(q.get('at_drain_end'))} after the wait "
            f"for the EMSP.",
        ]
        out += [
            "",
            f"CDRs not matched to a measured stop (stops after the window): {r['cdr']['unmatched']}, "
            f"duplicate CDR ids: {r['cdr']['duplicates']}; "
            f"the EMSP received: {r['emsp_received']}",
            "",
        ]

    out += targets(rows)
    out += [
        "### Per action (CALL -> CALLRESULT)",
        "",
        "| scenario | server | phase | action | n | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        for action, a in r["actions"].items():
            out.append(
                f"| {r['scenario']} | {r['server']} | {r['phase']} | {action} | {a['n']} | {a['p50_ms']} "
                f"| {a['p99_ms']} | {a['max_ms']} |"
            )
    samples = [(r["scenario"], r["server"], r["phase"], k, v) for r in rows for k, v in r["error_samples"].items()]
    if samples:
        out += ["", "First error of each kind:", ""] + [f"- {a}/{s}/{p} {k}: `{v}`" for a, s, p, k, v in samples]
    if profile:
        out += ["", "### Where the gateway's CPU goes (py-spy)", ""]
        if "error" in profile:
            out.append(profile["error"])
        else:
            out += [
                f"`{profile['command']}`: {profile['samples']} samples of the thread holding the GIL "
                f"(100 per second) during {profile['calls']} CALLs.",
                "",
                "| % of samples | area (package of the function on top of the stack) |",
                "|---:|---|",
            ]
            out += [f"| {pct} | {name} |" for name, pct in profile["areas"]]
            out += [
                "",
                "| self % | function on top of the stack | | inclusive % | project function anywhere on the stack |",
                "|---:|---|---|---:|---|",
            ]
            total = profile["total"] + [("", "")] * max(0, len(profile["self"]) - len(profile["total"]))
            for (s_name, s_pct), (t_name, t_pct) in zip(profile["self"], total):
                out.append(f"| {s_pct} | `{s_name}` | | {t_pct} | {f'`{t_name}`' if t_name else ''} |")
    return "\n".join(out)


def logs_report(logs: list[dict]) -> str:
    out = [
        "",
        "### Server logs (in the order the servers stopped)",
        "",
        "| process | log | lines | tracebacks | exceptions (count) |",
        "|---|---|---:|---:|---|",
    ]
    for entry in logs:
        exceptions = "; ".join(f"`{name}` {n}" for name, n in entry["exceptions"]) or "-"
        out.append(
            f"| {entry['process']} | {entry['log']} | {entry['lines']:,} | {entry['tracebacks']:,} | {exceptions} |"
        )
    return "\n".join(out)


def targets(rows: list[dict]) -> list[str]:
    """The issue's targets, each with the figure that decides it."""
    out = ["### Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    thr = {r["offered"]: r for r in rows if r["scenario"] == "throughput" and r["server"] == PLATFORM}
    bare = {r["offered"]: r for r in rows if r["scenario"] == "throughput" and r["server"] == BARE}

    def sustained(table):
        ok = [
            rate
            for rate, r in table.items()
            if r["achieved"] >= 0.97 * rate and (r["p99_ms"] or 1e9) < 100 and not r["errors"]
        ]
        return max(ok, default=0)

    if thr:
        best, best_bare = sustained(thr), sustained(bare)
        at = thr.get(best)
        cpu = cpu_ms_per_call(at) if at else None
        verdict = "met" if best >= TARGETS["throughput_calls"] and best >= best_bare else "missed"
        out.append(
            f"| throughput >= 1,000 CALL/s at p99 < 100 ms, at least the bare library's | platform "
            f"{best:,} CALL/s, bare {best_bare:,} (highest step achieved at p99 < 100 ms, no errors) | {verdict} |"
        )
        worst = max((cpu_ms_per_call(r) or 0 for r in thr.values()), default=None)
        out.append(
            f"| gateway CPU per CALL <= 1 ms | {fmt(cpu)} ms at {best:,}/s (worst step {fmt(worst)} ms) "
            f"| {'met' if cpu is not None and cpu <= TARGETS['cpu_ms_per_call'] else 'missed'} |"
        )
    hold = [r for r in rows if r["scenario"] == "held" and r["server"] == PLATFORM and "rss_held_mb" in r]
    for r in hold:
        ok = r["held_end"] == r["of"] and (r["p99_ms"] or 1e9) < 100 and not r["errors"]
        out.append(
            f"| {r['of']:,} held at p99 < 100 ms (busy hour), no errors | {r['held_end']:,} held, p99 "
            f"{fmt(r['p99_ms'])} ms, errors {errors_text(r)} | {'met' if ok else 'missed'} |"
        )
        kb = r["rss_kb_per_connection"]
        out.append(
            f"| <= 50 KB RSS per connection | {fmt(kb)} KB | "
            f"{'met' if kb is not None and kb <= TARGETS['rss_kb'] else 'missed'} |"
        )
    for r in (r for r in rows if r["scenario"] == "storm" and r["server"] == PLATFORM):
        errs = r["errors_by_kind"]
        ok = (
            r["all_booted_s"] is not None
            and r["all_booted_s"] < 60
            and not errs.get("http_5xx")
            and not errs.get("dropped")
        )
        out.append(
            f"| storm: {r['of']:,} all booted < 60 s, zero 5xx, zero dropped | booted {r['booted']:,} "
            f"in {fmt(r['all_booted_s'])} s, 5xx {errs.get('http_5xx', 0)}, dropped {errs.get('dropped', 0)} "
            f"| {'met' if ok else 'missed'} |"
        )
    one, two = scale_best(rows, 1), scale_best(rows, 2)
    if any(r["scenario"] == "scale-out" for r in rows):
        ok = one > 0 and two >= TARGETS["scale_out_ratio"] * one
        out.append(
            f"| scale-out: two processes serve >= 1.8x one | one {one:,.0f} CALL/s, two {two:,.0f} CALL/s "
            f"({ratio(two, one) if one else '-'}) | {'met' if ok else 'missed'} |"
        )
    for r in (r for r in rows if r["scenario"] == "scale-out-join"):
        ok = r["joined"] == r["of"] and r["fleet_open"] == r["fleet_of"] and not r["errors"]
        out.append(
            f"| a third process added live takes new connections, others undisturbed | {r['joined']:,}/{r['of']:,} "
            f"joined, sessions after {r['after']}, {r['fleet_of'] - r['fleet_open']:,} dropped | "
            f"{'met' if ok else 'missed'} |"
        )
    for r in (r for r in rows if r["scenario"] == "e2e"):
        c, p = r["cdr"], r["patch"]
        ok_c = c["p99_s"] is not None and c["p99_s"] < 2 and c["n"] == c["of"]
        ok_p = p["p99_s"] is not None and p["p99_s"] < 5 and p["n"] == p["of"]
        out.append(
            f"| StopTransaction -> CDR p99 < 2 s at {r['phase']} | p99 {fmt(c['p99_s'])} s, {c['n']}/{c['of']} "
            f"received | {'met' if ok_c else 'missed'} |"
        )
        out.append(
            f"| EVSE status -> PATCH p99 < 5 s | p99 {fmt(p['p99_s'])} s, {p['n']}/{p['of']} received "
            f"| {'met' if ok_p else 'missed'} |"
        )
    return out + [""]


def scale_best(rows: list[dict], processes: int) -> float:
    """Highest scale-out step sustained by `processes` gateways: achieved >= 97 % of offered, p99 < 100 ms."""
    ok = [
        r["offered"]
        for r in rows
        if r["scenario"] == "scale-out"
        and r["processes"] == processes
        and r["achieved"] >= 0.97 * r["offered"]
        and (r["p99_ms"] or 1e9) < 100
        and not r["errors"]
    ]
    return max(ok, default=0)


def machine() -> str:
    cpu = platform_module.processor() or platform_module.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {psutil.cpu_count()} logical CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
        f"{platform_module.system()} {platform_module.release()}, Python {platform_module.python_version()}"
    )


def source_revision() -> str:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    dirty = [
        line[3:]
        for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
        if not line[3:].startswith("bench/")
    ]
    return git("rev-parse", "--short", "HEAD") + (f" + uncommitted changes in {len(dirty)} files" if dirty else "")


def default_db_name() -> str:
    name = urlsplit(os.environ.get("DATABASE_URL", "")).path.lstrip("/")
    return name if "bench" in name else "cpo_bench"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: small fleet, short phases (~2 min)")
    parser.add_argument(
        "--scenarios", default="thsxe", help="any of t (throughput), h (held), s (storm), x (scale-out), e (e2e)"
    )
    full = PRESETS["full"]
    group = parser.add_argument_group(
        "scale (defaults: the full run; --quick: " + ", ".join(f"{k}={v}" for k, v in PRESETS["quick"].items()) + ")"
    )
    group.add_argument("--chargers", type=int, help=f"held and storm fleet N ({full['chargers']})")
    group.add_argument("--fleet", type=int, help=f"throughput fleet ({full['fleet']})")
    group.add_argument("--steps", help=f"throughput: offered CALL/s, comma-separated ({full['steps']})")
    group.add_argument("--step-seconds", type=float, help=f"throughput: seconds per step ({full['step_seconds']})")
    group.add_argument("--ramp", type=float, help=f"connections started per second ({full['ramp']})")
    group.add_argument("--hold", type=float, help=f"held: seconds ({full['hold']})")
    group.add_argument("--heartbeat", type=float, help=f"held: heartbeat interval ({full['heartbeat']})")
    group.add_argument("--meter-interval", type=float, help=f"held: MeterValues interval ({full['meter_interval']})")
    group.add_argument("--charging", type=float, help=f"held: share charging ({full['charging']})")
    group.add_argument("--session-seconds", type=float, help=f"held: mean session ({full['session_seconds']})")
    group.add_argument("--storm-timeout", type=float, help=f"storm: give up after ({full['storm_timeout']})")
    group.add_argument("--e2e-chargers", type=int, help=f"e2e: chargers ({full['e2e_chargers']})")
    group.add_argument("--stops-per-s", type=float, help=f"e2e: StopTransactions per second ({full['stops_per_s']})")
    group.add_argument("--e2e-seconds", type=float, help=f"e2e: measured seconds ({full['e2e_seconds']})")
    group.add_argument("--status-per-s", type=float, help=f"e2e: status changes per second ({full['status_per_s']})")
    group.add_argument("--e2e-drain", type=float, help=f"e2e: seconds to wait for late CDRs ({full['e2e_drain']})")
    group.add_argument(
        "--profile-rate", type=float, help=f"py-spy the platform at this CALL/s, 0: off ({full['profile_rate']})"
    )
    group.add_argument("--profile-seconds", type=float, help=f"py-spy duration ({full['profile_seconds']})")
    group.add_argument("--scale-steps", help=f"scale-out: offered CALL/s, comma-separated ({full['scale_steps']})")
    parser.add_argument("--e2e-meter-interval", type=float, default=10, help="e2e: MeterValues interval")
    parser.add_argument("--call-timeout", type=float, default=30, help="a charger's wait for a CALLRESULT")
    parser.add_argument("--open-timeout", type=float, default=30, help="a charger's wait for the handshake")
    parser.add_argument("--id-tag", default="BENCH-TAG")
    parser.add_argument(
        "--db-name",
        default=default_db_name(),
        help="dropped and recreated; must contain 'bench' (default: DATABASE_URL's database when "
        "its name does, else cpo_bench)",
    )
    parser.add_argument(
        "--prefix",
        default=os.environ.get("CHANNEL_LAYER_PREFIX", "bench"),
        help="channel-layer prefix and Celery queue name of the run (Redis keys under it are deleted at the start)",
    )
    parser.add_argument("--servers", default="bare,platform", help="which servers to measure (bare, platform)")
    parser.add_argument(
        "--gateway-server",
        choices=("daphne", "uvicorn"),
        default="daphne",
        help="the platform's gateway: make run's daphne command, or the same application under uvicorn",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--json", type=Path, help="also write every measured phase here")
    args = parser.parse_args()
    preset = PRESETS["quick" if args.quick else "full"]
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.steps = [float(x) for x in str(args.steps).split(",") if x.strip()]
    args.scale_steps = [float(x) for x in str(args.scale_steps).split(",") if x.strip()]
    args.scenarios = [s for s in args.scenarios if s in "thsxe"]
    args.servers = [s for s in (BARE, PLATFORM) if s in args.servers.split(",")]
    return args


def main() -> None:
    args = arguments()
    command = "python bench/run.py " + " ".join(sys.argv[1:])
    fd_limit = loadgen.raise_fd_limit()
    needed = max(args.chargers, 2 * args.fleet, args.e2e_chargers) + 200
    if fd_limit < needed:
        raise SystemExit(f"open-files limit {fd_limit} is below the {needed} sockets this run needs")
    server_cpus, helper_cpus = servers.pinning(not args.no_pin)
    if helper_cpus:
        os.sched_setaffinity(0, helper_cpus)
    database_url = servers.bench_database_url(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL, args.db_name)
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    env = servers.platform_env(database_url=database_url, redis_url=redis_url, prefix=args.prefix, port=0)

    started = datetime.now(UTC)
    load_start = os.getloadavg()
    t0 = time.monotonic()
    servers.database_recreate(database_url)
    deleted = servers.redis_keys_delete(redis_url, [args.prefix])
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
    stations = max(
        args.chargers if {"h", "s"} & set(args.scenarios) else 0,
        args.fleet + args.fleet // 2 if "x" in args.scenarios else args.fleet,
        args.e2e_chargers,
    )
    servers.stations_create(count=stations, connectors=2, id_tag=args.id_tag)
    connections.close_all()
    log(
        f"database {args.db_name}: migrated, {stations} stations, in {time.monotonic() - t0:.1f}s "
        f"({deleted} Redis keys of an earlier run deleted); open-files limit {fd_limit}; server CPUs "
        f"{server_cpus or 'any'}, generator and helpers on {sorted(helper_cpus) if helper_cpus else 'any'}"
    )

    bench = Bench(args, env, server_cpus=server_cpus, helper_cpus=helper_cpus)
    try:
        asyncio.run(bench.run())
    except KeyboardInterrupt:
        log("interrupted: reporting what was measured")
    load_end = os.getloadavg()
    rows = [p.summary() for p in bench.phases]
    print()
    print(f"date: {started.isoformat(timespec='seconds')} to {datetime.now(UTC).isoformat(timespec='seconds')}")
    print(f"command: {command}")
    print(f"machine: {machine()}")
    print(f"source: {source_revision()}")
    print(
        f"load average (1/5/15 min): {' '.join(f'{x:.2f}' for x in load_start)} at start, "
        f"{' '.join(f'{x:.2f}' for x in load_end)} at end"
    )
    print(
        f"pinning: servers on CPU {server_cpus or 'any'}; generator, worker and EMSP on "
        f"{sorted(helper_cpus) if helper_cpus else 'any'}; PostgreSQL and Redis unpinned"
    )
    for name, cmd in bench.commands.items():
        print(f"{name}: `{' '.join(cmd)}` (open-files limit {bench.limits.get(name, '-')})")
    print(
        f"platform environment: DEBUG=0, SECURE_SSL_REDIRECT=0, database {args.db_name}, Redis {redis_url}, "
        f"prefix {args.prefix}; everything else the settings' defaults"
    )
    print()
    print(report(rows, bench.profile))
    print(logs_report(bench.logs))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "date": started.isoformat(),
                    "command": command,
                    "machine": machine(),
                    "load": [load_start, load_end],
                    "rows": rows,
                    "profile": bench.profile,
                    "logs": bench.logs,
                },
                indent=1,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
