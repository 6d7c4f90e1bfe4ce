"""What the suites share besides fixtures: live server processes on the test database, waiting for what servers
write asynchronously, the specification's example objects, and the isolation of pytest-xdist workers.

Fixtures live in conftest.py files and objects are built by factories; test modules import from here, from
factories and from the loopback partners (`emsp.py`), never from conftest.py or from another test module."""

import asyncio
import base64
import html
import http.client
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import websockets.exceptions
import websockets.sync.client
from django.contrib.auth.models import Group, User
from django.db import connections

from cpo.models import ChargingStation
from cpo.services import station_create
from ocpp_gateway.models import MessageLog

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"
# The OCPI 2.2.1 specification's example objects, copied into the repository (see the README there).
OCPI_EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "ocpi-2.2.1-examples"


# -- waiting -----------------------------------------------------------------------------------------------------
def wait_until(predicate, timeout: float = 5.0, interval: float = 0.05, what: str = "condition not met in time"):
    """Poll `predicate` until it returns something truthy (servers write asynchronously); `what` is the assertion's
    message when it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(what)


def in_thread(func, **kwargs):
    """Run blocking `func` in a worker thread from async code, closing the database connection it opened."""

    def run():
        try:
            return func(**kwargs)
        finally:
            connections.close_all()

    return asyncio.to_thread(run)


async def await_until(predicate, timeout: float = 5.0, what: str = "condition not met in time"):
    """`wait_until` from async code (chargers answering on this event loop meanwhile), `predicate` in a thread."""
    return await in_thread(wait_until, predicate=predicate, timeout=timeout, what=what)


# -- pytest-xdist workers ------------------------------------------------------------------------------------------
def xdist_worker() -> str:
    """This process's pytest-xdist worker id ("gw0", ...), or "" when the suite runs in one process."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")


def worker_isolate() -> None:
    """Give this xdist worker its own channel-layer prefix, cache key prefix and Celery queue, in this process's
    settings and in the environment the servers it starts inherit, so that workers sharing one Redis never receive
    each other's channel messages (station groups are named by charger identity) or tasks, nor count each other's
    failed charger logins. The database is already per worker:
    pytest-django suffixes the test database's name (PostgreSQL `test_<name>_gw0`, SQLite `<TEST NAME>_gw0`)."""
    worker = xdist_worker()
    if not worker:
        return
    from channels.layers import channel_layers
    from django.conf import settings

    from cpo.celery import app

    config = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
    prefix = f"{config.get('prefix', os.environ.get('CHANNEL_LAYER_PREFIX', 'cpo'))}-{worker}"
    if "prefix" in config:
        config["prefix"] = prefix
        channel_layers.backends.clear()  # none is made before the first test; to be sure
    os.environ["CHANNEL_LAYER_PREFIX"] = prefix
    cache = settings.CACHES["default"]
    if "KEY_PREFIX" in cache:  # Redis: failed charger logins and lockouts counted by this process's tests
        cache["KEY_PREFIX"] = f"{cache['KEY_PREFIX']}-{worker}"
    queue = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-{worker}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    app.conf.task_default_queue = queue
    os.environ["CELERY_QUEUE"] = queue


LOOPBACK_NETWORKS = "127.0.0.0/8,::1/128"


def loopback_partners_allow() -> None:
    """The loopback EMSPs of the tests live on 127.0.0.1, which production refuses as a partner address
    (ocpi_api.egress): allow loopback explicitly, in this process's settings and in the servers it starts, rather than
    rely on DEBUG's default. Tests of the refusal override the setting back to the production default."""
    from django.conf import settings

    settings.OCPI_PARTNER_ALLOWED_NETWORKS = LOOPBACK_NETWORKS.split(",")
    os.environ["OCPI_PARTNER_ALLOWED_NETWORKS"] = LOOPBACK_NETWORKS


