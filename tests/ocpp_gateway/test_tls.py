"""Security profiles 2 and 3 through a real HAProxy (deploy/haproxy.cfg) in front of a live daphne, with a test CA made
by `cryptography`: chargers over wss:// with Basic auth or a client certificate, and a charger's certificate
lifecycle (SignCertificate -> CertificateSigned)."""

import asyncio
import contextlib
import json
import re
import socket
import ssl

import httpx
import pytest
import websockets
from cryptography import x509
from cryptography.x509.oid import NameOID
from django.contrib.auth.models import Group, User
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from cpo.models import ChargingStation, SecurityProfile
from ocpp_gateway.models import StationAuthFailure, StationCertificate
from tests.ocpp_gateway.chargers import Charger16, Charger201, basic_auth
from tests.ocpp_gateway.pki import HAPROXY, csr_for, haproxy_start, haproxy_stop, make_ca, pki_create
from tests.support import await_until, start_daphne, stop, wait_until

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (.ci/run installs it with apt-get)"),
]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return pki_create(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_daphne(pki, django_db_setup, django_db_blocker):
    """The gateway as deployed behind the proxy: it believes the proxy's headers from 127.0.0.1 only, and signs
    chargers' CSRs with the test CA."""
    server = start_daphne(
        "tls",
        TRUSTED_PROXIES="127.0.0.1",
        OCPP_CA_CERT_FILE=str(pki.ca_cert_file),
        OCPP_CA_KEY_FILE=str(pki.ca_key_file),
    )
    yield server
    stop(server)


@pytest.fixture(scope="module")
def proxy(pki, tls_daphne):
    proxy = haproxy_start(pki=pki, gateway_port=tls_daphne.port)
    yield proxy
    haproxy_stop(proxy)


class CertificateCharger16(Charger16):
    """Installs the certificate the CSMS signed for it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.signed: asyncio.Queue = asyncio.Queue()

    @on(Action16.certificate_signed)
    def on_certificate_signed(self, certificate_chain, **kwargs):
        self.signed.put_nowait(certificate_chain)
        return result16.CertificateSigned(status="Accepted")


class CertificateCharger201(Charger201):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.signed: asyncio.Queue = asyncio.Queue()

    @on(Action201.certificate_signed)
    def on_certificate_signed(self, certificate_chain, **kwargs):
        self.signed.put_nowait((certificate_chain, kwargs.get("certificate_type")))
        return result201.CertificateSigned(status="Accepted")


@contextlib.asynccontextmanager
async def charger_over_tls(url, identity, *, context, secret=None, version="1.6"):
    subprotocol = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
    cls = CertificateCharger16 if version == "1.6" else CertificateCharger201
    headers = basic_auth(identity, secret) if secret else {}
    async with websockets.connect(url, subprotocols=[subprotocol], additional_headers=headers, ssl=context) as ws:
        cp = cls(identity, ws, response_timeout=10)
        task = asyncio.create_task(cp.start())
        try:
            yield cp
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await task


async def boot16(cp) -> str:
    answer = await cp.call(call16.BootNotification(charge_point_vendor="Test", charge_point_model="TLS-1"))
    return answer.status


def handshake(url, identity, *, context, secret=None) -> int | str:
    """`101` when the charger is admitted, else the HTTP status of the refused handshake."""

    async def run():
        try:
            async with charger_over_tls(url, identity, context=context, secret=secret) as cp:
                return f"101 {await boot16(cp)}"
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    return asyncio.run(run())


def test_profile_2_charger_over_wss_with_basic_auth_boots(tls_daphne, proxy, pki, station_factory):
    """A profile 2 station: Basic auth over TLS through the proxy boots; the same credentials over plain ws:// (not
    through the proxy) are refused, as are wrong ones over TLS."""
    _, secret = station_factory("CP-TLS2", security_profile=SecurityProfile.BASIC_TLS)
    context = pki.client_context()
    assert handshake(proxy.ocpp_url("CP-TLS2"), "CP-TLS2", context=context, secret=secret) == "101 Accepted"
    assert ChargingStation.objects.get(identity="CP-TLS2").vendor == "Test"
    assert handshake(proxy.ocpp_url("CP-TLS2"), "CP-TLS2", context=context, secret="wrong") == 403

    async def plain():
        try:
            url, headers = tls_daphne.ocpp_url("CP-TLS2"), basic_auth("CP-TLS2", secret)
            async with websockets.connect(url, subprotocols=["ocpp1.6"], additional_headers=headers):
                return 101
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(plain()) == 403
    reasons = set(StationAuthFailure.objects.filter(identity="CP-TLS2").values_list("reason", flat=True))
    assert reasons == {StationAuthFailure.Reason.BAD_SECRET, StationAuthFailure.Reason.NO_TLS}


def test_profile_3_charger_with_a_client_certificate_of_its_identity_boots(tls_daphne, proxy, pki, station_factory):
    """Profile 3: the proxy verifies the certificate, the gateway binds its CN to the identity. A certificate of
    another station, no certificate, or one of another CA are refused; nothing else is asked (no Basic auth)."""
    station_factory("CP-CERT-A", security_profile=SecurityProfile.CLIENT_CERTIFICATE)
    station_factory("CP-CERT-B", security_profile=SecurityProfile.CLIENT_CERTIFICATE)
    own = pki.client_context(*pki.client_files("CP-CERT-A"))
    other_station = pki.client_context(*pki.client_files("CP-CERT-B"))

    assert handshake(proxy.ocpp_url("CP-CERT-A"), "CP-CERT-A", context=own) == "101 Accepted"
    assert handshake(proxy.ocpp_url("CP-CERT-A"), "CP-CERT-A", context=other_station) == 403
    assert handshake(proxy.ocpp_url("CP-CERT-A"), "CP-CERT-A", context=pki.client_context()) == 403
    wait_until(lambda: "client certificate of 'CP-CERT-B', not of this identity" in tls_daphne.log())
    reasons = list(StationAuthFailure.objects.filter(identity="CP-CERT-A").values_list("reason", flat=True))
    assert sorted(reasons) == sorted(
        [StationAuthFailure.Reason.CERTIFICATE_MISMATCH, StationAuthFailure.Reason.NO_CERTIFICATE]
    )

    # A certificate the CA did not sign never gets past TLS.
    foreign_ca = make_ca(pki.directory, cn="Someone else's CA")
    foreign = pki.client_context(*pki.client_files("CP-CERT-A", ca=foreign_ca))
    with pytest.raises((ssl.SSLError, ConnectionError, websockets.InvalidMessage, EOFError)):
        handshake(proxy.ocpp_url("CP-CERT-A"), "CP-CERT-A", context=foreign)


def test_the_certificate_header_is_believed_only_from_the_trusted_proxy(tls_daphne, station_factory):
    """Whoever reaches daphne directly (here from 127.0.0.3, not the trusted 127.0.0.1) and claims TLS and a
    certificate in the proxy's headers is refused: the headers are dropped before the gateway sees them."""
    station_factory("CP-CERT-F", security_profile=SecurityProfile.CLIENT_CERTIFICATE)
    lines = [
        "GET /ocpp/CP-CERT-F HTTP/1.1",
        f"Host: 127.0.0.1:{tls_daphne.port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: ocpp1.6",
        "X-Forwarded-Proto: https",
        "X-Client-Cert-CN: CP-CERT-F",
    ]
    with socket.create_connection(("127.0.0.1", tls_daphne.port), timeout=10, source_address=("127.0.0.3", 0)) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = sock.recv(4096)
    assert answer.split(b" ", 2)[1] == b"403"
    assert StationAuthFailure.objects.get(identity="CP-CERT-F").reason == StationAuthFailure.Reason.NO_TLS


