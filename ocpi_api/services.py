"""Writes for the OCPI interface: partners and their credentials, objects partners push to us."""

import secrets

from django.db import transaction

from ocpi_api.models import Partner, PartnerStatus, Role
from ocpi_api.selectors import credentials_token_hash

TOKEN_PREFIX_LENGTH = 6


def credentials_token_generate() -> str:
    """A new credentials token: 43 URL-safe characters (256 bits), within string(64) printable ASCII."""
    return secrets.token_urlsafe(32)


def partner_incoming_token_set(*, partner: Partner, token: str | None) -> None:
    """Store (the hash of) the token the partner will use to call us; None revokes it. Does not save."""
    partner.incoming_token_hash = credentials_token_hash(token) if token else None
    partner.incoming_token_prefix = token[:TOKEN_PREFIX_LENGTH] if token else ""


@transaction.atomic
def partner_invite(*, country_code: str, party_id: str, name: str, role: str = Role.EMSP) -> tuple[Partner, str]:
    """Create a partner in state INVITED with a new token A; returns it with token A, shown once, stored hashed."""
    token_a = credentials_token_generate()
    partner = Partner(
        name=name,
        country_code=country_code.upper(),
        party_id=party_id.upper(),
        role=role,
        business_details={"name": name} if name else {},
        status=PartnerStatus.INVITED,
    )
    partner_incoming_token_set(partner=partner, token=token_a)
    partner.save()
    return partner, token_a
