"""The certificate lifecycle's services: signing a station's CSR with the configured CA, and expiry alerts."""

import logging
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.utils import timezone

from cpo.models import Alert
from ocpp_gateway.models import StationCertificate
from ocpp_gateway.services.certificates import station_certificate_answered, station_certificate_sign, station_csr_check
from ocpp_gateway.tasks import certificates_expiry_alert_task
from tests.ocpp_gateway.pki import csr_for, pki_create


@pytest.fixture
def ca(tmp_path, settings):
    pki = pki_create(tmp_path / "pki")
    settings.OCPP_CA_CERT_FILE = str(pki.ca_cert_file)
    settings.OCPP_CA_KEY_FILE = str(pki.ca_key_file)
    return pki


def installed_certificate(station, *, days_left: float, serial: str) -> StationCertificate:
    now = timezone.now()
    return StationCertificate.objects.create(
        station=station,
        serial_number=serial,
        subject=f"CN={station.identity}",
        not_before=now - timedelta(days=300),
        not_after=now + timedelta(days=days_left),
        certificate_pem="-----BEGIN CERTIFICATE-----\n...",
        status=StationCertificate.Status.INSTALLED,
    )


def test_a_csr_of_the_station_is_signed_for_client_authentication_by_the_ca(ca, station_factory, settings):
    station, _ = station_factory("CP-SIGN")
    csr, key = csr_for("CP-SIGN")
    assert station_csr_check(station_pk=station.pk, csr=csr) == ""
    signed = station_certificate_sign(station_pk=station.pk, csr=csr)
    leaf = x509.load_pem_x509_certificates(signed.certificate_chain.encode())[0]
    leaf.verify_directly_issued_by(ca.ca_cert)
    assert leaf.public_key() == key.public_key()
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-SIGN"
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    validity = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert timedelta(days=settings.OCPP_CERTIFICATE_VALIDITY_DAYS) <= validity <= timedelta(days=366)
    record = StationCertificate.objects.get(pk=signed.certificate_pk)
    assert (record.status, record.serial_number) == (StationCertificate.Status.SENT, f"{leaf.serial_number:X}")
    station_certificate_answered(certificate_pk=record.pk, status="Accepted")
    assert StationCertificate.objects.get(pk=record.pk).status == StationCertificate.Status.INSTALLED


@pytest.mark.parametrize(
    ("csr", "certificate_type", "refusal"),
    [
        (lambda: csr_for("CP-OTHER")[0], "", "the CSR's common name 'CP-OTHER' is not the station's identity"),
        (lambda: "not a csr", "", "the CSR is not a PEM encoded PKCS #10 request"),
        (lambda: csr_for("CP-SIGN")[0], "V2GCertificate", "V2GCertificate certificates are not signed by this CSMS"),
    ],
)
def test_a_csr_we_would_not_sign_is_refused_with_the_reason(ca, station_factory, csr, certificate_type, refusal):
    station, _ = station_factory("CP-SIGN")
    assert station_csr_check(station_pk=station.pk, csr=csr(), certificate_type=certificate_type) == refusal


def test_without_a_configured_ca_nothing_is_signed(station_factory, settings):
    settings.OCPP_CA_CERT_FILE = settings.OCPP_CA_KEY_FILE = ""
    station, _ = station_factory("CP-SIGN")
    assert "no CA configured" in station_csr_check(station_pk=station.pk, csr=csr_for("CP-SIGN")[0])


def test_a_certificate_expiring_within_the_threshold_raises_an_alert(station_factory, settings, caplog):
    """Only a station's current (newest installed) certificate counts: a renewed station is not alerted about."""
    settings.OCPP_CERTIFICATE_EXPIRY_ALERT_DAYS = 30
    expiring, _ = station_factory("CP-EXPIRING")
    renewed, _ = station_factory("CP-RENEWED")
    fine, _ = station_factory("CP-FINE")
    installed_certificate(expiring, days_left=10, serial="AA01")
    installed_certificate(renewed, days_left=5, serial="AA02")
    installed_certificate(renewed, days_left=365, serial="AA03")
    installed_certificate(fine, days_left=200, serial="AA04")
    with caplog.at_level(logging.WARNING, logger="ocpp_gateway.services.certificates"):
        assert certificates_expiry_alert_task() == 1
    alerts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT:")]
    assert len(alerts) == 1
    assert alerts[0].startswith("ALERT: OCPP station CP-EXPIRING: client certificate AA01 expires at ")
    alert = Alert.objects.get()  # and one alert for staff
    assert (alert.kind, alert.subject, alert.resolved_at) == ("certificate_expiring", "CP-EXPIRING", None)
    assert all(r.levelno == logging.WARNING for r in caplog.records)
