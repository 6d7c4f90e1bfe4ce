"""Faults the resilience tests inject: a Redis of our own that we kill and start again on the same port, a TCP
proxy in front of PostgreSQL (or Redis) whose connections we cut (as a network failure or a restart would) and
restore, and a database outage for a server process on either backend (`DatabaseOutage`). Never the machine's own
Redis or PostgreSQL."""

import contextlib
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.db import connection

from tests.support import OUTPUT, database_url_for_tests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class RedisServer:
    """`redis-server` on a free loopback port, without persistence: a kill loses everything it held, as a restart of
    a cache-configured production Redis does."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path: Path = OUTPUT / f"redis-{self.port}.log"

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        OUTPUT.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=open(self.log_path, "a"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{self.log_path.read_text()}")
            time.sleep(0.02)
        return self

    def kill(self) -> None:
        """SIGKILL: clients see their connections reset, nothing is saved."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        self.kill()


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_port`, one thread pair per connection. `cut()` resets every connection
    and refuses new ones (the server is gone); `stall()` keeps them and accepts new ones but forwards nothing either
    way (the server hangs, or the network drops packets: the client waits for an answer that does not come);
    `restore()` accepts and forwards again."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(512)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.up = True
        self.stalled = False
        self.closed = False
        self.accepted = 0
        self.upstream_ports: set[int] = set()  # our side of each connection to the target (pg_stat_activity)
        threading.Thread(target=self._accept, name=f"proxy-{self.port}", daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if not self.up:
                    _reset(client)
                    continue
                self.accepted += 1
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self.lock:
                self.open.update((client, server))
                self.upstream_ports.add(server.getsockname()[1])
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, dest: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while self.stalled and not self.closed:
                    time.sleep(0.05)
                dest.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, dest):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self.lock:
                self.open.discard(source)
                self.open.discard(dest)

    def cut(self) -> None:
        """Every connection through the proxy is reset and new ones are refused (reset at once)."""
        with self.lock:
            self.up = False
            sockets, self.open = list(self.open), set()
        for s in sockets:
            _reset(s)

    def stall(self) -> None:
        """Nothing is forwarded any more, on connections open or new (held until `restore()` or `cut()`)."""
        self.stalled = True

    def restore(self) -> None:
        with self.lock:
            self.up = True
        self.stalled = False

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()


def _reset(s: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a peer that vanished does. Shut down first: a close alone neither wakes a
    thread blocked reading the socket nor closes the connection while that read holds it."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


def url_through(url: str, proxy: "TcpProxy") -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@" if credentials else ""
    return urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{proxy.port}"))


class DatabaseOutage:
    """The test database as a server process sees it, and a way to take it away and give it back: PostgreSQL through
    a TcpProxy; SQLite as a copy of the test database (taken now) whose file is replaced by a directory."""

    def __init__(self, directory: Path):
        self.url = database_url_for_tests()
        self.relay: TcpProxy | None = None
        self.copy: Path | None = None
        if self.url.startswith("sqlite"):
            source = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            self.copy = directory / "outage.sqlite3"
            target = sqlite3.connect(self.copy)
            source.backup(target)
            source.close()
            target.close()
            self.server_url = f"sqlite:///{self.copy}"
        else:
            parts = urlsplit(self.url)
            self.relay = TcpProxy(parts.port or 5432, parts.hostname or "127.0.0.1")
            self.server_url = url_through(self.url, self.relay)

    @property
    def shared(self) -> bool:
        """Whether the server writes to the test database itself (PostgreSQL), not to a copy."""
        return self.relay is not None

    def cut(self) -> None:
        if self.relay is not None:
            self.relay.cut()
        else:
            assert self.copy is not None
            self.copy.rename(self.copy.with_suffix(".away"))
            self.copy.mkdir()

    def restore(self) -> None:
        if self.relay is not None:
            self.relay.restore()
        else:
            assert self.copy is not None
            shutil.rmtree(self.copy)
            self.copy.with_suffix(".away").rename(self.copy)

    def query(self, sql: str, *params) -> list[tuple]:
        """Rows of `sql` (with %s parameters) as the server sees its database."""
        if self.copy is not None:
            with contextlib.closing(sqlite3.connect(self.copy)) as database:
                return database.execute(sql.replace("%s", "?"), params).fetchall()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def close(self) -> None:
        if self.relay is not None:
            self.relay.close()