def basic_auth(identity: str, secret: str) -> dict:
    """A charger's HTTP Basic header (OCPP security profile 1)."""
    token = base64.b64encode(f"{identity}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def handshake_request(identity: str, secret: str = "wrong") -> bytes:
    """A charger's websocket handshake (OCPP 1.6, HTTP Basic) as raw bytes, for tests that speak over sockets."""
    authorization = basic_auth(identity, secret)["Authorization"]
    return (
        f"GET /ocpp/{identity} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: ocpp1.6\r\nAuthorization: {authorization}\r\n\r\n"
    ).encode()


def handshake_failures(server: "LiveServer") -> dict[str, float]:
    """A gateway's ocpp_handshake_failures counter by reason, from its /metrics."""
    text = httpx.get(f"{server.http_url}/metrics", timeout=5).text
    found = re.findall(r'^ocpp_handshake_failures_total\{reason="(\w+)"\} (\S+)$', text, re.M)
    return {reason: float(value) for reason, value in found}


def read_head(sock: socket.socket) -> tuple[int, dict]:
    """The status and headers of the HTTP answer on `sock` (0 when the server closed without answering)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    if not answer:
        return 0, {}
    lines = answer.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split(" ")[1]), {"status-line": lines[0], **{name.lower(): v for name, v in headers.items()}}


# -- live servers ---------------------------------------------------------------------------------------------------
def listening_socket() -> socket.socket:
    """A loopback socket listening on a free port, to hand to a server process (daphne --fd): no other process can
    take the port between our choosing it and the server binding it, as with a port number."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    return listener


def wait_for_http(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait until the server answers an HTTP request (any status) on `port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=max(0.1, deadline - time.monotonic()))
        try:
            connection.request("GET", "/login/")
            connection.getresponse().read()
            return
        except (OSError, http.client.HTTPException):
            time.sleep(0.1)
        finally:
            connection.close()
    raise TimeoutError(f"nothing answers HTTP on {port} after {timeout}s")


def database_url_for_tests() -> str:
    """The URL of the test database pytest-django created (this xdist worker's), for server processes we start."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"  # the settings give any SQLite database the embedded default's options
    auth = quote(s["USER"] or "", safe="")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"], safe="")
    host = f"{auth}@" if auth else ""
    return f"postgres://{host}{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@dataclass
class LiveServer:
    host: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ocpp_url(self, identity: str) -> str:
        return f"ws://{self.host}:{self.port}/ocpp/{quote(identity, safe='')}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def server_env(**extra: str) -> dict:
    """The environment of a server process: this worker's test database, channel-layer prefix and Celery queue
    (see `worker_isolate`), short batching intervals."""
    env = os.environ.copy()
    env.update(
        DEBUG="1",
        DATABASE_URL=database_url_for_tests(),
        OCPP_MESSAGE_LOG_FLUSH_SECONDS="0.05",
        OCPP_SEEN_FLUSH_SECONDS="0.05",
        OCPP_CALL_TIMEOUT=os.environ.get("TEST_OCPP_CALL_TIMEOUT", "5"),
        DB_CONN_MAX_AGE="0",
        # Each server counts failed charger logins afresh (on Redis, counts and lockouts outlive a server), and every
        # simulated charger shares 127.0.0.1: the per-address lockout is tested on servers that ask for it.
        CACHE_KEY_PREFIX=f"{os.environ.get('CHANNEL_LAYER_PREFIX', 'cpo')}-test-{uuid.uuid4().hex[:8]}",
        OCPP_AUTH_ADDRESS_FAILURE_LIMIT="1000",
        EMBEDDED_BEAT="0",
    )
    env.update(extra)
    return env


def start_daphne(
    name: str, *, listener: socket.socket | None = None, args: tuple[str, ...] = (), **env: str
) -> LiveServer:
    """A real daphne process (`python -m cpo.server`, as `make run` starts it) on the test database (and Redis when
    REDIS_URL is set), serving on `listener` (by default a new one on a free loopback port); `args` are more
    command-line options."""
    OUTPUT.mkdir(exist_ok=True)
    listener = listener or listening_socket()
    port, fd = listener.getsockname()[1], listener.fileno()
    log_path = OUTPUT / f"daphne-{name}-{port}.log"
    command = [sys.executable, "-m", "cpo.server", "--fd", str(fd), "--websocket_timeout", "-1", *args]
    command.append("cpo.asgi:application")
    with listener, open(log_path, "w") as log:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=server_env(**env), stdout=log, stderr=subprocess.STDOUT, pass_fds=[fd]
        )
    try:
        wait_for_http(port, proc)
    except Exception:
        proc.kill()
        raise RuntimeError(f"daphne did not start:\n{log_path.read_text()}") from None
    return LiveServer("127.0.0.1", port, proc, log_path)


def start_daphne_with_uploads(name: str, uploads_dir: Path, **env: str) -> LiveServer:
    """`start_daphne` running its tasks in-process, that chargers download firmware from and upload diagnostics to:
    files under `uploads_dir`, the URLs it gives chargers on its own address (known before it starts, from the
    listener)."""
    listener = listening_socket()
    return start_daphne(
        name,
        listener=listener,
        CELERY_TASK_ALWAYS_EAGER="1",
        OCPP_UPLOADS_DIR=str(uploads_dir),
        OCPP_UPLOAD_BASE_URL=f"http://127.0.0.1:{listener.getsockname()[1]}",
        **env,
    )


def stop(server: LiveServer) -> None:
    """Stop the server and reap it: a server killed but not waited for still looks alive (`poll()` None), and the
    drain after the test (`live_server_drain`) then knocked on its closed port."""
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(10)


def live_server_drain(server: LiveServer) -> None:
    """Wait until the server has handled the disconnect of every charger (no station is online), then pass one
    frame of a marker charger through it and wait until the message log holds the answer: the log's writer writes
    its entries in order, one batch at a time, so everything logged before the marker has been written too."""

    def online() -> list[str]:
        return list(ChargingStation.objects.filter(online=True).values_list("identity", flat=True))

    try:
        wait_until(lambda: not online(), timeout=10)
    except AssertionError:
        raise AssertionError(f"the live daphne still holds a connection of {online()} after the test") from None
    identity = f"DRAIN-{uuid.uuid4().hex[:8]}"
    _, secret = station_create(identity=identity, location=None, evses=0)
    for attempt in range(5):  # a server shedding load (a busy machine) answers 503 with Retry-After, as to chargers
        try:
            ws = websockets.sync.client.connect(
                server.ocpp_url(identity),
                subprotocols=["ocpp1.6"],
                additional_headers=basic_auth(identity, secret),
            )
            break
        except websockets.exceptions.InvalidStatus as exc:
            if exc.response.status_code != 503 or attempt == 4:
                raise
            time.sleep(min(float(exc.response.headers.get("Retry-After", "1")), 3.0))
    with ws:
        ws.send('[2, "drain", "Heartbeat", {}]')
        ws.recv(timeout=10)
    wait_until(lambda: MessageLog.objects.filter(identity=identity, direction="OUT", unique_id="drain").exists())
    wait_until(lambda: not online())


# -- staff on a live server -----------------------------------------------------------------------------------------
STAFF_PASSWORD = "correct horse battery staple"


class StaffBrowser:
    """A staff member's browser on a live server (logged in through the login page, CSRF as a browser sends it): the
    server process runs the views, so commands they send reach chargers on any backend."""

    def __init__(self, server: LiveServer, role: str = "operator", username: str = ""):
        user = User.objects.create_user(username=username or f"staff-{role}", password=STAFF_PASSWORD)
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        self.username = user.username
        self.http = httpx.Client(base_url=server.http_url, timeout=30)
        self.http.get("/login/")
        answer = self.http.post(
            "/login/",
            data={"username": user.username, "password": STAFF_PASSWORD, "csrfmiddlewaretoken": self.csrf},
        )
        assert answer.status_code == 302, answer.text

    @property
    def csrf(self) -> str:
        return self.http.cookies["csrftoken"]

    def post(self, path: str, data: dict) -> str:
        """POST a form and return the page it redirects to, as text."""
        answer = self.http.post(path, data={**data, "csrfmiddlewaretoken": self.csrf})
        assert answer.status_code == 302, answer.text
        return self.page(answer.headers["Location"].partition("#")[0])

    def page(self, path: str) -> str:
        return html.unescape(self.http.get(path).text)
