"""A cheap OCPP 1.6J load generator: N simulated chargers over real websockets, hand-built JSON frames.

Every charger connects with HTTP Basic auth (username = identity), offers `ocpp1.6`, boots, reports the status of
each connector, heartbeats and runs transactions (Authorize, StartTransaction, MeterValues, StopTransaction). The
generator measures CALL -> CALLRESULT latency per action, counts errors by kind (CALLERROR, refused handshakes,
timeouts, unexpected disconnects) and the connections it holds.

It is deliberately not built on the `ocpp` library: no schema validation and no dataclasses on this side, so that
the numbers measure the server. Loopback only; every loop is bounded in count and in time, and a run stops by itself.

Used by `bench/run.py`; also runnable against a server you started yourself:

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
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_PENDING_PER_CHARGER = 1  # OCPP-J: a charger has at most one CALL outstanding


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard limit (each charger is one socket); returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
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


# -- measurements ------------------------------------------------------------------------------------------------
@dataclass
class Stats:
    """What one scenario measured. Latencies in seconds, per action."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)
    error_samples: dict[str, str] = field(default_factory=dict)
    connected: int = 0  # sockets open right now
    max_connected: int = 0
    connected_at_end: int = 0
    handshakes: int = 0
    booted: int = 0
    first_send: float | None = None
    last_result: float | None = None

    def latency(self, action: str, seconds: float) -> None:
        self.latencies[action].append(seconds)

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

    def summary(self, actions: bool = False) -> dict:
        values = self.all_latencies()
        out = {
            "results": len(values),
            "p50_ms": _ms(percentile(values, 50)),
            "p95_ms": _ms(percentile(values, 95)),
            "p99_ms": _ms(percentile(values, 99)),
            "max_ms": _ms(values[-1] if values else None),
            "errors": sum(self.errors.values()),
            "errors_by_kind": dict(self.errors),
        }
        if actions:
            out["actions"] = {
                action: {
                    "n": len(v),
                    "p50_ms": _ms(percentile(s := sorted(v), 50)),
                    "p95_ms": _ms(percentile(s, 95)),
                    "p99_ms": _ms(percentile(s, 99)),
                    "max_ms": _ms(s[-1]),
                }
                for action, v in sorted(self.latencies.items())
            }
        return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


# -- one simulated charger ---------------------------------------------------------------------------------------
class CallFailed(Exception):
    pass


@dataclass
class Settings:
    url: str  # ws://127.0.0.1:PORT/ocpp/
    connectors: int = 2
    id_tag: str = "BENCH-TAG"
    call_timeout: float = 30.0  # what a charger waits for a CALLRESULT
    open_timeout: float = 60.0  # handshake (TCP + HTTP upgrade + Basic auth check) deadline
    meter_interval: float = 10.0  # MeterValues every S seconds while charging


