"""The production set of deploy/Procfile, started for real by honcho: HAProxy with TLS (deploy/haproxy.cfg) in front
of two gateway processes, a web process, a Celery worker and beat, on the test's PostgreSQL and Redis.

One scenario, as an operator lives it: chargers connect over wss:// with HTTP Basic (security profile 2) and are
spread over both gateways; staff on the web process see their status changes live and send them commands; a second
connection of one identity on the other gateway replaces the first; a third gateway added through HAProxy's runtime
API takes new chargers while the others stay connected; a gateway stopped with SIGTERM closes its chargers with 1012,
records them offline, and they reconnect to the others.

Each gateway runs under its own honcho (a honcho stops all its processes when one exits, as a supervisor of one
machine should), the other processes under one more."""

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest
import websockets
from django.contrib.auth.models import Group, User
from ocpp.v16 import call as call16
from websockets.protocol import State

from cpo.models import ChargingStation, SecurityProfile
from tests.ocpp_gateway.chargers import Charger16, basic_auth, now_iso
from tests.ocpp_gateway.pki import HAPROXY, free_port, new_key, pem, pki_create
from tests.support import OUTPUT, ROOT, in_thread, server_env, wait_until

HONCHO = shutil.which("honcho", path=str(Path(sys.executable).parent)) or shutil.which("honcho")
PROCFILE = ROOT / "deploy" / "Procfile"
PASSWORD = "a long enough password 1"

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (.ci/run installs it with apt-get)"),
    pytest.mark.skipif(HONCHO is None, reason="honcho is not installed (a dependency in pyproject.toml)"),
    pytest.mark.timeout(120),
]


