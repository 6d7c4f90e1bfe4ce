"""Headers a TLS-terminating proxy adds, believed only from the proxies the operator names (TRUSTED_PROXIES).

Behind the proxy (deploy/haproxy.cfg) daphne's peer is the proxy: the charger's address, whether the connection was
TLS (so the onboarding page prints wss:// URLs and a profile 2 station may log in) and, for profile 3, the verified
client certificate's common name arrive as headers. From a trusted proxy this middleware writes the first two into
the ASGI scope (`client`, `scheme`) and marks the scope `trusted_proxy`; from any other peer it removes all of them,
so nobody reaching daphne directly can claim a certificate or a TLS connection. Daphne's own `--proxy-headers`
believes them from anyone and replaces the peer address this check needs: don't use it.
"""

import ipaddress
import logging

from django.conf import settings

logger = logging.getLogger(__name__)

FORWARDED_FOR = b"x-forwarded-for"
FORWARDED_PROTO = b"x-forwarded-proto"


def trusted_proxy_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(entry, strict=False) for entry in settings.TRUSTED_PROXIES]


def proxy_headers() -> set[bytes]:
    """The headers only a trusted proxy may send."""
    return {FORWARDED_FOR, FORWARDED_PROTO, settings.OCPP_CLIENT_CERT_CN_HEADER.lower().encode("latin-1")}


def peer_is_trusted_proxy(address: str, networks) -> bool:
    try:
        peer = ipaddress.ip_address(address)
    except ValueError:  # a unix socket or no peer at all
        return False
    return any(peer in network for network in networks)


def scope_from_proxy(scope: dict, networks) -> dict:
    """The scope as the application should see it (a copy; the server's is left alone)."""
    peer = (scope.get("client") or ("",))[0] or ""
    headers = scope.get("headers") or []
    if not peer_is_trusted_proxy(peer, networks):
        own = proxy_headers()
        if any(name.lower() in own for name, _ in headers):
            return {**scope, "headers": [(n, v) for n, v in headers if n.lower() not in own]}
        return scope
    scope = {**scope, "trusted_proxy": peer}
    values = {name.lower(): value.decode("latin-1") for name, value in headers}
    forwarded_for = [a.strip() for a in values.get(FORWARDED_FOR, "").split(",") if a.strip()]
    if forwarded_for:  # the last entry is the one our proxy appended: the address that connected to it
        scope["client"] = (forwarded_for[-1], 0)
    proto = values.get(FORWARDED_PROTO, "").strip().lower()
    if proto in ("http", "https"):
        secure = proto == "https"
        scope["scheme"] = ("wss" if secure else "ws") if scope["type"] == "websocket" else proto
    return scope


def trusted_proxy_headers(app):
    """ASGI middleware: see the module docstring."""
    networks = trusted_proxy_networks()

    async def middleware(scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            scope = scope_from_proxy(scope, networks)
        return await app(scope, receive, send)

    return middleware
