"""A cheap OCPP 1.6J load generator: N simulated chargers over real websockets, hand-built JSON frames.

Every charger connects with HTTP Basic auth (username = identity), offers `ocpp1.6`, boots, reports the status of
each connector, heartbeats and runs transactions (Authorize, StartTransaction, MeterValues with four sampled
values, StopTransaction). The generator measures CALL -> CALLRESULT latency per action, counts errors by kind
(CALLERROR, handshakes refused by HTTP status, handshake timeouts, dropped sockets) and the connections it holds.

It is deliberately not built on the `ocpp` library: no schema validation and no dataclasses on this side, so that
the numbers measure the server. Loopback only; every loop is bounded in count and in time, and a run stops by itself.

Drivers (used by `bench/run.py`):
- `ramp`: open and boot chargers at a rate (or all at once, retrying as firmware does: a storm);
- `offered_load`: open loop, R CALLs per second, each CALL given to an idle charger (OCPP-J allows one outstanding
  CALL per charger), in the realistic mix (`Charger.next_call`);
- `busy_hour`: every charger lives for S seconds: heartbeats, sessions started and stopped at random times, meter
  values while charging.

Also runnable against a server you started yourself:

    python bench/loadgen.py --url ws://127.0.0.1:8000/ocpp/ --chargers 100 --hold 30
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import random
import resource
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
OPEN_FILES_WANTED = 65536


def raise_fd_limit(wanted: int = OPEN_FILES_WANTED) -> int:
    """Raise the open-files limit (one socket per charger): the soft limit to the hard one, and both to `wanted`
    where the process may (root may raise the hard limit up to fs.nr_open). Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):
            pass
    if soft < hard or hard == resource.RLIM_INFINITY:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def secret_for(identity: str) -> str:
    """The known secret of a bench station (16..40 characters, as OCPP requires)."""
    return f"bench-secret-{identity}"[:40]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


