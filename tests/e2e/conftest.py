"""Real parts for the end-to-end scenarios: PostgreSQL (the test database), Redis, a live daphne, a Celery worker
process (with beat) on a queue of its own, the loopback EMSP, and the network the drivers charge on.

Timings are shortened by environment: retries after 0.5 s (at most 2 s), Session PATCHes at most every second, beat
looks for due messages and expired reservations every second and for unfinished transactions every 3 s."""

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis

from cpo.models import Connector
from ocpi_api.models import Partner
from ocpi_api.services import partner_invite
from tests.billing.factories import component, tariff_make
from tests.e2e.emsp import ReceivingEmsp
from tests.e2e.scenario import TOKEN_16, TOKEN_201, emsp_call
from tests.ocpp_gateway.chargers import now_iso
from tests.support import OUTPUT, ROOT, listening_socket, server_env, start_daphne, stop

# daphne hands the gateway's events on to Celery once per this many seconds.
GATEWAY_BATCH_SECONDS = 0.5
# Numbers each worker start of this test process, so every test's worker log is a file of its own in OUTPUT.
_WORKER_STARTS = itertools.count(1)


def e2e_environment(queue: str, base_url: str) -> dict:
    return {
        "CELERY_QUEUE": queue,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "OCPI_BASE_URL": base_url,
        "OCPI_OUTBOX_RETRY_BASE": "0.5",
        "OCPI_OUTBOX_RETRY_MAX": "2",
        "OCPI_OUTBOX_POLL_SECONDS": "1",
        "OCPI_OUTBOX_DISPATCH_LEASE": "5",
        "OCPI_SESSION_PATCH_MIN_INTERVAL": "1",
        "OCPI_SESSION_SYNC_INTERVAL": "1",
        "OCPI_SESSION_RECONCILE_SECONDS": "3",
        "OCPI_HTTP_TIMEOUT": "3",
        "OCPI_SESSION_PUSH_TIMEOUT": "3",
        "OCPI_CDR_PUSH_TIMEOUT": "3",
        "OCPI_REALTIME_AUTHORIZATION_TIMEOUT": "2",
        "OCPI_EVENTS_BATCH_SECONDS": str(GATEWAY_BATCH_SECONDS),
        "OCPP_RESERVATION_EXPIRY_POLL_SECONDS": "1",
    }