# -- the process set -----------------------------------------------------------------------------------------------
class Honcho:
    """`honcho start NAMES` of deploy/Procfile, its output in test-output/."""

    def __init__(self, names: list[str], env: dict, label: str):
        OUTPUT.mkdir(exist_ok=True)
        self.log_path = OUTPUT / f"honcho-{label}-{uuid.uuid4().hex[:6]}.log"
        empty_env = OUTPUT / "honcho-empty.env"
        empty_env.write_text("")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [HONCHO, "-d", str(ROOT), "-f", str(PROCFILE), "-e", str(empty_env), "--no-colour", "start", *names],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def child(self, name: str) -> psutil.Process:
        """The process honcho started for `name` (the Procfile lines `exec` their program)."""
        match = wait_until(lambda: re.search(rf"{name}\.\d+ started \(pid=(\d+)\)", self.log()), timeout=10)
        return psutil.Process(int(match.group(1)))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def wait(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def haproxy_command(path: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def servers_up(path: Path) -> set[str]:
    """The backends' servers HAProxy considers up (health checks on /readyz passed)."""
    answer = haproxy_command(path, "show stat")
    header, *rows = answer.splitlines()
    columns = header.lstrip("# ").split(",")
    up = set()
    for row in rows:
        values = dict(zip(columns, row.split(","), strict=False))
        if values.get("svname") not in ("FRONTEND", "BACKEND", None) and values.get("status") == "UP":
            up.add(values["svname"])
    return up


def set_up(socket_path: Path, sets: dict) -> bool:
    """Whether HAProxy sees both gateways and the web process up; raises if any process of the set stopped."""
    if any(honcho.proc.poll() is not None for honcho in sets.values()):
        raise AssertionError("a process of the set stopped")
    return socket_path.exists() and servers_up(socket_path) >= {"gateway1", "gateway2", "web1"}


def port_open(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


@pytest.fixture
def deployment(tmp_path, django_db_setup):
    from django.db import connection

    if not os.environ.get("REDIS_URL") or connection.vendor != "postgresql":
        pytest.skip("the process set needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL): processes share them")
    pki = pki_create(tmp_path / "pki")
    key = new_key()
    bundle = tmp_path / "proxy.pem"
    bundle.write_bytes(pem(pki.issue("localhost", server=True, key=key, days=2)) + pem(key))
    addresses = {name: f"127.0.0.1:{free_port()}" for name in ("gateway1", "gateway2", "gateway3", "web", "tls")}
    socket_path = tmp_path / "haproxy.sock"
    path = os.pathsep.join([str(Path(sys.executable).parent), str(Path(HAPROXY).parent), os.environ["PATH"]])
    env = server_env(
        PATH=path,
        CPO_TLS_BIND=addresses["tls"],
        CPO_TLS_CERT=str(bundle),
        CPO_CLIENT_CA=str(pki.ca_cert_file),
        CPO_GATEWAY=addresses["gateway1"],
        CPO_GATEWAY2=addresses["gateway2"],
        CPO_WEB=addresses["web"],
        CPO_HAPROXY_SOCKET=str(socket_path),
        TRUSTED_PROXIES="127.0.0.1",
        CELERY_QUEUE=f"deploy-{uuid.uuid4().hex[:12]}",
        CELERY_TASK_ALWAYS_EAGER="0",
        CELERY_CONCURRENCY="1",
        DASHBOARD_EVENTS_BATCH_SECONDS="0.1",
        PYTHONUNBUFFERED="1",
        CPO_VAR_DIR=str(tmp_path / "var"),  # beat's schedule file of its own (the database is PostgreSQL)
    )
    env.pop("CPO_ENV_FILE", None)
    env["CPO_ENV_FILE"] = ""
    sets = {
        "rest": Honcho(["haproxy", "web", "worker", "beat"], env, "rest"),
        "gateway1": Honcho(["gateway1"], env, "gateway1"),
        "gateway2": Honcho(["gateway2"], env, "gateway2"),
    }
    try:
        try:
            wait_until(lambda: set_up(socket_path, sets), 40)
        except AssertionError:
            logs = "\n".join(h.log()[-3000:] for h in sets.values())
            raise AssertionError(f"the set did not come up:\n{logs}") from None
        yield {"pki": pki, "addresses": addresses, "socket": socket_path, "env": env, "sets": sets}
    finally:
        for honcho in sets.values():
            honcho.stop()
        for honcho in sets.values():
            honcho.wait()


# -- chargers, staff and checks, on the test's event loop -----------------------------------------------------------
class Fleet:
    """Simulated 1.6 chargers over wss:// through the proxy; each serves the CSMS's calls while the scenario runs."""

    def __init__(self, url: str, context):
        self.url, self.context = url, context
        self.chargers: dict[str, dict] = {}

    async def connect(self, identity: str, secret: str) -> dict:
        """Connect and boot; the earlier connection of `identity` (if any) is kept in `charger["previous"]`."""
        ws = await websockets.connect(
            f"{self.url}/ocpp/{identity}",
            subprotocols=["ocpp1.6"],
            additional_headers=basic_auth(identity, secret),
            ssl=self.context,
        )
        cp = Charger16(identity, ws, response_timeout=10)
        charger = {"ws": ws, "cp": cp, "task": asyncio.create_task(cp.start()), "previous": self.chargers.get(identity)}
        self.chargers[identity] = charger
        boot = await cp.call(call16.BootNotification(charge_point_vendor="Test", charge_point_model="Deploy-1"))
        charger["boot"] = boot.status
        return charger

    async def call(self, identity: str, request):
        return await self.chargers[identity]["cp"].call(request)

    async def close_code(self, identity: str, *, previous: bool = False, timeout: float = 10) -> int | None:
        charger = self.chargers[identity]["previous"] if previous else self.chargers[identity]
        await asyncio.wait_for(charger["ws"].wait_closed(), timeout)
        return charger["ws"].close_code

    def is_open(self, identity: str) -> bool:
        return self.chargers[identity]["ws"].state is State.OPEN

    async def close(self) -> None:
        for charger in self.chargers.values():
            for c in (charger, charger.get("previous")):
                if c is not None:
                    c["task"].cancel()
                    with contextlib.suppress(BaseException):
                        await c["ws"].close()
                        await c["task"]


class LiveView:
    """The dashboard's live socket, as a logged-in operator's browser holds it (through the proxy, on the web
    process), collecting the events it receives."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    async def open(self, url: str, *, context, cookies: str, origin: str) -> "LiveView":
        self.ws = await websockets.connect(url, ssl=context, additional_headers={"Cookie": cookies}, origin=origin)
        self.task = asyncio.create_task(self.read())
        return self

    async def read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in self.ws:
                self.events.append(json.loads(message))

    def statuses(self) -> dict[str, str]:
        return {e["station"]: e["ocpp_status"] for e in self.events if e.get("kind") == "evse_status"}

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.ws.close()
            await self.task


async def eventually(predicate, timeout: float = 10.0):
    """Poll `predicate` (a function, or a coroutine function) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def connected_on(address: str) -> int:
    """ocpp_chargers_connected as the gateway at `address` reports it on /metrics (as Prometheus scrapes it)."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://{address}/metrics")).text
    return int(float(re.search(r"^ocpp_chargers_connected (\S+)$", text, re.MULTILINE).group(1)))


def status_notification(status: str):
    return call16.StatusNotification(connector_id=1, error_code="NoError", status=status, timestamp=now_iso())


def process_of(identity: str) -> str:
    """Which daphne process holds the charger: its channel-layer client prefix (one per process)."""
    channel = ChargingStation.objects.get(identity=identity).connection_channel
    return channel.split("!")[0]


def stations(**filters) -> set[str]:
    return set(ChargingStation.objects.filter(**filters).values_list("identity", flat=True))


def csrf_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


# -- the scenario --------------------------------------------------------------------------------------------------
def test_the_procfile_set_serves_chargers_across_gateways_and_restarts_them_gracefully(deployment, station_factory):
    secrets = {}
    for n in range(1, 8):
        _, secrets[f"CP-D{n}"] = station_factory(f"CP-D{n}", evses=1, security_profile=SecurityProfile.BASIC_TLS)
    operator = User.objects.create_user("deploy-operator", password=PASSWORD)
    operator.groups.add(Group.objects.get_or_create(name="admin")[0])
    fleet = Fleet(f"wss://{deployment['addresses']['tls']}", deployment["pki"].client_context())
    live = LiveView()

    async def run():
        try:
            await scenario(deployment, fleet, live, secrets, operator.username)
        finally:
            await fleet.close()
            if hasattr(live, "ws"):
                await live.close()

    asyncio.run(run())


async def scenario(deployment, fleet: Fleet, live: LiveView, secrets: dict, username: str) -> None:
    addresses, socket_path, env = deployment["addresses"], deployment["socket"], deployment["env"]
    base = f"https://{addresses['tls']}"
    context = deployment["pki"].client_context()

    # 1. Four profile 2 chargers through the proxy: each boots, and leastconn spreads them over both gateways.
    for identity in ("CP-D1", "CP-D2", "CP-D3", "CP-D4"):
        assert (await fleet.connect(identity, secrets[identity]))["boot"] == "Accepted"
    assert (await connected_on(addresses["gateway1"]), await connected_on(addresses["gateway2"])) == (2, 2)
    by_process: dict[str, list[str]] = {}
    for identity in ("CP-D1", "CP-D2", "CP-D3", "CP-D4"):
        by_process.setdefault(await in_thread(process_of, identity=identity), []).append(identity)
    assert sorted(map(len, by_process.values())) == [2, 2]
    one_on_each = [identities[0] for identities in by_process.values()]

    # 2. Staff log in through the proxy (on the web process) and open the live view; status changes of chargers on
    #    either gateway reach it.
    async with httpx.AsyncClient(base_url=base, verify=context, headers={"Origin": base}) as web:
        login = await web.get("/login/")
        answer = await web.post(
            "/login/", data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": csrf_token(login.text)}
        )
        assert answer.status_code == 302, answer.text[:300]
        assert (await web.get("/metrics")).status_code == 404  # not through the proxy: Prometheus asks each process
        async with httpx.AsyncClient(timeout=5) as scraper:
            on_web = (await scraper.get(f"http://{addresses['web']}/metrics")).text
            on_gateway = (await scraper.get(f"http://{addresses['gateway1']}/metrics")).text
        assert re.search(r"^ocpi_outbox_backlog 0", on_web, re.M) and "celery_queue_length{queue=" in on_web
        assert (
            "ocpi_outbox_backlog" not in on_gateway
            and 'ocpp_call_duration_seconds_count{action="BootNotification"}' in on_gateway
        )
        cookies = "; ".join(f"{name}={value}" for name, value in web.cookies.items())
        await live.open(f"wss://{addresses['tls']}/ws/dashboard/", context=context, cookies=cookies, origin=base)
        for identity in one_on_each:
            await fleet.call(identity, status_notification("Preparing"))
        await eventually(lambda: all(live.statuses().get(i) == "Preparing" for i in one_on_each))

        # 3. A command sent from the web process reaches a charger on either gateway.
        for identity in one_on_each:
            page = await web.get(f"/stations/{identity}/")
            answer = await web.post(
                f"/stations/{identity}/commands/reset/",
                data={"reset-kind": "soft", "csrfmiddlewaretoken": csrf_token(page.text)},
                follow_redirects=True,
            )
            assert "Reset: Accepted" in answer.text, answer.text[:2000]
            assert ("Reset", {"type": "Soft"}) in fleet.chargers[identity]["cp"].received

    # 4. A second connection of an identity, landing on the other gateway (HAProxy drains the first one's process
    #    for new connections), replaces the first: closed with 4000; the new one is served.
    await fleet.connect("CP-D5", secrets["CP-D5"])
    first_process = await in_thread(process_of, identity="CP-D5")
    holder = "gateway1" if await connected_on(addresses["gateway1"]) == 3 else "gateway2"
    haproxy_command(socket_path, f"set server cpo_gateway/{holder} state drain")
    try:
        assert (await fleet.connect("CP-D5", secrets["CP-D5"]))["boot"] == "Accepted"
    finally:
        haproxy_command(socket_path, f"set server cpo_gateway/{holder} state ready")
    assert await fleet.close_code("CP-D5", previous=True) == 4000
    assert await in_thread(process_of, identity="CP-D5") != first_process
    assert (await fleet.call("CP-D5", call16.Heartbeat())).current_time

    # 5. A third gateway (the Procfile's gateway line on another address) joins through the runtime API while
    #    chargers are connected: it takes the new connections; nobody connected is disturbed.
    third = Honcho(["gateway1"], {**env, "CPO_GATEWAY": addresses["gateway3"]}, "gateway3")
    deployment["sets"]["gateway3"] = third
    await eventually(lambda: port_open(addresses["gateway3"]), timeout=30)
    added = haproxy_command(socket_path, f"add server cpo_gateway/gateway3 {addresses['gateway3']} check inter 2s")
    assert "New server registered" in added
    haproxy_command(socket_path, "enable health cpo_gateway/gateway3")
    haproxy_command(socket_path, "enable server cpo_gateway/gateway3")
    await eventually(lambda: "gateway3" in servers_up(socket_path), timeout=15)
    for identity in ("CP-D6", "CP-D7"):
        assert (await fleet.connect(identity, secrets[identity]))["boot"] == "Accepted"
    assert await connected_on(addresses["gateway3"]) == 2
    connected = ["CP-D1", "CP-D2", "CP-D3", "CP-D4", "CP-D5", "CP-D6", "CP-D7"]
    assert all(fleet.is_open(identity) for identity in connected)
    for identity in connected:
        assert (await fleet.call(identity, call16.Heartbeat())).current_time

    # 6. SIGTERM to gateway1: its chargers are closed with 1012 (Service Restart), their stations recorded offline,
    #    the process exits; they reconnect through the proxy and are served by the others.
    gateway1 = deployment["sets"]["gateway1"].child("gateway1")
    soft, hard = gateway1.rlimit(psutil.RLIMIT_NOFILE)
    assert soft == hard  # the launcher raised its open-files limit (one descriptor per charger)
    on_gateway1 = await connected_on(addresses["gateway1"])
    assert on_gateway1 >= 2
    gateway1.send_signal(signal.SIGTERM)
    await eventually(lambda: sum(not fleet.is_open(i) for i in connected) >= on_gateway1)
    closed = [identity for identity in connected if not fleet.is_open(identity)]
    codes = {identity: await fleet.close_code(identity) for identity in closed}
    assert len(codes) == on_gateway1 and set(codes.values()) == {1012}, codes
    await eventually(lambda: "gateway1.1 stopped (rc=0)" in deployment["sets"]["gateway1"].log())
    assert await in_thread(stations, identity__in=closed, online=False) == set(closed)
    for identity in closed:
        assert (await fleet.connect(identity, secrets[identity]))["boot"] == "Accepted"
    on_others = await connected_on(addresses["gateway2"]) + await connected_on(addresses["gateway3"])
    assert on_others == len(connected)
    assert all(fleet.is_open(identity) for identity in connected)
    assert await in_thread(stations, identity__in=connected, online=True) == set(connected)