# -- measurements ------------------------------------------------------------------------------------------------
@dataclass
class Stats:
    """What one phase measured. Latencies in seconds, per action; `received` counts CALLRESULTs by arrival second
    (for the achieved rate inside a window)."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)
    error_samples: dict[str, str] = field(default_factory=dict)
    handshake_statuses: Counter = field(default_factory=Counter)  # refused handshakes: "503 Retry-After" ...
    boot_statuses: Counter = field(default_factory=Counter)  # BootNotifications answered other than Accepted
    connect_times: list[float] = field(default_factory=list)  # from a charger's first attempt to its socket open
    boot_times: list[float] = field(default_factory=list)  # from a charger's first attempt to booted
    received_at: list[float] = field(default_factory=list)  # perf_counter of every CALLRESULT
    connected: int = 0  # sockets open right now
    max_connected: int = 0
    connected_at_end: int = 0
    handshakes: int = 0
    booted: int = 0
    unsent: int = 0  # offered CALLs with no idle charger to carry them
    late_results: int = 0  # CALLRESULTs that came after the charger's call_timeout (counted as call_timeout)

    def latency(self, action: str, seconds: float, received: float) -> None:
        self.latencies[action].append(seconds)
        self.received_at.append(received)

    def error(self, kind: str, detail: str = "") -> None:
        self.errors[kind] += 1
        if detail and kind not in self.error_samples:
            self.error_samples[kind] = detail[:300]

    def opened(self) -> None:
        self.connected += 1
        self.handshakes += 1
        self.max_connected = max(self.max_connected, self.connected)

    def closed(self) -> None:
        self.connected -= 1

    def all_latencies(self) -> list[float]:
        return sorted(itertools.chain.from_iterable(self.latencies.values()))

    def results(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def received_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.received_at if start <= t < end)

    def summary(self, actions: bool = False) -> dict:
        values = self.all_latencies()
        out = {
            "results": len(values),
            "p50_ms": ms(percentile(values, 50)),
            "p95_ms": ms(percentile(values, 95)),
            "p99_ms": ms(percentile(values, 99)),
            "max_ms": ms(values[-1] if values else None),
            "errors": sum(self.errors.values()),
            "errors_by_kind": dict(self.errors),
        }
        if actions:
            out["actions"] = {
                action: {
                    "n": len(v),
                    "p50_ms": ms(percentile(s := sorted(v), 50)),
                    "p95_ms": ms(percentile(s, 95)),
                    "p99_ms": ms(percentile(s, 99)),
                    "max_ms": ms(s[-1]),
                }
                for action, v in sorted(self.latencies.items())
            }
        return out


# -- one simulated charger ---------------------------------------------------------------------------------------
class CallFailed(Exception):
    pass


@dataclass
class Settings:
    url: str  # ws://127.0.0.1:PORT/ocpp/
    connectors: int = 2
    id_tag: str = "BENCH-TAG"
    call_timeout: float = 30.0  # what a charger waits for a CALLRESULT
    open_timeout: float = 30.0  # handshake (TCP + HTTP upgrade + Basic auth check) deadline, as firmware has
    meter_interval: float = 60.0  # MeterValues every S seconds while charging (busy_hour)


@dataclass
class Handshake:
    ok: bool
    retry_after: float | None = None  # from a 503's Retry-After header


class Charger:
    """One charge point: a socket, a reader task matching CALLRESULTs to CALLs, and the messages it sends."""

    def __init__(self, identity: str, settings: Settings, stats: Stats):
        self.identity = identity
        self.settings = settings
        self.stats = stats
        self.id_tag = settings.id_tag
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.pending: dict[str, tuple[str, float, asyncio.Future]] = {}
        self.timed_out: set[str] = set()  # ids of CALLs we gave up on: their results may still come
        self.ids = itertools.count(1)
        self.closing = False
        self.transaction_id: int | None = None
        self.meter_wh = 0
        self.busy = False
        self.plan: deque[str] = deque()  # the CALLs a started sequence still owes (Start after Authorize ...)
        self.toggle = False  # connector 2: Available <-> Unavailable
        self.on_sent = None  # callable(charger, action, payload, perf_counter) for end-to-end scenarios
        self.on_call = None  # callable(charger, action, payload, perf_counter) -> CALLRESULT payload, or None
        self.lock = asyncio.Lock()  # OCPP-J: one CALL outstanding per charger

    @property
    def is_open(self) -> bool:
        return self.ws is not None and self.reader is not None and not self.reader.done()

    async def open(self) -> Handshake:
        """Connect with Basic auth; counts an error by kind when the handshake is refused, times out or breaks."""
        token = base64.b64encode(f"{self.identity}:{secret_for(self.identity)}".encode()).decode()
        self.closing = False
        try:
            self.ws = await connect(
                self.settings.url + self.identity,
                subprotocols=["ocpp1.6"],
                additional_headers={"Authorization": f"Basic {token}"},
                open_timeout=self.settings.open_timeout,
                ping_interval=None,  # the server pings; we answer (websockets does automatically)
                close_timeout=5,
                compression=None,
                proxy=None,
                max_queue=16,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            retry_after = exc.response.headers.get("Retry-After")
            label = f"{status}" + (" Retry-After" if retry_after else "")
            self.stats.handshake_statuses[label] += 1
            kind = "http_5xx" if status >= 500 else "handshake_refused"
            self.stats.error(kind, f"{self.identity}: HTTP {label}")
            try:
                return Handshake(False, float(retry_after) if retry_after else None)
            except ValueError:
                return Handshake(False)
        except TimeoutError:
            self.stats.error("handshake_timeout", self.identity)
            return Handshake(False)
        except (OSError, ConnectionClosed, Exception) as exc:  # refused, reset, closed during the handshake
            self.stats.error("handshake_failed", f"{self.identity}: {type(exc).__name__}: {exc}")
            return Handshake(False)
        if self.ws.subprotocol != "ocpp1.6":
            self.stats.error("handshake_refused", f"{self.identity}: subprotocol {self.ws.subprotocol!r}")
            await self.ws.close()
            return Handshake(False)
        self.stats.opened()
        self.reader = asyncio.create_task(self._read())
        return Handshake(True)

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            try:
                await self.ws.close()
            except Exception:  # noqa: S110 - closing a socket that may be broken already: nothing to report
                pass
        if self.reader is not None:
            try:
                await asyncio.wait_for(self.reader, 10)
            except (TimeoutError, asyncio.CancelledError, Exception):
                self.reader.cancel()

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake, as a power or network cut does."""
        self.closing = True
        if self.ws is not None:
            self.ws.transport.abort()

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                received = time.perf_counter()
                try:
                    frame = json.loads(raw)
                    kind, unique_id = frame[0], frame[1]
                except (ValueError, IndexError, KeyError, TypeError):
                    self.stats.error("bad_frame", f"{self.identity}: {str(raw)[:200]}")
                    continue
                if kind == 2:  # a CALL from the CSMS: answered by `on_call` when set, else NotImplemented
                    answer = self.on_call(self, frame[2], frame[3], received) if self.on_call else None
                    if answer is None:
                        await self.ws.send(json.dumps([4, unique_id, "NotImplemented", "", {}]))
                    else:
                        await self.ws.send(json.dumps([3, unique_id, answer]))
                    continue
                entry = self.pending.pop(unique_id, None)
                if entry is None:
                    if unique_id in self.timed_out:  # already counted as call_timeout
                        self.timed_out.discard(unique_id)
                        self.stats.late_results += 1
                    else:
                        self.stats.error("unexpected_result", f"{self.identity}: {str(raw)[:200]}")
                    continue
                action, sent, future = entry
                if kind == 3:
                    self.stats.latency(action, received - sent, received)
                    if not future.done():
                        future.set_result(frame[2])
                else:
                    self.stats.error("callerror", f"{self.identity} {action}: {str(raw)[:200]}")
                    if not future.done():
                        future.set_exception(CallFailed(f"{action}: CALLERROR {frame[2:4]}"))
        except ConnectionClosed:
            pass
        finally:
            self.stats.closed()
            if not self.closing:
                code = getattr(self.ws, "close_code", None)
                self.stats.error("dropped", f"{self.identity}: closed by the server, code {code}")
            for _action, _sent, future in self.pending.values():
                if not future.done():
                    future.set_exception(CallFailed("connection closed"))
                    future.exception()  # retrieved: whoever awaits it still gets it
            self.pending.clear()
            self.plan.clear()

    async def call(self, action: str, payload: dict) -> dict:
        """Send a CALL and wait for its CALLRESULT; raises CallFailed (error already counted) otherwise."""
        async with self.lock:
            return await self._call(action, payload)

    async def _call(self, action: str, payload: dict) -> dict:
        if not self.is_open:
            raise CallFailed("not connected")
        unique_id = str(next(self.ids))
        future = asyncio.get_running_loop().create_future()
        frame = json.dumps([2, unique_id, action, payload], separators=(",", ":"))
        sent = time.perf_counter()
        self.pending[unique_id] = (action, sent, future)
        if self.on_sent is not None:
            self.on_sent(self, action, payload, sent)
        try:
            await self.ws.send(frame)
            return await asyncio.wait_for(future, self.settings.call_timeout)
        except TimeoutError:
            self.pending.pop(unique_id, None)
            self.timed_out.add(unique_id)
            self.stats.error("call_timeout", f"{self.identity} {action}")
            raise CallFailed(f"{action}: timeout")
        except ConnectionClosed:
            self.pending.pop(unique_id, None)
            raise CallFailed(f"{action}: connection closed")

    # -- what a charger says -------------------------------------------------------------------------------------
    async def boot(self) -> None:
        """BootNotification until Accepted, then one StatusNotification per connector. Pending or Rejected come with
        an interval: the charger asks again after it and sends nothing else meanwhile (OCPP 1.6 section 4.2)."""
        while True:
            result = await self.call(
                "BootNotification",
                {
                    "chargePointVendor": "Bench",
                    "chargePointModel": "LoadGen",
                    "firmwareVersion": "1.0",
                    "chargePointSerialNumber": self.identity,
                },
            )
            status = result.get("status")
            if status == "Accepted":
                break
            self.stats.boot_statuses[str(status)] += 1
            await asyncio.sleep(max(1, int(result.get("interval") or 0)))
        for connector_id in range(1, self.settings.connectors + 1):
            await self.status(connector_id, "Available")
        self.stats.booted += 1

    async def status(self, connector_id: int, status: str) -> None:
        await self.call(
            "StatusNotification",
            {"connectorId": connector_id, "errorCode": "NoError", "status": status, "timestamp": now_iso()},
        )

    async def heartbeat(self) -> None:
        await self.call("Heartbeat", {})

    async def authorize(self) -> None:
        await self.call("Authorize", {"idTag": self.id_tag})

    async def start(self, connector_id: int = 1) -> None:
        result = await self.call(
            "StartTransaction",
            {"connectorId": connector_id, "idTag": self.id_tag, "meterStart": self.meter_wh, "timestamp": now_iso()},
        )
        self.transaction_id = result.get("transactionId")

    async def start_transaction(self, connector_id: int = 1) -> None:
        await self.authorize()
        await self.start(connector_id)
        await self.status(connector_id, "Charging")

    async def meter_values(self, connector_id: int = 1) -> None:
        """One MeterValues with four sampled values (energy register, power, current, voltage), as AC chargers
        typically send them."""
        self.meter_wh += random.randint(50, 500)
        amps = random.randint(14, 16)
        payload = {
            "connectorId": connector_id,
            "meterValue": [
                {
                    "timestamp": now_iso(),
                    "sampledValue": [
                        {
                            "value": str(self.meter_wh),
                            "measurand": "Energy.Active.Import.Register",
                            "unit": "Wh",
                            "context": "Sample.Periodic",
                            "location": "Outlet",
                        },
                        {
                            "value": str(amps * 230 * 3),
                            "measurand": "Power.Active.Import",
                            "unit": "W",
                            "context": "Sample.Periodic",
                            "location": "Outlet",
                        },
                        {
                            "value": f"{amps}.0",
                            "measurand": "Current.Import",
                            "unit": "A",
                            "context": "Sample.Periodic",
                            "location": "Outlet",
                            "phase": "L1",
                        },
                        {
                            "value": "230.0",
                            "measurand": "Voltage",
                            "unit": "V",
                            "context": "Sample.Periodic",
                            "location": "Outlet",
                            "phase": "L1-N",
                        },
                    ],
                }
            ],
        }
        if self.transaction_id is not None:
            payload["transactionId"] = self.transaction_id
        await self.call("MeterValues", payload)

    async def stop(self) -> None:
        if self.transaction_id is None:
            return
        transaction_id, self.transaction_id = self.transaction_id, None
        await self.call(
            "StopTransaction",
            {
                "transactionId": transaction_id,
                "meterStop": self.meter_wh,
                "timestamp": now_iso(),
                "idTag": self.id_tag,
                "reason": "Local",
            },
        )

    async def stop_transaction(self, connector_id: int = 1) -> None:
        await self.stop()
        await self.status(connector_id, "Available")

    async def toggle_availability(self, connector_id: int = 2) -> None:
        """Connector 2 changes between Available and Unavailable: a status change the EVSE's partners are told."""
        self.toggle = not self.toggle
        await self.status(connector_id, "Unavailable" if self.toggle else "Available")

    # -- the realistic mix: one CALL at a time ---------------------------------------------------------------------
    # Idle: 45 % heartbeat, 25 % status change of connector 2, 30 % a session starts (Authorize, then Start and
    # StatusNotification Charging as the next CALLs). Charging: 91 % MeterValues, 9 % Stop (then StatusNotification
    # Available). Over 1,000 chargers this settles at about half MeterValues, a fifth StatusNotification, an eighth
    # Heartbeat and a few percent each Authorize, Start and Stop (the per-action table shows what was sent); about
    # 70 % of the chargers are in a session at any time (`prime` starts the fleet there).
    async def next_call(self) -> None:
        step = self.plan.popleft() if self.plan else None
        if step is None:
            roll = random.random()
            if self.transaction_id is not None:
                step = "stop" if roll < 0.09 else "meter"
            elif roll < 0.30:
                step = "authorize"
            elif roll < 0.55:
                step = "toggle"
            else:
                step = "heartbeat"
        if step == "authorize":
            self.plan.extend(("start", "charging"))
            await self.authorize()
        elif step == "start":
            await self.start(1)
            if self.transaction_id is None:
                self.plan.clear()
        elif step == "charging":
            await self.status(1, "Charging")
        elif step == "meter":
            await self.meter_values(1)
        elif step == "stop":
            self.plan.append("available")
            await self.stop()
        elif step == "available":
            await self.status(1, "Available")
        elif step == "toggle":
            await self.toggle_availability(2)
        else:
            await self.heartbeat()


