"""Real parts for the end-to-end scenarios: PostgreSQL (the test database), Redis, a live daphne, a Celery worker
process (with beat) on a queue of its own, and the loopback EMSP.

Timings are shortened by environment: retries after 0.5 s (at most 2 s), Session PATCHes at most every second, beat
looks for due messages every second and for unfinished transactions every 3 s."""

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import OUTPUT, ROOT, LiveServer, free_port, server_env, stop, wait_for_port
from tests.e2e.emsp import ReceivingEmsp


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
        "OCPI_REALTIME_AUTHORIZATION_TIMEOUT": "2",
    }


@pytest.fixture(scope="module")
def e2e(django_db_setup, django_db_blocker):
    """Skip without PostgreSQL and Redis; else the environment shared by daphne and the workers."""
    from django.db import connection

    if not os.environ.get("REDIS_URL") or connection.vendor != "postgresql":
        pytest.skip("end-to-end scenarios need PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
    port = free_port()
    return {"port": port, **e2e_environment(f"e2e-{uuid.uuid4().hex[:12]}", f"http://127.0.0.1:{port}")}


@pytest.fixture(scope="module")
def daphne(e2e):
    OUTPUT.mkdir(exist_ok=True)
    port = e2e["port"]
    log_path = OUTPUT / f"daphne-e2e-{port}.log"
    env = {k: v for k, v in e2e.items() if k != "port"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpo.server", "-b", "127.0.0.1", "-p", str(port), "--websocket_timeout", "-1",
         "cpo.asgi:application"],
        cwd=ROOT, env=server_env(**env), stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc)
    except Exception:
        proc.kill()
        raise RuntimeError(f"daphne did not start:\n{log_path.read_text()}")
    server = LiveServer("127.0.0.1", port, proc, log_path)
    yield server
    stop(server)


class CeleryWorker:
    """`celery worker -B` in its own process group (so a SIGKILL takes the pool with it)."""

    def __init__(self, env: dict):
        self.env = {k: v for k, v in env.items() if k != "port"}
        self.queue = self.env["CELERY_QUEUE"]
        self.proc = None
        self.log_path = None
        self.starts = 0

    def start(self) -> "CeleryWorker":
        self.starts += 1
        name = f"{self.queue}-{self.starts}"
        self.log_path = OUTPUT / f"celery-{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.e2e.celery_app", "worker", "-B",
             "-s", str(OUTPUT / f"beat-{name}"), "-Q", self.queue, "-n", f"{name}@localhost", "-c", "2",
             "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=server_env(**self.env), stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT,
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
