"""Fixtures shared by every suite: a live daphne serving the test database, and objects to charge with."""

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port} after {timeout}s")


def database_url_for_tests() -> str:
    """The URL of the test database pytest-django created, for server processes we start."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
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
    env = os.environ.copy()
    env.update(
        DEBUG="1",
        DATABASE_URL=database_url_for_tests(),
        OCPP_MESSAGE_LOG_FLUSH_SECONDS="0.05",
        OCPP_SEEN_FLUSH_SECONDS="0.05",  # so no write of one test lands while the next one empties the tables
        OCPP_CALL_TIMEOUT=os.environ.get("TEST_OCPP_CALL_TIMEOUT", "5"),
        DB_CONN_MAX_AGE="0",
        # Each server counts failed charger logins afresh (on Redis, counts and lockouts outlive a server), and every
        # simulated charger shares 127.0.0.1: the per-address lockout is tested on servers that ask for it.
        CACHE_KEY_PREFIX=f"{os.environ.get('CHANNEL_LAYER_PREFIX', 'cpo')}-test-{uuid.uuid4().hex[:8]}",
        OCPP_AUTH_ADDRESS_FAILURE_LIMIT="1000",
    )
    env.update(extra)
    return env


def start_daphne(name: str, **env: str) -> LiveServer:
    """A real daphne process on a free loopback port, on the test database (and Redis when REDIS_URL is set)."""
    OUTPUT.mkdir(exist_ok=True)
    port = free_port()
    log_path = OUTPUT / f"daphne-{name}-{port}.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpo.server", "-b", "127.0.0.1", "-p", str(port), "--websocket_timeout", "-1",
         "cpo.asgi:application"],
        cwd=ROOT,
        env=server_env(**env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc)
    except Exception:
        proc.kill()
        raise RuntimeError(f"daphne did not start:\n{log_path.read_text()}")
    return LiveServer("127.0.0.1", port, proc, log_path)


def stop(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="session")
def live_daphne(django_db_setup, django_db_blocker):
    """One daphne for the session. Tests that use it need `transactional_db` so the server sees their rows."""
    server = start_daphne("main")
    yield server
    stop(server)


@pytest.fixture
def location(db):
    from cpo.models import Location

    return Location.objects.create(
        id="LOC-T1",
        name="Test Plaza",
        address="Teststraat 1",
        city="Utrecht",
        postal_code="3511AA",
        country="NLD",
        latitude=Decimal("52.090737"),
        longitude=Decimal("5.121420"),
        time_zone="Europe/Amsterdam",
    )


@pytest.fixture
def station_factory(location):
    """make(identity, evses=2) -> (station, secret)."""
    from cpo.services import station_create

    def make(identity: str, evses: int = 2, **kwargs):
        return station_create(identity=identity, location=location, evses=evses, **kwargs)

    return make


@pytest.fixture
def local_token(db):
    from cpo.models import Token

    return Token.objects.create(uid="RFID-OK-1", contract_id="NL-CPO-C00000001-X")


@pytest.fixture(autouse=True)
def _let_live_servers_settle(request):
    """After a test that talked to a live server, give its batched writes (message log, last seen) a moment to land
    before pytest-django empties the tables, so the two never cross."""
    yield
    if "live_daphne" in request.fixturenames:
        time.sleep(0.2)