@pytest.fixture(scope="module")
def e2e(django_db_setup, django_db_blocker):
    """Skip without PostgreSQL and Redis; else the environment shared by daphne and the workers."""
    from django.db import connection

    if not os.environ.get("REDIS_URL") or connection.vendor != "postgresql":
        pytest.skip("end-to-end scenarios need PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
    listener = listening_socket()  # daphne's, made now: its URL is in the environment of the workers too
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    return {"listener": listener, **e2e_environment(f"e2e-{uuid.uuid4().hex[:12]}", base_url)}


@pytest.fixture(scope="module")
def daphne(e2e):
    env = {k: v for k, v in e2e.items() if k != "listener"}
    server = start_daphne("e2e", listener=e2e["listener"], **env)
    yield server
    stop(server)


class CeleryWorker:
    """`celery worker -B` in its own process group (so a SIGKILL takes the pool with it)."""

    def __init__(self, env: dict):
        self.env = {k: v for k, v in env.items() if k != "listener"}
        self.queue = self.env["CELERY_QUEUE"]
        self.queues = [self.queue, f"{self.queue}-urgent"]  # settings.CELERY_TASK_QUEUES: bulk and urgent
        self.proc = None
        self.log_path = None

    def start(self) -> "CeleryWorker":
        name = f"{self.queue}-{next(_WORKER_STARTS)}"
        self.log_path = OUTPUT / f"celery-{name}.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.e2e.celery_app",
                "worker",
                "-B",
                "-s",
                str(OUTPUT / f"beat-{name}"),
                "-Q",
                ",".join(self.queues),
                "-n",
                f"{name}@localhost",
                "-c",
                "2",
                "-l",
                "info",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=server_env(**self.env),
            stdout=open(self.log_path, "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while " ready." not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"celery worker did not start:\n{self.log()}")
            time.sleep(0.1)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def drain(self, *, gateway_events: bool = False, timeout: float = 40.0) -> None:
        """Wait until every task published to this worker's queue so far has run: none waits in the queue and none
        is held unacknowledged (tasks are acks_late, so a task is acknowledged once it has run; one a killed worker
        held comes back after the visibility timeout). Seen twice in a row, as a worker takes a task off the queue
        a moment before it records it as unacknowledged. With `gateway_events`, first wait out daphne's batch
        interval, after which it has handed on to Celery what the gateway announced until now."""
        if gateway_events:
            time.sleep(GATEWAY_BATCH_SECONDS)
        client = redis.Redis.from_url(self.env.get("CELERY_BROKER_URL") or os.environ["REDIS_URL"])
        queues = [f"{q}{suffix}" for q in self.queues for suffix in ("", "\x06\x163", "\x06\x166", "\x06\x169")]

        def busy() -> list[str]:
            """The tasks waiting in the queue or held unacknowledged."""
            with client.pipeline() as pipe:  # one snapshot (MULTI/EXEC)
                for queue in queues:
                    pipe.lrange(queue, 0, -1)
                pipe.hvals("unacked")
                *waiting, held = pipe.execute()
            messages = [json.loads(raw) for raws in waiting for raw in raws]
            messages += [message for message, _, routing_key in map(json.loads, held) if routing_key in self.queues]
            return [f"{m['headers']['task']} eta={m['headers'].get('eta')}" for m in messages]

        deadline = time.monotonic() + timeout
        seen_idle = 0
        while seen_idle < 2:
            tasks = busy()
            assert time.monotonic() < deadline, f"still queued or running after {timeout} s: {tasks}"
            seen_idle = 0 if tasks else seen_idle + 1
            time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        """SIGKILL, the whole process group: no chance to finish, acknowledge or roll back anything itself."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker(e2e, daphne):
    worker = CeleryWorker(e2e).start()
    yield worker
    worker.stop()


@pytest.fixture
def emsp():
    server = ReceivingEmsp().start()
    yield server
    server.stop()


@pytest.fixture
def network(station_factory):
    """A 1.6 (E2E-1.6) and a 2.0.1 (E2E-2.0.1) charger at one location, their connectors on tariff E2E-AC: € 1.00 per
    session + € 0.35/kWh, 21% VAT (the demo AC tariff)."""
    tariff = tariff_make("E2E-AC", component("FLAT", "1.00"), component("ENERGY", "0.35"))
    stations = {version: station_factory(f"E2E-{version}", evses=1) for version in ("1.6", "2.0.1")}
    Connector.objects.update(tariff_ids=[tariff.id])
    return stations


@pytest.fixture
def roaming(daphne, worker, emsp, network):
    """The EMSP registers with us (credentials handshake over HTTP) and pushes its two drivers' tokens."""
    _, token_a = partner_invite(country_code="NL", party_id="EXM", name="Example EMSP")
    answer = emsp.register_with(versions_url=f"{daphne.http_url}/ocpi/versions", token_a=token_a)
    assert answer.status_code == 200 and answer.json()["status_code"] == 1000, answer.text
    for uid in (TOKEN_16, TOKEN_201):
        response = emsp_call(
            emsp,
            "PUT",
            f"{daphne.http_url}/ocpi/2.2.1/tokens/NL/EXM/{uid}",
            json={
                "country_code": "NL",
                "party_id": "EXM",
                "uid": uid,
                "type": "RFID",
                "contract_id": f"NL-EXM-{uid}",
                "issuer": "Example EMSP",
                "valid": True,
                "whitelist": "ALLOWED",
                "last_updated": now_iso()[:19] + "Z",
            },
        )
        assert response.status_code == 201, response.text
    return Partner.objects.get(country_code="NL", party_id="EXM", status="REGISTERED")