def signed_leaf(chain: str) -> x509.Certificate:
    return x509.load_pem_x509_certificates(chain.encode())[0]


def installed(serial: str) -> bool:
    return StationCertificate.objects.filter(serial_number=serial, status=StationCertificate.Status.INSTALLED).exists()


def test_charger_sends_sign_certificate_and_receives_a_certificate_of_its_identity(
    tls_daphne, proxy, pki, station_factory
):
    """1.6 security extension: a profile 2 charger sends a CSR for its identity -> Accepted, then CertificateSigned
    with a certificate chaining to the CA, CN = identity, recorded as installed. With it the charger, moved to
    profile 3, logs in by certificate; a new CSR later gets a new certificate (re-signing)."""
    _, secret = station_factory("CP-LIFE", security_profile=SecurityProfile.BASIC_TLS)
    csr, key = csr_for("CP-LIFE")

    async def sign(context, secret=None):
        async with charger_over_tls(proxy.ocpp_url("CP-LIFE"), "CP-LIFE", context=context, secret=secret) as cp:
            assert await boot16(cp) == "Accepted"
            answer = await cp.call(call16.SignCertificate(csr=csr))
            assert answer.status == "Accepted"
            chain = await asyncio.wait_for(cp.signed.get(), 10)
            serial = f"{signed_leaf(chain).serial_number:X}"
            await await_until(lambda: installed(serial))  # connected until our answer is in
            return chain

    chain = asyncio.run(sign(pki.client_context(), secret))
    leaf = signed_leaf(chain)
    leaf.verify_directly_issued_by(pki.ca_cert)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-LIFE"
    assert leaf.public_key() == key.public_key()
    record = StationCertificate.objects.get(station__identity="CP-LIFE", status=StationCertificate.Status.INSTALLED)
    assert record.serial_number == f"{leaf.serial_number:X}"
    assert record.not_after == leaf.not_valid_after_utc
    assert "CN=CP-LIFE" in record.subject

    # The station now logs in with the certificate we signed.
    ChargingStation.objects.filter(identity="CP-LIFE").update(security_profile=SecurityProfile.CLIENT_CERTIFICATE)
    cert_file, key_file = pki.write("signed-CP-LIFE", leaf, key)
    by_certificate = pki.client_context(cert_file, key_file)
    second_chain = asyncio.run(sign(by_certificate))
    assert signed_leaf(second_chain).serial_number != leaf.serial_number
    assert StationCertificate.objects.filter(station__identity="CP-LIFE", status="installed").count() == 2


