"""Security (1.6 security extension; 2.0.1 block A, A02/A03): the station's certificate lifecycle.

A station sends a certificate signing request (SignCertificate); we check that the CSR is well formed and names the
station's own identity as its common name, answer Accepted, and after the answer sign it with the platform's CA
(OCPP_CA_CERT_FILE / OCPP_CA_KEY_FILE) and send it back (CertificateSigned). Every certificate we sign is kept
(StationCertificate) with the station's answer; the newest installed one is the station's current certificate, and
a station whose current certificate is about to expire is alerted about (a daily task, and its dashboard page).
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.utils import timezone

from cpo.alerts import alert_raise, alert_resolve
from cpo.models import Alert, AlertKind, ChargingStation
from ocpp_gateway.models import StationCertificate
from ocpp_gateway.selectors import station_certificates_current

logger = logging.getLogger(__name__)

# We sign certificates for the station's connection to us; V2G (ISO 15118) certificates come from the V2G PKI.
SIGNED_CERTIFICATE_TYPES = ("", "ChargingStationCertificate")
# 2.0.1 A02: the charger waits for CertificateSigned; a chain we send must fit CertificateSigned's 10,000 characters.
CERTIFICATE_CHAIN_MAX_LENGTH = 10_000
# Certificates start a little in the past: a station whose clock is slightly behind still accepts them.
BACKDATE = timedelta(minutes=5)


class CertificateAuthorityError(Exception):
    """The CA is not configured or cannot be read."""


@dataclass(frozen=True)
class CertificateAuthority:
    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey


def certificate_authority_load() -> CertificateAuthority:
    """The CA from OCPP_CA_CERT_FILE and OCPP_CA_KEY_FILE (PEM), read on every use so a renewed CA needs no restart."""
    if not settings.OCPP_CA_CERT_FILE or not settings.OCPP_CA_KEY_FILE:
        raise CertificateAuthorityError("no CA configured (OCPP_CA_CERT_FILE, OCPP_CA_KEY_FILE)")
    try:
        certificate = x509.load_pem_x509_certificate(Path(settings.OCPP_CA_CERT_FILE).read_bytes())
        private_key = serialization.load_pem_private_key(Path(settings.OCPP_CA_KEY_FILE).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertificateAuthorityError(f"the CA cannot be read: {exc}") from exc
    if not isinstance(
        private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
    ):
        raise CertificateAuthorityError("the CA key cannot sign certificates")
    return CertificateAuthority(certificate, private_key)


def common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = values[0].value if values else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def check_certificate_signing_request(
    *, identity: str, csr: str, certificate_type: str = ""
) -> x509.CertificateSigningRequest:
    """The station's CSR parsed, or ValueError saying why we don't sign it: not PEM, a bad self-signature, a common
    name that is not the station's identity (it would let one station log in as another), or a V2G certificate."""
    if certificate_type not in SIGNED_CERTIFICATE_TYPES:
        raise ValueError(f"{certificate_type} certificates are not signed by this CSMS")
    try:
        request = x509.load_pem_x509_csr(csr.encode("utf-8"))
    except ValueError:
        raise ValueError("the CSR is not a PEM encoded PKCS #10 request") from None
    if not request.is_signature_valid:
        raise ValueError("the CSR's signature is not valid")
    cn = common_name(request.subject)
    if cn != identity:
        raise ValueError(f"the CSR's common name {cn!r} is not the station's identity")
    return request


def station_csr_check(*, station_pk: int, csr: str, certificate_type: str = "") -> str:
    """Why the station's SignCertificate is answered Rejected; empty when it is Accepted (and will be signed)."""
    identity = ChargingStation.objects.values_list("identity", flat=True).get(pk=station_pk)
    try:
        certificate_authority_load()
        check_certificate_signing_request(identity=identity, csr=csr, certificate_type=certificate_type)
    except (CertificateAuthorityError, ValueError) as exc:
        return str(exc)
    return ""


def certificate_chain_pem(*, certificate: x509.Certificate, ca: CertificateAuthority) -> str:
    """The leaf first, then the CA when it is an intermediate (a root is the station's trust anchor, not sent)."""
    chain = certificate.public_bytes(serialization.Encoding.PEM)
    if ca.certificate.issuer != ca.certificate.subject:
        chain += ca.certificate.public_bytes(serialization.Encoding.PEM)
    return chain.decode("ascii")


