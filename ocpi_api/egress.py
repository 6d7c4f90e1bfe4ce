"""Where our OCPI client may connect: partners' URLs are theirs to choose, so every outbound call is vetted
(server-side request forgery).

A call connects only to a public address: loopback, private, link-local (cloud metadata at 169.254.169.254),
shared (CGNAT, 100.64/10), multicast, unspecified and reserved addresses, IPv6 unique-local and link-local, and IPv4
addresses wrapped in IPv6 (mapped, 6to4, NAT64) are refused, unless an allowed network covers them
(settings.OCPI_PARTNER_ALLOWED_NETWORKS for every partner, `Partner.allowed_networks` for one).

The check runs at connect time on the addresses the name resolved to, and the socket is opened to the vetted address
itself (an httpcore network backend), so a name that resolves to a public address when checked and to an internal
one when connecting (DNS rebinding) gets nowhere. TLS still verifies the certificate against the host name.
Redirects are not followed (`ocpi_api.client`)."""

import ipaddress
import socket
import threading
import typing
from collections.abc import Iterable
from functools import cache

import httpcore
import httpx
from django.conf import settings
from django.core.exceptions import ValidationError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Not global, though some Python versions' tables say so: IETF protocol assignments (Oracle Cloud's metadata service is
# 192.0.0.192), and the whole of 2001::/23 (Teredo, benchmarking, ORCHID).
NOT_GLOBAL = (ipaddress.ip_network("192.0.0.0/24"), ipaddress.ip_network("2001::/23"))


class AddressRefused(httpx.TransportError):
    """The URL's host resolves to no address we may connect to."""


def networks_parse(value: str | Iterable[str]) -> tuple[Network, ...]:
    """'127.0.0.0/8, ::1' -> networks; ValueError names the entry that is not one."""
    items = value.split(",") if isinstance(value, str) else value
    networks = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP network (such as 10.0.0.0/8 or ::1)") from None
    return tuple(networks)


def validate_networks(value: str) -> None:
    """Model field validator for a comma-separated list of networks."""
    try:
        networks_parse(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to an IPv4 host (mapped, 6to4, NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_is_public(address: Address) -> bool:
    """A globally routable unicast address (the one an IPv6 address wraps, for IPv4 in IPv6)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_is_public(embedded)
    if any(address in network for network in NOT_GLOBAL if network.version == address.version):
        return False
    return address.is_global and not (
        address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_private
    )


def address_permitted(address: Address, *, allowed: tuple[Network, ...]) -> bool:
    """Public, or inside an allowed network (an IPv4-in-IPv6 address is also compared in its IPv4 form)."""
    forms: list[Address] = [address]
    if isinstance(address, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(address)) is not None:
        forms.append(embedded)
    if any(form in network for form in forms for network in allowed if form.version == network.version):
        return True
    return address_is_public(address)


def allowed_networks(*, partner_networks: str = "") -> tuple[Network, ...]:
    """The networks a partner's URLs may point into: the platform-wide setting plus the partner's own."""
    return networks_parse(settings.OCPI_PARTNER_ALLOWED_NETWORKS) + networks_parse(partner_networks)


def _resolve(host: str, port: int) -> list[Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"{host}: cannot resolve ({exc})") from exc
    addresses: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class VettingBackend(httpcore.NetworkBackend):
    """httpcore's own socket backend, connecting only to the vetted addresses of a host."""

    def __init__(self, *, allowed: tuple[Network, ...]) -> None:
        self._allowed = allowed
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _resolve(host, port)
        permitted = [a for a in addresses if address_permitted(a, allowed=self._allowed)]
        if not permitted:
            shown = ", ".join(str(a) for a in addresses) or "nothing"
            raise AddressRefused(f"{host} resolves to {shown}: not a public address")
        error: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in permitted:
            try:
                return self._backend.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise AddressRefused("unix sockets are not partner addresses")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


_ssl_lock = threading.Lock()


@cache
def _ssl_context_made():
    return httpx.create_ssl_context()


def _ssl_context():
    """One SSL context per process (loading the CA bundle costs tens of milliseconds): a delivery run's threads that
    need it at once wait for the first to make it instead of each making one."""
    with _ssl_lock:
        return _ssl_context_made()


class PartnerTransport(httpx.HTTPTransport):
    """httpx's transport with the vetting backend: no proxies from the environment, no unix sockets."""

    def __init__(self, *, allowed: tuple[Network, ...]) -> None:
        super().__init__(verify=_ssl_context(), trust_env=False)
        # httpx builds its httpcore pool without a way to pass a network backend; same pool, vetting backend.
        backend = VettingBackend(allowed=allowed)
        self._pool = httpcore.ConnectionPool(ssl_context=_ssl_context(), network_backend=backend)
