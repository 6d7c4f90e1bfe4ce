"""Partner-supplied URLs (issue 10, server-side request forgery): we connect to public addresses only, unless an
allowed network covers the address; a partner learns nothing about our network from our answers; staff see why."""

import ipaddress
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from django.urls import reverse

from ocpi_api.client import ocpi_call
from ocpi_api.commands.results import command_result_deliver
from ocpi_api.egress import address_is_public, address_permitted, networks_parse
from ocpi_api.models import Command, Partner, PartnerStatus
from ocpi_api.services import PARTNER_API_UNUSABLE_MESSAGE
from tests.ocpi_api.emsp import FakeEmsp, auth_header
from tests.ocpi_api.factories import make_partner
from tests.ocpi_api.test_credentials import invite


class Canary:
    """An HTTP server on a loopback address that counts the connections it accepts and answers 302 to /admin/ (like
    our own admin) and an OCPI envelope elsewhere."""

    def __init__(self, host: str = "127.0.0.1"):
        canary = self
        self.paths: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                canary.paths.append(self.path)
                if self.path.startswith("/admin"):
                    self.send_response(302)
                    self.send_header("Location", "/admin/login/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"data": [], "status_code": 1000, "timestamp": "2026-01-01T00:00:00Z"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canary():
    server = Canary()
    yield server
    server.stop()


@pytest.fixture
def production_egress(settings):
    """The production default (DEBUG=0): no network allowed besides public addresses."""
    settings.OCPI_PARTNER_ALLOWED_NETWORKS = []


# --- Which addresses -----------------------------------------------------------------------------------------------

REFUSED = [
    "127.0.0.1",  # loopback
    "127.8.9.10",
    "10.1.2.3",  # private
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # link-local: AWS, GCP, Azure metadata
    "100.64.0.1",  # shared address space (CGNAT)
    "100.100.100.200",  # Alibaba Cloud metadata (in CGNAT)
    "192.0.0.192",  # Oracle Cloud metadata (IETF protocol assignments)
    "0.0.0.0",  # noqa: S104 - unspecified
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "198.18.0.1",  # benchmarking
    "192.0.2.1",  # documentation
    "::1",
    "::",
    "fe80::1",  # IPv6 link-local
    "fd00:ec2::254",  # unique local: AWS metadata over IPv6
    "fc00::1",
    "ff02::1",  # IPv6 multicast
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2001:db8::1",  # documentation
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address):
    assert not address_is_public(ipaddress.ip_address(address))
    assert not address_permitted(ipaddress.ip_address(address), allowed=())


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_permitted(address):
    assert address_permitted(ipaddress.ip_address(address), allowed=())


def test_an_allowed_network_admits_its_addresses_and_their_mapped_forms_only():
    allowed = networks_parse("127.0.0.0/8, 10.1.0.0/16")
    for address in ("127.0.0.1", "::ffff:127.0.0.1", "10.1.200.3"):
        assert address_permitted(ipaddress.ip_address(address), allowed=allowed)
    for address in ("10.2.0.1", "169.254.169.254", "::1"):
        assert not address_permitted(ipaddress.ip_address(address), allowed=allowed)
    with pytest.raises(ValueError, match="not an IP network"):
        networks_parse("10.0.0.0/8,intranet")


def test_production_default_allows_no_network(monkeypatch):
    """Settings without DEBUG: OCPI_PARTNER_ALLOWED_NETWORKS is empty unless the environment says otherwise."""
    import importlib

    import cpo.settings

    monkeypatch.setenv("DEBUG", "0")
    monkeypatch.setenv("SECRET_KEY", "x" * 50)
    monkeypatch.delenv("OCPI_PARTNER_ALLOWED_NETWORKS", raising=False)
    try:
        assert importlib.reload(cpo.settings).OCPI_PARTNER_ALLOWED_NETWORKS == []
        monkeypatch.setenv("DEBUG", "1")
        assert importlib.reload(cpo.settings).OCPI_PARTNER_ALLOWED_NETWORKS == ["127.0.0.0/8", "::1/128"]
    finally:
        monkeypatch.undo()
        importlib.reload(cpo.settings)


# --- The findings: registering with internal URLs ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_registering_with_internal_urls_gets_one_generic_answer_and_connects_nowhere(
    ocpi_live, production_egress, canary
):
    """Finding (issue 10): a partner registering with credentials `url` http://127.0.0.1:6395/ heard "Server
    disconnected", :8105/admin/ "HTTP 302", :1 "Connection refused", 169.254.169.254 "HTTP 403": a port scanner of
    our network. Now every one gets the same 3001 and no socket is opened; staff see the detail on the partner."""
    token_a, versions_url = invite(ocpi_live)
    emsp = FakeEmsp()
    live_port = ocpi_live.url.rsplit(":", 1)[1]
    urls = [
        f"http://127.0.0.1:{canary.port}/",
        f"http://127.0.0.1:{canary.port}/admin/",
        f"http://127.0.0.1:{live_port}/admin/",
        "http://127.0.0.1:1/",
        "http://169.254.169.254/latest/meta-data/",
        f"http://localhost:{canary.port}/ocpi/versions",
        f"http://[::ffff:127.0.0.1]:{canary.port}/",
        "http://10.255.255.1/ocpi/versions",
    ]
    answers = []
    for url in urls:
        credentials = {**emsp.credentials(emsp.token_b), "url": url}
        response = httpx.post(
            f"{ocpi_live.url}/ocpi/2.2.1/credentials",
            json=credentials,
            headers={"Authorization": auth_header(token_a)},
            timeout=30,
        )
        body = response.json()
        answers.append((response.status_code, body["status_code"], body["status_message"]))
        partner = Partner.objects.get()
        assert partner.status == PartnerStatus.INVITED
        assert "not a public address" in partner.last_error, partner.last_error
    assert set(answers) == {(200, 3001, PARTNER_API_UNUSABLE_MESSAGE)}
    assert canary.paths == []
    assert Partner.objects.get().last_error_at is not None