@dataclass(frozen=True)
class SignedCertificate:
    certificate_pk: int
    certificate_chain: str


def station_certificate_sign(*, station_pk: int, csr: str, certificate_type: str = "") -> SignedCertificate:
    """Sign the station's CSR with the CA and record the certificate (status SENT until the station answers).

    Checks the CSR again (the station's identity may have been changed meanwhile). Raises ValueError or
    CertificateAuthorityError when it cannot be signed."""
    station = ChargingStation.objects.only("identity").get(pk=station_pk)
    request = check_certificate_signing_request(identity=station.identity, csr=csr, certificate_type=certificate_type)
    ca = certificate_authority_load()
    now = timezone.now().replace(microsecond=0)  # X.509 times have whole seconds
    not_before = now - BACKDATE
    not_after = min(now + timedelta(days=settings.OCPP_CERTIFICATE_VALIDITY_DAYS), ca.certificate.not_valid_after_utc)
    public_key = request.public_key()
    serial = int.from_bytes(secrets.token_bytes(19), "big") | 1  # positive, at most 20 octets (RFC 5280 4.1.2.2)
    builder = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                data_encipherment=False,
                key_agreement=isinstance(public_key, ec.EllipticCurvePublicKey),
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.certificate.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    edwards = isinstance(ca.private_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
    algorithm = None if edwards else hashes.SHA256()
    certificate = builder.sign(ca.private_key, algorithm)
    chain = certificate_chain_pem(certificate=certificate, ca=ca)
    if len(chain) > CERTIFICATE_CHAIN_MAX_LENGTH:
        raise ValueError(f"the certificate chain is longer than {CERTIFICATE_CHAIN_MAX_LENGTH} characters")
    row = StationCertificate.objects.create(
        station_id=station_pk,
        serial_number=f"{serial:X}",
        subject=request.subject.rfc4514_string()[:255],
        certificate_type=certificate_type or "ChargingStationCertificate",
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    )
    logger.info("%s: certificate %s signed, valid until %s", station.identity, row.serial_number, not_after)
    return SignedCertificate(row.pk, chain)


def station_certificate_answered(*, certificate_pk: int, status: str, answer: str = "") -> None:
    """Record the station's CertificateSigned status (Accepted / Rejected), or with `status` empty why none came."""
    Status = StationCertificate.Status
    recorded = {"Accepted": Status.INSTALLED, "Rejected": Status.REJECTED}.get(status, Status.FAILED)
    StationCertificate.objects.filter(pk=certificate_pk).update(status=recorded, answer=(answer or status)[:255])


def certificates_expiry_alert() -> list[StationCertificate]:
    """Log an ALERT line and raise an alert for every station whose current certificate expires within
    OCPP_CERTIFICATE_EXPIRY_ALERT_DAYS (or has expired): it must send a new CSR before then, or it cannot log in.
    Alerts of stations renewed since are resolved."""
    now = timezone.now()
    horizon = now + timedelta(days=settings.OCPP_CERTIFICATE_EXPIRY_ALERT_DAYS)
    expiring = list(station_certificates_current().filter(not_after__lte=horizon).order_by("not_after"))
    for certificate in expiring:
        logger.warning(
            "ALERT: OCPP station %s: client certificate %s %s %s",
            certificate.station.identity,
            certificate.serial_number,
            "expired at" if certificate.not_after <= now else "expires at",
            certificate.not_after.isoformat(),
        )
        identity = certificate.station.identity
        alert_raise(
            kind=AlertKind.CERTIFICATE_EXPIRING,
            subject=identity,
            message=f"station {identity}: client certificate {certificate.serial_number} "
            f"{'expired at' if certificate.not_after <= now else 'expires at'} {certificate.not_after.isoformat()}",
        )
    renewed = Alert.objects.filter(kind=AlertKind.CERTIFICATE_EXPIRING, resolved_at__isnull=True).exclude(
        subject__in=[certificate.station.identity for certificate in expiring]
    )
    for subject in renewed.values_list("subject", flat=True):
        alert_resolve(kind=AlertKind.CERTIFICATE_EXPIRING, subject=subject)
    return expiring