# -- fleets -------------------------------------------------------------------------------------------------------
def identities(count: int, prefix: str = "BENCH-") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(1, count + 1)]


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK_HOSTS:
        raise SystemExit(f"the load generator only talks to loopback, not {host!r}")


async def connect_and_boot(charger: Charger, *, deadline: float, retry: bool) -> bool:
    """Connect and boot; a charger whose handshake fails retries until the deadline when `retry` is set: after the
    503's Retry-After when the server gave one, else after 1-5 s (as firmware does)."""
    first = time.perf_counter()
    while True:
        handshake = await charger.open()
        if handshake.ok:
            charger.stats.connect_times.append(time.perf_counter() - first)
            try:
                await charger.boot()
                charger.stats.boot_times.append(time.perf_counter() - first)
                return True
            except CallFailed:
                await charger.close()
        if not retry or time.monotonic() + 1 > deadline:
            return False
        pause = handshake.retry_after if handshake.retry_after is not None else random.uniform(1, 5)
        await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))


async def ramp(chargers: list[Charger], *, rate: float, deadline: float, retry: bool = False) -> float:
    """Open and boot every charger, starting `rate` per second (0: all at once). Returns seconds until the last
    charger booted (or gave up)."""
    started = time.monotonic()
    tasks = []
    for i, charger in enumerate(chargers):
        if rate > 0:
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(connect_and_boot(charger, deadline=deadline, retry=retry)))
    await asyncio.gather(*tasks)
    return time.monotonic() - started