class Charger:
    """One charge point: a socket, a reader task matching CALLRESULTs to CALLs, and the messages it sends."""

    def __init__(self, identity: str, settings: Settings, stats: Stats):
        self.identity = identity
        self.settings = settings
        self.stats = stats
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.pending: dict[str, tuple[str, float, asyncio.Future]] = {}
        self.ids = itertools.count(1)
        self.closing = False
        self.transaction_id: int | None = None
        self.meter_wh = 0
        self.busy = False

    @property
    def is_open(self) -> bool:
        return self.ws is not None and self.reader is not None and not self.reader.done()

    async def open(self) -> bool:
        """Connect with Basic auth; False (and an error counted) when the handshake is refused or times out."""
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
            self.stats.error("handshake_refused", f"{self.identity}: HTTP {exc.response.status_code}")
            return False
        except TimeoutError:
            self.stats.error("handshake_timeout", self.identity)
            return False
        except (OSError, ConnectionClosed, Exception) as exc:  # refused, reset, closed during the handshake
            self.stats.error("handshake_failed", f"{self.identity}: {type(exc).__name__}: {exc}")
            return False
        if self.ws.subprotocol != "ocpp1.6":
            self.stats.error("handshake_refused", f"{self.identity}: subprotocol {self.ws.subprotocol!r}")
            await self.ws.close()
            return False
        self.stats.opened()
        self.reader = asyncio.create_task(self._read())
        return True

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            try:
                await self.ws.close()
            except Exception:
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
                if kind == 2:  # a CALL from the CSMS: we implement none of them
                    await self.ws.send(json.dumps([4, unique_id, "NotImplemented", "", {}]))
                    continue
                entry = self.pending.pop(unique_id, None)
                if entry is None:
                    self.stats.error("unexpected_result", f"{self.identity}: {str(raw)[:200]}")
                    continue
                action, sent, future = entry
                if kind == 3:
                    self.stats.latency(action, received - sent)
                    self.stats.last_result = received
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
                self.stats.error("disconnect", f"{self.identity}: closed by server, code {code}")
            for _action, _sent, future in self.pending.values():
                if not future.done():
                    future.set_exception(CallFailed("connection closed"))
            self.pending.clear()

    async def call(self, action: str, payload: dict) -> dict:
        """Send a CALL and wait for its CALLRESULT; raises CallFailed (error already counted) otherwise."""
        if not self.is_open:
            raise CallFailed("not connected")
        unique_id = str(next(self.ids))
        future = asyncio.get_running_loop().create_future()
        frame = json.dumps([2, unique_id, action, payload], separators=(",", ":"))
        sent = time.perf_counter()
        if self.stats.first_send is None:
            self.stats.first_send = sent
        self.pending[unique_id] = (action, sent, future)
        self.busy = True
        try:
            await self.ws.send(frame)
            return await asyncio.wait_for(future, self.settings.call_timeout)
        except TimeoutError:
            self.pending.pop(unique_id, None)
            self.stats.error("timeout", f"{self.identity} {action}")
            raise CallFailed(f"{action}: timeout")
        except ConnectionClosed:
            self.pending.pop(unique_id, None)
            raise CallFailed(f"{action}: connection closed")
        finally:
            self.busy = False

    # -- what a charger says -------------------------------------------------------------------------------------
    async def boot(self) -> None:
        await self.call(
            "BootNotification",
            {"chargePointVendor": "Bench", "chargePointModel": "LoadGen", "firmwareVersion": "1.0",
             "chargePointSerialNumber": self.identity},
        )
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

    async def start_transaction(self, connector_id: int = 1) -> None:
        await self.call("Authorize", {"idTag": self.settings.id_tag})
        result = await self.call(
            "StartTransaction",
            {"connectorId": connector_id, "idTag": self.settings.id_tag, "meterStart": self.meter_wh,
             "timestamp": now_iso()},
        )
        self.transaction_id = result.get("transactionId")
        await self.status(connector_id, "Charging")

    async def meter_values(self, connector_id: int = 1) -> None:
        self.meter_wh += random.randint(50, 500)
        payload = {
            "connectorId": connector_id,
            "meterValue": [{
                "timestamp": now_iso(),
                "sampledValue": [
                    {"value": str(self.meter_wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh",
                     "context": "Sample.Periodic"},
                    {"value": "11000", "measurand": "Power.Active.Import", "unit": "W", "context": "Sample.Periodic"},
                ],
            }],
        }
        if self.transaction_id is not None:
            payload["transactionId"] = self.transaction_id
        await self.call("MeterValues", payload)

    async def stop_transaction(self, connector_id: int = 1) -> None:
        if self.transaction_id is None:
            return
        transaction_id, self.transaction_id = self.transaction_id, None
        await self.call(
            "StopTransaction",
            {"transactionId": transaction_id, "meterStop": self.meter_wh, "timestamp": now_iso(),
             "idTag": self.settings.id_tag, "reason": "Local"},
        )
        await self.status(connector_id, "Available")


# -- fleets -------------------------------------------------------------------------------------------------------
def identities(count: int, prefix: str = "BENCH-") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(1, count + 1)]


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK_HOSTS:
        raise SystemExit(f"the load generator only talks to loopback, not {host!r}")


