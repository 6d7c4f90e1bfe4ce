"""HAProxy in front of N gateway processes, for the scale-out scenario (`x` in bench/run.py).

The balancer runs as deploy/haproxy.cfg's backend does in production (`balance leastconn`, websockets tunnelled),
without TLS: the scenario measures the gateways, not the TLS handshake. Every gateway the scenario may use is
declared up front; those not started yet are `disabled` and enabled later through HAProxy's runtime API (the
stats socket), which is how a process is added while chargers are connected without reloading the balancer.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import servers

BACKEND = "cpo_gateway"


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)


def config_text(*, port: int, gateways: list[int], enabled: int, stats_socket: Path) -> str:
    lines = [
        "global",
        f"    stats socket {stats_socket} mode 600 level admin",
        # Two sockets per charger (client and server side), within the 20,000 open files a process gets here.
        "    maxconn 9000",
        "defaults",
        "    mode http",
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout tunnel 1h",
        "frontend chargers",
        f"    bind 127.0.0.1:{port} backlog 4096",
        f"    default_backend {BACKEND}",
        f"backend {BACKEND}",
        "    balance leastconn",
    ]
    for i, gateway_port in enumerate(gateways, start=1):
        lines.append(f"    server g{i} 127.0.0.1:{gateway_port}" + ("" if i <= enabled else " disabled"))
    return "\n".join(lines) + "\n"


class Balancer:
    """A running HAProxy and its runtime API."""

    def __init__(self, *, gateways: list[int], enabled: int, cpus: list[str] | None):
        binary = haproxy_binary()
        if binary is None:
            raise SystemExit("scenario x needs haproxy (apt-get install haproxy)")
        self.port = servers.free_port()
        self.stats_socket = servers.VAR / f"haproxy-{self.port}.sock"
        config = servers.VAR / f"haproxy-{self.port}.cfg"
        servers.VAR.mkdir(parents=True, exist_ok=True)
        config.write_text(
            config_text(port=self.port, gateways=gateways, enabled=enabled, stats_socket=self.stats_socket)
        )
        self.proc = servers.spawn("haproxy", [binary, "-db", "-f", str(config)], env={}, cpus=cpus)
        servers.wait_listening(self.proc, self.port, timeout=15)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp/"

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.stats_socket))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def enable(self, server: str) -> None:
        """Put a declared server into rotation (runtime API: no reload, connected chargers untouched)."""
        self.command(f"set server {BACKEND}/{server} state ready")

    def sessions(self) -> dict[str, int]:
        """Current sessions (open charger connections) per gateway, from `show stat`."""
        out = self.command("show stat")
        header, *rows = [line for line in out.splitlines() if line.strip()]
        names = header.lstrip("# ").split(",")
        current: dict[str, int] = {}
        for row in rows:
            fields = dict(zip(names, row.split(","), strict=False))
            if fields.get("pxname") == BACKEND and fields.get("svname", "").startswith("g"):
                current[fields["svname"]] = int(fields.get("scur") or 0)
        return current

    def stop(self) -> None:
        self.proc.stop()


def stop_quietly(proc: servers.Proc | None) -> None:
    if proc is not None:
        try:
            proc.stop()
        except (OSError, subprocess.SubprocessError):
            pass