async def offered_load(chargers: list[Charger], *, rate: float, seconds: float, step=None, on_window_end=None) -> dict:
    """Open loop: `rate` CALLs per second for `seconds`, each given to an idle connected charger, which sends its
    next CALL of the realistic mix (or `step(charger)` when given). A CALL due when every charger is busy is not
    sent (counted in Stats.unsent): OCPP-J lets a charger have one CALL outstanding, so a server that falls
    behind sees the offered rate capped by the fleet. Waits for the CALLs in flight at the end (not beyond their
    timeout). `on_window_end()` is called when the window closes, before that wait. Returns the window's start and
    end (perf_counter) and the CALLs sent."""
    in_flight: set[asyncio.Task] = set()
    order = list(chargers)
    random.shuffle(order)
    idle = deque(order)  # chargers free to send, longest idle first
    sent = 0
    unsent = 0
    stats = chargers[0].stats if chargers else Stats()
    run = step or Charger.next_call

    async def one(charger: Charger) -> None:
        try:
            await run(charger)
        except CallFailed:
            charger.plan.clear()
        finally:
            charger.busy = False
            idle.append(charger)

    start = time.perf_counter()
    end = start + seconds
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        due = int((now - start) * rate) - sent - unsent
        for k in range(due):
            charger = None
            while idle:
                candidate = idle.popleft()
                if candidate.is_open and not candidate.busy:
                    charger = candidate
                    break
            if charger is None:
                unsent += due - k
                break
            charger.busy = True
            task = asyncio.create_task(one(charger))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            sent += 1
        await asyncio.sleep(0.002)
    if on_window_end is not None:
        on_window_end()
    stats.unsent += unsent
    if in_flight:
        timeout = chargers[0].settings.call_timeout + 5
        await asyncio.wait(in_flight, timeout=timeout)
    return {"window": (start, end), "calls_sent": sent, "calls_unsent": unsent}


