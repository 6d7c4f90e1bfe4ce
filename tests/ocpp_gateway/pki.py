"""A test PKI made with `cryptography`: a CA (the platform's, for chargers), the proxy's server certificate, chargers'
keys, CSRs and client certificates; and HAProxy started with the documented configuration (deploy/haproxy.cfg)."""

import datetime
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support import OUTPUT, ROOT

HAPROXY = shutil.which("haproxy") or next(
    (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)), None
)
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy.cfg"


def pem(obj) -> bytes:
    if isinstance(obj, ec.EllipticCurvePrivateKey):
        return obj.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    return obj.public_bytes(serialization.Encoding.PEM)


def name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test CPO"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def csr_for(cn: str, key: ec.EllipticCurvePrivateKey | None = None) -> tuple[str, ec.EllipticCurvePrivateKey]:
    """A charger's certificate signing request for `cn`, PEM, and the key it holds."""
    key = key or new_key()
    request = x509.CertificateSigningRequestBuilder().subject_name(name(cn)).sign(key, hashes.SHA256())
    return pem(request).decode(), key


@dataclass
class TestPki:
    directory: Path
    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey

    @property
    def ca_cert_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key_file(self) -> Path:
        return self.directory / "ca.key"

    def issue(self, cn: str, *, server: bool = False, days: float = 30, key=None, ca=None) -> x509.Certificate:
        ca_cert, ca_key = ca or (self.ca_cert, self.ca_key)
        now = datetime.datetime.now(datetime.UTC)
        key = key or new_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(ca_key, hashes.SHA256())

    def client_files(self, cn: str, *, ca=None) -> tuple[Path, Path]:
        """A charger's client certificate for `cn` (signed by our CA unless `ca` is another one) and its key."""
        key = new_key()
        certificate = self.issue(cn, key=key, ca=ca)
        return self.write(f"client-{cn}-{certificate.serial_number}", certificate, key)

    def write(self, stem: str, certificate: x509.Certificate, key) -> tuple[Path, Path]:
        cert_file, key_file = self.directory / f"{stem}.pem", self.directory / f"{stem}.key"
        cert_file.write_bytes(pem(certificate))
        key_file.write_bytes(pem(key))
        return cert_file, key_file

    def client_context(self, cert_file: Path | None = None, key_file: Path | None = None) -> ssl.SSLContext:
        """A charger's TLS context: trusts the proxy's certificate (our CA), presents a client certificate if given."""
        context = ssl.create_default_context(cafile=str(self.ca_cert_file))
        if cert_file is not None:
            context.load_cert_chain(str(cert_file), str(key_file))
        return context


def make_ca(directory: Path, cn: str = "Test CPO Charger CA") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = new_key()
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def pki_create(directory: Path) -> TestPki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = make_ca(directory)
    pki = TestPki(directory, ca_cert, ca_key)
    pki.ca_cert_file.write_bytes(pem(ca_cert))
    pki.ca_key_file.write_bytes(pem(ca_key))
    return pki


@dataclass
class Proxy:
    port: int
    process: subprocess.Popen
    log_path: Path

    def ocpp_url(self, identity: str) -> str:
        return f"wss://127.0.0.1:{self.port}/ocpp/{identity}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def haproxy_start(*, pki: TestPki, gateway_port: int) -> Proxy:
    """HAProxy with deploy/haproxy.cfg: TLS with a server certificate of our CA, in front of daphne (`gateway_port`)."""
    server_key = new_key()
    server_cert = pki.issue("localhost", server=True, key=server_key, days=2)
    bundle = pki.directory / "proxy-bundle.pem"
    bundle.write_bytes(pem(server_cert) + pem(server_key))
    OUTPUT.mkdir(exist_ok=True)
    for _attempt in range(5):
        port = free_port()
        log_path = OUTPUT / f"haproxy-{port}.log"
        env = {
            **os.environ,
            "CPO_TLS_BIND": f"127.0.0.1:{port}",
            "CPO_TLS_CERT": str(bundle),
            "CPO_CLIENT_CA": str(pki.ca_cert_file),
            "CPO_GATEWAY": f"127.0.0.1:{gateway_port}",
        }
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(HAPROXY_CONFIG)], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return Proxy(port, process, log_path)
            time.sleep(0.05)
        process.kill()
        process.wait()
    raise RuntimeError(f"haproxy did not start:\n{log_path.read_text()}")


def haproxy_stop(proxy: Proxy) -> None:
    proxy.process.terminate()
    try:
        proxy.process.wait(10)
    except subprocess.TimeoutExpired:
        proxy.process.kill()
