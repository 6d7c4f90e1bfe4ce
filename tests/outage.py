"""Outages for the tests, without touching the machine's PostgreSQL or Redis: a server reaches them through a TCP
relay the test can cut (every connection dropped, new ones refused, as when the service restarts) and restore; an
SQLite database is taken away by putting a directory where its file was."""

import contextlib
import shutil
import socket
import sqlite3
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.db import connection

from tests.support import database_url_for_tests


class TcpRelay:
    """127.0.0.1:<port> relayed to `target` (host, port) until `cut()`; `restore()` listens on the same port again."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.port = 0
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        if self.listener is not None:
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread in accept(): the port stops listening
            self.listener.close()
            self.listener = None
        with self.lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self.connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.connections.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def url_through(url: str, relay: TcpRelay) -> str:
    """`url` with its host and port replaced by the relay's."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@" if credentials else ""
    return urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{relay.port}"))


class DatabaseOutage:
    """The test database as a server process sees it, and a way to take it away and give it back: PostgreSQL through
    a TcpRelay; SQLite as a copy of the test database (taken now) whose file is replaced by a directory."""

    def __init__(self, directory: Path):
        self.url = database_url_for_tests()
        self.relay: TcpRelay | None = None
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
            self.relay = TcpRelay((parts.hostname or "127.0.0.1", parts.port or 5432))
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
            self.relay.cut()