async def prime(chargers: list[Charger], *, share: float, rate: float) -> None:
    """Put the fleet into the realistic mix's steady state before a measurement: a `share` of the chargers starts
    a session (Authorize, Start, StatusNotification Charging), `rate` chargers per second."""
    started = time.monotonic()
    tasks = []
    for i, charger in enumerate(chargers[: round(len(chargers) * share)]):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(charger.start_transaction()))
    await asyncio.gather(*tasks, return_exceptions=True)


async def busy_hour(
    chargers: list[Charger], *, seconds: float, heartbeat_interval: float, charging_share: float, session_seconds: float
) -> None:
    """Keep the fleet connected for `seconds` with the traffic of a busy hour: every charger heartbeats every
    `heartbeat_interval`; a `charging_share` of them is charging at any time, sending MeterValues every
    meter_interval; sessions last `session_seconds` on average (exponential), and an idle charger starts one after
    an exponential pause that keeps the share (Authorize, Start, Status Charging ... Stop, Status Available).
    Chargers charging at the start begin their session within the first meter interval."""
    end = time.monotonic() + seconds
    idle_seconds = session_seconds * (1 - charging_share) / max(charging_share, 1e-9)

    async def life(charger: Charger, charging: bool) -> None:
        meter_interval = charger.settings.meter_interval
        now = time.monotonic()
        next_heartbeat = now + random.uniform(0, heartbeat_interval)
        next_start = now + (random.uniform(0, meter_interval) if charging else random.expovariate(1 / idle_seconds))
        next_meter = next_stop = float("inf")
        try:
            while charger.is_open:
                wake = min(next_heartbeat, next_start, next_meter, next_stop, end)
                if wake >= end:
                    break
                await asyncio.sleep(max(0.0, wake - time.monotonic()))
                now = time.monotonic()
                if now >= next_heartbeat:
                    await charger.heartbeat()
                    next_heartbeat += heartbeat_interval
                if now >= next_start:
                    await charger.start_transaction()
                    next_start = float("inf")
                    next_meter = time.monotonic() + meter_interval
                    next_stop = time.monotonic() + random.expovariate(1 / session_seconds)
                elif now >= next_stop:
                    await charger.stop_transaction()
                    next_meter = next_stop = float("inf")
                    next_start = time.monotonic() + random.expovariate(1 / idle_seconds)
                elif now >= next_meter:
                    await charger.meter_values()
                    next_meter += meter_interval
        except CallFailed:
            pass

    n_charging = round(len(chargers) * charging_share)
    await asyncio.gather(*(life(c, i < n_charging) for i, c in enumerate(chargers)))


