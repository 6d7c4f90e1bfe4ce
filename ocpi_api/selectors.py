"""Reads for the OCPI interface: partners by credentials token, and OCPI projections of our objects."""

import hashlib

from ocpi_api.models import Partner, PartnerStatus


def credentials_token_hash(token: str) -> str:
    """SHA-256 hex of a credentials token. Our tokens are long random strings, so an unsalted fast hash is enough
    and lets us find the partner by an indexed lookup."""
    return hashlib.sha256(token.encode()).hexdigest()


def partner_get_by_token(*, token: str) -> Partner | None:
    """The partner whose incoming credentials token this is (never an UNREGISTERED one)."""
    return (
        Partner.objects.filter(incoming_token_hash=credentials_token_hash(token))
        .exclude(status=PartnerStatus.UNREGISTERED)
        .first()
    )