@pytest.mark.django_db(transaction=True)
def test_staff_see_why_a_partner_could_not_register(ocpi_live, production_egress, admin_client):
    token_a, _ = invite(ocpi_live)
    emsp = FakeEmsp()
    credentials = {**emsp.credentials(emsp.token_b), "url": "http://169.254.169.254/latest/meta-data/"}
    headers = {"Authorization": auth_header(token_a)}
    httpx.post(f"{ocpi_live.url}/ocpi/2.2.1/credentials", json=credentials, headers=headers, timeout=30)
    partner = Partner.objects.get()
    page = admin_client.get(reverse("dashboard:partner", args=[partner.pk])).content.decode()
    assert "169.254.169.254 resolves to 169.254.169.254: not a public address" in page
    admin_page = admin_client.get(reverse("admin:ocpi_api_partner_change", args=[partner.pk])).content.decode()
    assert "not a public address" in admin_page


@pytest.mark.django_db(transaction=True)
def test_a_partner_allowed_a_lab_network_registers_there(ocpi_live, production_egress):
    """Staff allow one partner its lab network (Partner.allowed_networks); others still get only public addresses."""
    token_a, versions_url = invite(ocpi_live)
    emsp = FakeEmsp().start()
    try:
        assert emsp.register_with(versions_url=versions_url, token_a=token_a).json()["status_code"] == 3001
        Partner.objects.update(allowed_networks="127.0.0.0/8")
        assert emsp.register_with(versions_url=versions_url, token_a=token_a).json()["status_code"] == 1000
    finally:
        emsp.stop()
    assert Partner.objects.get().status == PartnerStatus.REGISTERED
    assert Partner.objects.get().last_error == ""


# --- Redirects and DNS -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_redirects_are_not_followed(canary):
    """A partner endpoint that redirects (here to our admin) is an answer, not a hop: no second request."""
    exchange = ocpi_call("GET", f"http://127.0.0.1:{canary.port}/admin/", token="t")
    assert exchange.http_status == 302 and not exchange.ok
    assert canary.paths == ["/admin/"]


def test_the_connection_goes_to_the_vetted_address_not_a_second_lookup(monkeypatch, settings):
    """DNS rebinding: a name that resolves to an allowed address and an internal one. We connect only to the vetted
    address, resolved once per connection (the resolver is the one part simulated: no DNS server in the test)."""
    settings.OCPI_PARTNER_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    vetted, internal = Canary("127.0.0.2"), None
    try:
        internal = socket.socket()
        internal.bind(("127.0.0.1", vetted.port))
        internal.listen()
        internal.settimeout(0.2)
        answers = iter(
            [
                [("127.0.0.1", vetted.port), ("127.0.0.2", vetted.port)],  # the lookup we vet
                [("127.0.0.1", vetted.port)],  # what a rebinding DNS would say next time
            ]
        )
        real = socket.getaddrinfo

        def rebinding(host, port, *args, **kwargs):
            if host != "partner.example":
                return real(host, port, *args, **kwargs)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", sockaddr) for sockaddr in next(answers)]

        monkeypatch.setattr(socket, "getaddrinfo", rebinding)
        exchange = ocpi_call("GET", f"http://partner.example:{vetted.port}/ocpi/versions", token="t")
        assert exchange.http_status == 200, exchange.error
        assert vetted.paths == ["/ocpi/versions"]
        with pytest.raises(TimeoutError):
            internal.accept()  # nobody knocked at 127.0.0.1
    finally:
        vetted.stop()
        if internal is not None:
            internal.close()


def test_a_name_that_resolves_only_to_internal_addresses_is_refused_with_the_detail(settings):
    settings.OCPI_PARTNER_ALLOWED_NETWORKS = []
    exchange = ocpi_call("GET", "http://localhost:1/ocpi/versions", token="t")
    assert exchange.http_status is None
    assert "AddressRefused" in exchange.error and "not a public address" in exchange.error


# --- Everywhere we call a partner ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_command_result_is_not_posted_to_an_internal_address(production_egress, canary):
    """Even on the host of the partner's versions URL: where the name points is checked when we connect."""
    partner = make_partner(
        token="token-one", versions_url=f"http://127.0.0.1:{canary.port}/ocpi/versions", outgoing_token="ours"
    )
    cmd = Command.objects.create(
        partner=partner,
        command="START_SESSION",
        request={},
        response_url=f"http://127.0.0.1:{canary.port}/results/1",
        response="ACCEPTED",
        state="ANSWERED",
        result="ACCEPTED",
        result_body={"result": "ACCEPTED"},
    )
    assert command_result_deliver(command_pk=cmd.pk, last_attempt=True) is False
    cmd.refresh_from_db()
    assert cmd.state == "UNDELIVERED" and "not a public address" in cmd.delivery_error
    assert canary.paths == []
