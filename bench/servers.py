"""What the benchmark runs against, and how it sets it up.

- The platform: its database (dropped, migrated, N stations with known secrets), then the gateway and the Celery
  worker started with the command lines of the Makefile's `run` recipe (read from the Makefile, so the benchmark
  starts exactly what `make run` starts), in production settings (DEBUG=0, PostgreSQL, Redis).
- The bare `ocpp`-library central system (bench/bare.py).
- The loopback EMSP (bench/emsp.py), registered with the platform through the public interfaces: the
  `ocpi_invite` management command and the OCPI credentials handshake over HTTP; its drivers' tokens pushed with
  OCPI PUTs.
Every server starts with a raised open-files limit and, where the machine allows, pinned to its own CPUs.
"""

from __future__ import annotations

import base64
import itertools
import importlib.util
import json
import os
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import loadgen
import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VAR = ROOT / "var" / "bench"
BIN = Path(sys.executable).parent
STATIONS_PER_LOCATION = 4
EMSP_COUNTRY, EMSP_PARTY = "NL", "BEN"


# -- the Makefile's `run` recipe ---------------------------------------------------------------------------------
def make_run_commands(*, port: int, host: str = "127.0.0.1", makefile: Path = ROOT / "Makefile") -> dict:
    """The gateway's and the worker's command lines as `make run` runs them: {"gateway": [...], "worker": [...]}.
    The gateway is the command that serves `cpo.asgi:application`; the worker is the `celery ... worker`."""
    text = makefile.read_text()
    match = re.search(r"^run:.*\n((?:\t.*\n?|#.*\n?)+)", text, re.MULTILINE)
    if not match:
        raise SystemExit("no `run:` recipe in the Makefile")
    recipe = match.group(1).replace("\\\n", " ")
    recipe = "\n".join(line.lstrip("\t").lstrip("@") for line in recipe.splitlines())
    substitutions = {
        "$(VENV)/bin/": f"{BIN}/",
        "$(PY)": sys.executable,
        "$(PORT)": str(port),
        "$(HOST)": host,
        "$$": "$",
    }
    for name, value in substitutions.items():
        recipe = recipe.replace(name, value)
    lexer = shlex.shlex(recipe, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    separators = {";", "&", "&&", "||", "|", "\n"}

    def command_around(index: int) -> list[str]:
        start = index
        while start > 0 and tokens[start - 1] not in separators and not tokens[start - 1].endswith(("then", "do")):
            start -= 1
        end = index
        while end + 1 < len(tokens) and tokens[end + 1] not in separators:
            end += 1
        return tokens[start : end + 1]

    gateway = next((command_around(i) for i, t in enumerate(tokens) if t.endswith("asgi:application")), None)
    worker = next(
        (command_around(i) for i, t in enumerate(tokens) if t.endswith("/celery") and "worker" in tokens[i : i + 6]),
        None,
    )
    if gateway is None:
        raise SystemExit("the Makefile's run recipe serves no `...asgi:application`")
    return {"gateway": gateway, "worker": worker}


# -- database and stations --------------------------------------------------------------------------------------
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


def redis_keys_delete(url: str, prefixes: list[str]) -> int:
    """Forget what an earlier run left: keys under our channel-layer prefix and Celery queue, and the messages of
    our queue that kombu keeps as unacknowledged (restored to the queue when a worker starts). Never the whole db."""
    import redis

    client = redis.Redis.from_url(url)
    deleted = 0
    for prefix in prefixes:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            deleted += client.delete(key)
        for key in client.scan_iter(match=f"_kombu.binding.{prefix}*", count=1000):
            deleted += client.delete(key)
    for tag, value in client.hscan_iter("unacked"):
        if any(f'"{prefix}' in value.decode(errors="replace") for prefix in prefixes):
            deleted += client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
    client.close()
    return deleted


def django_setup(env: dict) -> None:
    os.environ.update(env)
    import django

    django.setup()


def stations_create(*, count: int, connectors: int, id_tag: str) -> None:
    """N stations with known secrets (loadgen.secret_for), `connectors` EVSEs each, STATIONS_PER_LOCATION of them
    per location (a partner's EVSE status updates are ordered per location), and the local token the chargers of
    the throughput and busy-hour mixes present. Bulk inserts with precomputed hashes: seconds for 10,000."""
    from decimal import Decimal

    from django.conf import settings
    from django.db import transaction

    from cpo.models import EVSE, ChargingStation, Connector, Location, Token
    from cpo.services import station_secret_hash

    names = loadgen.identities(count)
    with transaction.atomic():
        locations = [
            Location(
                id=f"BENCH-LOC-{i:05d}",
                name=f"Bench Plaza {i}",
                address=f"Benchstraat {i}",
                city="Utrecht",
                postal_code="3511AA",
                country="NLD",
                latitude=Decimal("52.090737"),
                longitude=Decimal("5.121420"),
            )
            for i in range(1, (count + STATIONS_PER_LOCATION - 1) // STATIONS_PER_LOCATION + 1)
        ]
        Location.objects.bulk_create(locations, batch_size=1000)
        ChargingStation.objects.bulk_create(
            [
                ChargingStation(
                    identity=name,
                    secret_hash=station_secret_hash(loadgen.secret_for(name)),
                    location_id=locations[i // STATIONS_PER_LOCATION].id,
                )
                for i, name in enumerate(names)
            ],
            batch_size=1000,
        )
        stations = ChargingStation.objects.filter(identity__in=names).only("pk", "identity", "location_id")
        EVSE.objects.bulk_create(
            [
                EVSE(
                    uid=f"{s.identity}-{n}",
                    location_id=s.location_id,
                    station=s,
                    ocpp_evse_id=n,
                    evse_id=f"{settings.OCPI_COUNTRY_CODE}*{settings.OCPI_PARTY_ID}*E{s.identity}*{n}".replace("-", ""),
                    capabilities=["REMOTE_START_STOP_CAPABLE", "RFID_READER"],
                    physical_reference=str(n),
                )
                for s in stations
                for n in range(1, connectors + 1)
            ],
            batch_size=1000,
        )
        evse_pks = EVSE.objects.filter(station__identity__in=names).values_list("pk", flat=True)
        Connector.objects.bulk_create(
            [Connector(evse_id=pk, connector_id="1", max_electric_power=22000) for pk in evse_pks], batch_size=2000
        )
        Token.objects.create(uid=id_tag, contract_id="NL-CPO-C00000001-X")
        tariff_id = tariff_create()
        if tariff_id:
            Connector.objects.filter(evse__station__identity__in=names).update(tariff_ids=[tariff_id])


def tariff_create() -> str | None:
    """The demo AC tariff (1.00 EUR per session + 0.35 EUR/kWh, 21 % VAT) on every connector, so that sessions are
    priced as in production. Billing's model is the one internal the benchmark touches: if it changed shape, the
    run goes on without a tariff (CDRs free of charge) and says so."""
    from decimal import Decimal

    from django.conf import settings

    try:
        from billing.models import Tariff

        tariff = Tariff(
            id="BENCH-AC",
            country_code=settings.OCPI_COUNTRY_CODE,
            party_id=settings.OCPI_PARTY_ID,
            currency="EUR",
            elements=[
                {
                    "price_components": [
                        {"type": "FLAT", "price": Decimal("1.00"), "vat": Decimal("21.0"), "step_size": 1},
                        {"type": "ENERGY", "price": Decimal("0.35"), "vat": Decimal("21.0"), "step_size": 1},
                    ]
                }
            ],
        )
        tariff.full_clean()
        tariff.save()
        return tariff.id
    except Exception as exc:
        print(f"no tariff created ({type(exc).__name__}: {exc}); CDRs will be free of charge", flush=True)
        return None


# -- processes ---------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinning(enabled: bool) -> tuple[list[str] | None, set[int] | None]:
    """(CPU list for the servers, CPUs for the generator and the helpers) when taskset and 2+ CPUs are there:
    the server under test on CPU 0, everything of ours on the others."""
    cpus = sorted(os.sched_getaffinity(0))
    if not enabled or len(cpus) < 2 or shutil.which("taskset") is None:
        return None, None
    return [str(cpus[0])], set(cpus[1:])


def raised_limits() -> None:
    """preexec_fn of every server: the open-files limit raised (each charger is a socket)."""
    loadgen.raise_fd_limit()


@dataclass
class Proc:
    """A started process, its log, and its CPU time for windows."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    command: list[str]
    port: int | None = None
    ps: psutil.Process = field(init=False)

    def __post_init__(self):
        self.ps = psutil.Process(self.popen.pid)

    def cpu_seconds(self, children: bool = False) -> float:
        try:
            times = self.ps.cpu_times()
            total = times.user + times.system
            if children:
                for child in self.ps.children(recursive=True):
                    try:
                        t = child.cpu_times()
                        total += t.user + t.system
                    except psutil.Error:
                        pass
            return total
        except psutil.Error:
            return float("nan")

    def rss_mb(self) -> float:
        try:
            return self.ps.memory_info().rss / 2**20
        except psutil.Error:
            return float("nan")

    def open_files_limit(self) -> int | None:
        try:
            return self.ps.rlimit(psutil.RLIMIT_NOFILE)[0]
        except (psutil.Error, AttributeError):
            return None

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL after `timeout`; then whatever of its process group is left (a Celery worker's pool
        children outlived a main process that was killed, and took the next runs' tasks)."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)  # its own group: spawn starts each in a new session
        except (ProcessLookupError, PermissionError):
            pass


_started = itertools.count(1)


def spawn(
    name: str,
    command: list[str],
    *,
    env: dict,
    cpus: list[str] | None,
    cwd: Path = ROOT,
    port: int | None = None,
    stdout=None,
) -> Proc:
    VAR.mkdir(parents=True, exist_ok=True)
    log_path = VAR / f"{name}-{next(_started)}.log"
    full = (["taskset", "-c", ",".join(cpus)] if cpus else []) + command
    log = open(log_path, "w")
    popen = subprocess.Popen(
        full, cwd=cwd, env=env, stdout=stdout or log, stderr=log, preexec_fn=raised_limits, start_new_session=True
    )
    return Proc(name, popen, log_path, command, port)


EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Timeout|Exit))(?::\s?(.{0,80}))?\s*$")


def log_summary(path: Path) -> dict:
    """What a server's log says went wrong: tracebacks, the exceptions they ended in, open-files exhaustion."""
    exceptions: dict[str, int] = {}
    tracebacks = lines = 0
    try:
        with open(path, errors="replace") as f:
            for line in f:
                lines += 1
                if line.startswith("Traceback"):
                    tracebacks += 1
                match = EXCEPTION_LINE.match(line)
                if match:
                    key = f"{match.group(1)}: {(match.group(2) or '').strip()}".rstrip(": ")
                    exceptions[key] = exceptions.get(key, 0) + 1
                elif "Too many open files" in line:
                    exceptions["Too many open files"] = exceptions.get("Too many open files", 0) + 1
    except OSError:
        pass
    top = sorted(exceptions.items(), key=lambda kv: -kv[1])[:8]
    return {"log": str(path.relative_to(ROOT)), "lines": lines, "tracebacks": tracebacks, "exceptions": top}


def wait_listening(proc: Proc, port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise SystemExit(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_path.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    proc.stop()
    raise SystemExit(f"{proc.name} did not listen on {port}:\n{proc.log_path.read_text()[-3000:]}")


def platform_env(*, database_url: str, redis_url: str, prefix: str, port: int) -> dict:
    """Production settings on loopback: DEBUG=0 (a SECRET_KEY), PostgreSQL, Redis; plain HTTP as behind a TLS
    proxy (no SSL redirect), OCPI URLs on our port, the loopback EMSP allowed. LOG_LEVEL and everything else: the
    settings' defaults."""
    env = os.environ.copy()
    env.update(
        DEBUG="0",
        SECRET_KEY="bench-" + "k" * 50,
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CHANNEL_LAYER_PREFIX=prefix,
        CELERY_QUEUE=f"{prefix}-celery",
        OCPI_BASE_URL=f"http://127.0.0.1:{port}",
        OCPI_PARTNER_ALLOWED_NETWORKS="127.0.0.0/8",  # the bench's EMSP is on loopback, which DEBUG=0 refuses
        PYTHONPATH=str(ROOT),
    )
    return env


def uvicorn_command(*, port: int, host: str = "127.0.0.1") -> list[str]:
    """The same ASGI application under uvicorn (uvloop, httptools, the websockets library), for the comparison issue
    11 asks for: `--gateway-server uvicorn` (needs `pip install 'uvicorn[standard]'`, not a dependency of ours)."""
    if importlib.util.find_spec("uvicorn") is None:
        raise SystemExit("--gateway-server uvicorn: pip install 'uvicorn[standard]' first")
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "cpo.asgi:application",
        f"--host={host}",
        f"--port={port}",
        "--backlog=4096",
        "--loop=uvloop",
        "--http=httptools",
        "--ws=websockets",
        "--ws-ping-interval=0",
        "--log-level=warning",
        "--no-access-log",
    ]


def platform_start(
    *,
    env: dict,
    port: int,
    cpus: list[str] | None,
    helper_cpus: set[int] | None,
    worker: bool,
    name: str = "platform",
    gateway_server: str = "daphne",
) -> tuple[Proc, Proc | None]:
    """The gateway (make run's daphne command, or `uvicorn_command`) on `cpus`, and make run's Celery worker on the
    helpers' CPUs."""
    commands = make_run_commands(port=port)
    if gateway_server == "uvicorn":
        commands["gateway"] = uvicorn_command(port=port)
    helpers = [str(c) for c in sorted(helper_cpus)] if helper_cpus else None
    worker_proc = None
    if worker:
        if commands["worker"] is None:
            raise SystemExit("the Makefile's run recipe starts no Celery worker")
        worker_proc = spawn(f"{name}-worker", commands["worker"], env=env, cpus=helpers, cwd=VAR)
    gateway = spawn(f"{name}-gateway", commands["gateway"], env=env, cpus=cpus, port=port)
    wait_listening(gateway, port)
    if worker_proc is not None and worker_proc.popen.poll() is not None:
        gateway.stop()
        raise SystemExit(
            f"the Celery worker exited with {worker_proc.popen.returncode}:\n{worker_proc.log_path.read_text()[-3000:]}"
        )
    return gateway, worker_proc


def bare_start(*, port: int, cpus: list[str] | None, gc_freeze: int = 500) -> Proc:
    proc = spawn(
        "bare",
        [sys.executable, str(BENCH / "bare.py"), "--port", str(port), "--gc-freeze", str(gc_freeze)],
        env=os.environ.copy(),
        cpus=cpus,
        port=port,
    )
    wait_listening(proc, port)
    return proc


# -- the EMSP and its registration -------------------------------------------------------------------------------
@dataclass
class Emsp:
    proc: Proc
    url: str  # http://127.0.0.1:P
    token_b: str  # what the platform presents to it
    token_c: str = ""  # what it presents to the platform
    tokens_url: str = ""  # the platform's tokens Receiver

    def log(self, since: int = 0) -> list[dict]:
        return httpx.get(f"{self.url}/bench/log", params={"since": since}, timeout=30).json()["records"]


def emsp_start(*, cpus: set[int] | None) -> Emsp:
    token_b = secrets.token_urlsafe(24)
    command = [
        sys.executable,
        str(BENCH / "emsp.py"),
        f"--token={token_b}",  # one word: a token_urlsafe may begin with "-", which argparse took for an option
        "--country-code",
        EMSP_COUNTRY,
        "--party-id",
        EMSP_PARTY,
    ]
    proc = spawn(
        "emsp",
        command,
        env=os.environ.copy(),
        cpus=[str(c) for c in sorted(cpus)] if cpus else None,
        stdout=subprocess.PIPE,
    )
    line = proc.popen.stdout.readline()
    port = json.loads(line)["port"]
    proc.port = port
    return Emsp(proc=proc, url=f"http://127.0.0.1:{port}", token_b=token_b)


def ocpi_auth(token: str) -> dict:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


def emsp_register(*, emsp: Emsp, platform_url: str, env: dict) -> None:
    """The platform invites the EMSP (`manage.py ocpi_invite`, which prints token A), the EMSP registers with the
    credentials handshake over HTTP (GET versions and details with token A, POST its credentials with token B),
    and keeps the token C it is given."""
    out = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "ocpi_invite",
            "--country-code",
            EMSP_COUNTRY,
            "--party-id",
            EMSP_PARTY,
            "--name",
            "Bench EMSP",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    match = re.search(r"token A:\s*(\S+)", out.stdout)
    if out.returncode != 0 or not match:
        raise SystemExit(f"ocpi_invite failed:\n{out.stdout}\n{out.stderr}")
    headers = ocpi_auth(match.group(1))
    with httpx.Client(timeout=30) as client:
        versions = client.get(f"{platform_url}/ocpi/versions", headers=headers).json()["data"]
        details_url = next(v["url"] for v in versions if v["version"] == "2.2.1")
        endpoints = client.get(details_url, headers=headers).json()["data"]["endpoints"]
        url_of = {(e["identifier"], e.get("role")): e["url"] for e in endpoints}
        credentials = {
            "token": emsp.token_b,
            "url": f"{emsp.url}/ocpi/versions",
            "roles": [
                {
                    "role": "EMSP",
                    "party_id": EMSP_PARTY,
                    "country_code": EMSP_COUNTRY,
                    "business_details": {"name": "Bench EMSP"},
                }
            ],
        }
        answer = client.post(
            url_of[("credentials", "SENDER")]
            if ("credentials", "SENDER") in url_of
            else next(u for (i, _), u in url_of.items() if i == "credentials"),
            headers=headers,
            json=credentials,
        )
    body = answer.json()
    if answer.status_code != 200 or body.get("status_code") != 1000:
        raise SystemExit(f"credentials handshake failed: HTTP {answer.status_code} {body}")
    emsp.token_c = body["data"]["token"]
    emsp.tokens_url = url_of.get(("tokens", "RECEIVER")) or next(u for (i, _), u in url_of.items() if i == "tokens")


def emsp_tokens_push(*, emsp: Emsp, uids: list[str], threads: int = 8) -> None:
    """The EMSP's drivers: one RFID token per charger of the end-to-end scenario (a token charges at one charger
    at a time), whitelist ALWAYS (no real-time authorization), pushed with OCPI PUTs."""
    headers = ocpi_auth(emsp.token_c)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def put(client: httpx.Client, uid: str) -> None:
        body = {
            "country_code": EMSP_COUNTRY,
            "party_id": EMSP_PARTY,
            "uid": uid,
            "type": "RFID",
            "contract_id": f"NL-BEN-{uid}"[:36],
            "issuer": "Bench EMSP",
            "valid": True,
            "whitelist": "ALWAYS",
            "last_updated": now,
        }
        url = f"{emsp.tokens_url}/{EMSP_COUNTRY}/{EMSP_PARTY}/{uid}"
        for _ in range(5):  # as an EMSP does: a 503 (with Retry-After) is tried again, anything else is a failure
            response = client.put(url, headers=headers, json=body)
            if response.status_code != 503:
                break
            time.sleep(min(float(response.headers.get("Retry-After", "1")), 5.0))
        if response.status_code not in (200, 201):
            raise SystemExit(f"token PUT {uid}: HTTP {response.status_code} {response.text[:300]}")

    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda uid: put(client, uid), uids))


def open_files_soft_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