async def close_all(chargers: list[Charger]) -> None:
    await asyncio.gather(*(c.close() for c in chargers), return_exceptions=True)


# -- stand-alone use ---------------------------------------------------------------------------------------------
async def main_async(args) -> None:
    stats = Stats()
    settings = Settings(url=args.url, connectors=args.connectors, meter_interval=args.meter_interval)
    chargers = [Charger(i, settings, stats) for i in identities(args.chargers, args.prefix)]
    deadline = time.monotonic() + args.hold + 300
    took = await ramp(chargers, rate=args.ramp, deadline=deadline)
    print(f"ramp: {stats.booted}/{len(chargers)} booted in {took:.1f}s, {stats.connected} connected")
    await busy_hour(
        chargers,
        seconds=args.hold,
        heartbeat_interval=args.heartbeat,
        charging_share=args.charging,
        session_seconds=args.session_seconds,
    )
    print(f"held: {stats.connected} connected at the end, max {stats.max_connected}")
    await close_all(chargers)
    print(json.dumps(stats.summary(actions=True), indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ocpp/", help="base URL; the identity is appended")
    parser.add_argument("--prefix", default="BENCH-")
    parser.add_argument("--chargers", type=int, default=100)
    parser.add_argument("--connectors", type=int, default=2)
    parser.add_argument("--ramp", type=float, default=200, help="connections started per second (0: all at once)")
    parser.add_argument("--hold", type=float, default=30, help="seconds to hold the fleet")
    parser.add_argument("--heartbeat", type=float, default=30)
    parser.add_argument("--meter-interval", type=float, default=10)
    parser.add_argument("--charging", type=float, default=0.25, help="share of chargers in a transaction")
    parser.add_argument("--session-seconds", type=float, default=60, help="mean session length")
    args = parser.parse_args()
    check_loopback(args.url)
    raise_fd_limit()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
