"""Headers of the TLS-terminating proxy are believed from TRUSTED_PROXIES only (cpo/proxy.py)."""

import ipaddress

from cpo.proxy import scope_from_proxy

PROXIES = [ipaddress.ip_network("10.0.0.5"), ipaddress.ip_network("fd00::/64")]
HEADERS = [
    (b"x-forwarded-for", b"198.51.100.1, 203.0.113.9"),
    (b"x-forwarded-proto", b"https"),
    (b"x-client-cert-cn", b"CP-1"),
    (b"authorization", b"Basic eA=="),
]


def scope(peer: str, kind: str = "websocket") -> dict:
    plain = "ws" if kind == "websocket" else "http"
    return {"type": kind, "client": (peer, 40000), "scheme": plain, "headers": HEADERS}


def test_a_trusted_proxy_gives_the_charger_address_and_tls():
    seen = scope_from_proxy(scope("10.0.0.5"), PROXIES)
    assert seen["client"] == ("203.0.113.9", 0)  # the entry our proxy appended, not what the client claimed
    assert (seen["scheme"], seen["trusted_proxy"]) == ("wss", "10.0.0.5")
    assert (b"x-client-cert-cn", b"CP-1") in seen["headers"]
    assert scope_from_proxy(scope("fd00::7", "http"), PROXIES)["scheme"] == "https"


def test_anyone_else_loses_the_proxy_headers():
    seen = scope_from_proxy(scope("10.0.0.6"), PROXIES)
    assert seen["client"] == ("10.0.0.6", 40000)
    assert seen["scheme"] == "ws"
    assert "trusted_proxy" not in seen
    assert seen["headers"] == [(b"authorization", b"Basic eA==")]


def test_no_trusted_proxy_configured_trusts_nobody():
    assert "trusted_proxy" not in scope_from_proxy(scope("127.0.0.1"), [])
    assert scope_from_proxy({"type": "websocket", "client": None, "headers": HEADERS}, PROXIES)["headers"] == [
        (b"authorization", b"Basic eA==")
    ]