async def connect_and_boot(charger: Charger, *, deadline: float, retry: bool) -> bool:
    """Connect and boot; a charger whose handshake fails retries (1-5 s backoff, like firmware does) until the
    deadline when `retry` is set."""
    while True:
        if await charger.open():
            try:
                await charger.boot()
                return True
            except CallFailed:
                await charger.close()
        if not retry or time.monotonic() + 1 > deadline:
            return False
        await asyncio.sleep(min(random.uniform(1, 5), max(0.0, deadline - time.monotonic())))


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


async def hold(chargers: list[Charger], *, seconds: float, heartbeat_interval: float, charging_share: float) -> None:
    """Keep the fleet connected for `seconds`: every charger heartbeats every `heartbeat_interval`; a share of
    them runs one transaction across the hold (Authorize, Start, MeterValues every meter_interval, Stop)."""
    end = time.monotonic() + seconds

    async def life(charger: Charger, charging: bool) -> None:
        await asyncio.sleep(random.uniform(0, min(heartbeat_interval, charger.settings.meter_interval)))
        try:
            if charging and charger.is_open and time.monotonic() < end:
                await charger.start_transaction()
            next_heartbeat = time.monotonic() + random.uniform(0, heartbeat_interval)
            next_meter = time.monotonic() + charger.settings.meter_interval
            while charger.is_open:
                now = time.monotonic()
                wake = min(next_heartbeat, next_meter if charger.transaction_id else end, end)
                if wake >= end:
                    await asyncio.sleep(max(0.0, end - now))
                    break
                await asyncio.sleep(max(0.0, wake - now))
                if time.monotonic() >= next_heartbeat:
                    await charger.heartbeat()
                    next_heartbeat += heartbeat_interval
                if charger.transaction_id and time.monotonic() >= next_meter:
                    await charger.meter_values()
                    next_meter += charger.settings.meter_interval
            if charger.transaction_id and charger.is_open:
                await charger.stop_transaction()
        except CallFailed:
            pass

    n_charging = round(len(chargers) * charging_share)
    await asyncio.gather(*(life(c, i < n_charging) for i, c in enumerate(chargers)))


async def steady(chargers: list[Charger], *, rate: float, seconds: float) -> int:
    """Open loop: `rate` CALLs per second for `seconds`, each given to an idle charger, in the mix of a busy site
    (per charger: start a transaction, a run of MeterValues, stop; heartbeats from the rest). Returns CALLs sent."""
    loop_end = time.monotonic() + seconds
    sent = 0
    in_flight: set[asyncio.Task] = set()
    start = time.monotonic()
    order = list(chargers)
    random.shuffle(order)
    cursor = 0

    async def one(charger: Charger) -> None:
        try:
            roll = random.random()
            if charger.transaction_id is None:
                if roll < 0.25:
                    await charger.call("Authorize", {"idTag": charger.settings.id_tag})
                    result = await charger.call(
                        "StartTransaction",
                        {"connectorId": 1, "idTag": charger.settings.id_tag, "meterStart": charger.meter_wh,
                         "timestamp": now_iso()},
                    )
                    charger.transaction_id = result.get("transactionId")
                elif roll < 0.35:
                    await charger.status(2, random.choice(["Available", "Preparing"]))
                else:
                    await charger.heartbeat()
            elif roll < 0.1:
                await charger.stop_transaction()
            else:
                await charger.meter_values()
        except CallFailed:
            pass

    while True:
        now = time.monotonic()
        if now >= loop_end:
            break
        due = int((now - start) * rate) - sent
        for _ in range(due):
            for _attempt in range(len(order)):
                charger = order[cursor]
                cursor = (cursor + 1) % len(order)
                if charger.is_open and not charger.busy:
                    break
            else:
                charger = None
            if charger is None:
                break
            charger.busy = True  # claimed until its CALL(s) finish
            task = asyncio.create_task(one(charger))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            sent += 1
        await asyncio.sleep(0.005)
    if in_flight:
        # a task may be Authorize + StartTransaction: two CALLs, each up to call_timeout
        await asyncio.wait(in_flight, timeout=2 * chargers[0].settings.call_timeout + 5 if chargers else 5)
    return sent


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
    await hold(chargers, seconds=args.hold, heartbeat_interval=args.heartbeat, charging_share=args.charging)
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
    args = parser.parse_args()
    check_loopback(args.url)
    raise_fd_limit()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