def test_a_csr_for_another_identity_is_rejected_and_nothing_is_signed(tls_daphne, proxy, pki, station_factory):
    _, secret = station_factory("CP-GREEDY", security_profile=SecurityProfile.BASIC_TLS)
    station_factory("CP-VICTIM")

    async def run():
        async with charger_over_tls(
            proxy.ocpp_url("CP-GREEDY"), "CP-GREEDY", context=pki.client_context(), secret=secret
        ) as cp:
            await boot16(cp)
            answer = await cp.call(call16.SignCertificate(csr=csr_for("CP-VICTIM")[0]))
            garbage = await cp.call(call16.SignCertificate(csr="-----BEGIN CERTIFICATE REQUEST-----\nnope"))
            await asyncio.sleep(0.5)
            return answer.status, garbage.status, cp.signed.empty()

    assert asyncio.run(run()) == ("Rejected", "Rejected", True)
    assert not StationCertificate.objects.exists()
    assert "the CSR's common name 'CP-VICTIM' is not the station's identity" in tls_daphne.log()


def test_a_201_station_gets_its_charging_station_certificate(tls_daphne, proxy, pki, station_factory):
    """2.0.1 A02: SignCertificate (ChargingStationCertificate) -> CertificateSigned of that type; V2G refused."""
    _, secret = station_factory("CP-201-CERT", security_profile=SecurityProfile.BASIC_TLS)
    csr, _ = csr_for("CP-201-CERT")

    async def run():
        async with charger_over_tls(
            proxy.ocpp_url("CP-201-CERT"), "CP-201-CERT", context=pki.client_context(), secret=secret, version="2.0.1"
        ) as cp:
            boot = await cp.call(
                call201.BootNotification(charging_station={"model": "TLS-2", "vendor_name": "Test"}, reason="PowerUp")
            )
            assert boot.status == "Accepted"
            v2g = await cp.call(call201.SignCertificate(csr=csr, certificate_type="V2GCertificate"))
            answer = await cp.call(call201.SignCertificate(csr=csr, certificate_type="ChargingStationCertificate"))
            chain, certificate_type = await asyncio.wait_for(cp.signed.get(), 10)
            serial = f"{signed_leaf(chain).serial_number:X}"
            await await_until(lambda: installed(serial))
            return v2g.status, answer.status, (chain, certificate_type)

    v2g, status, (chain, certificate_type) = asyncio.run(run())
    assert (v2g, status, certificate_type) == ("Rejected", "Accepted", "ChargingStationCertificate")
    signed_leaf(chain).verify_directly_issued_by(pki.ca_cert)


def test_frames_through_the_proxy_are_answered(proxy, tls_daphne, pki, station_factory):
    """Raw frames pass the proxy both ways (no buffering of websocket frames)."""
    _, secret = station_factory("CP-RAW", security_profile=SecurityProfile.BASIC_TLS)

    async def run():
        async with websockets.connect(
            proxy.ocpp_url("CP-RAW"),
            subprotocols=["ocpp1.6"],
            additional_headers=basic_auth("CP-RAW", secret),
            ssl=pki.client_context(),
        ) as ws:
            await ws.send('[2, "h1", "Heartbeat", {}]')
            return json.loads(await asyncio.wait_for(ws.recv(), 5))

    answer = asyncio.run(run())
    assert answer[:2] == [3, "h1"]


def csrf_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_onboarding_through_the_proxy_prints_a_wss_url(tls_daphne, proxy, pki, location):
    """An admin onboarding a station through the TLS proxy is told to configure wss://, not ws://."""
    admin = User.objects.create_user("tls-admin", password="a long enough password 1")
    admin.groups.add(Group.objects.get_or_create(name="admin")[0])
    base = f"https://127.0.0.1:{proxy.port}"
    with httpx.Client(base_url=base, verify=pki.client_context(), headers={"Origin": base}) as browser:
        login = browser.get("/login/")
        answer = browser.post(
            "/login/",
            data={
                "username": "tls-admin",
                "password": "a long enough password 1",
                "csrfmiddlewaretoken": csrf_token(login.text),
            },
        )
        assert answer.status_code == 302, answer.text[:500]
        form = browser.get("/onboarding/")
        done = browser.post(
            "/onboarding/",
            data={
                "identity": "CP-ONBOARD",
                "location": location.pk,
                "evses": 1,
                "csrfmiddlewaretoken": csrf_token(form.text),
            },
        )
    assert done.status_code == 200, done.text[:500]
    assert f"wss://127.0.0.1:{proxy.port}/ocpp/CP-ONBOARD" in done.text
