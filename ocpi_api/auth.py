"""Credentials-token authentication (transport_and_format.asciidoc "Authorization header").

`Authorization: Token <base64(token)>` as OCPI 2.2.1 requires; the plain `Token <token>` of many 2.1.1/2.2
implementations is accepted too. A missing or unknown token is HTTP 401; a partner that only holds an invitation
token (token A) may use `versions` and `credentials` and nothing else (401 elsewhere); the token of a partner staff
have suspended is not valid while it is, so 401 as an unknown one; hubclientinfo is for hubs
only (403). The routing headers of a functional module's request must address this platform and name the
authenticated partner as the sender (`check_routing_headers`)."""

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from ocpi_api.envelope import Misaddressed, NotForYourRole
from ocpi_api.models import Partner, PartnerStatus
from ocpi_api.selectors import credentials_token_hash, partner_is_hub, partner_sender_parties

TOKEN_MAX_LENGTH = 64


def is_printable_token(value: str) -> bool:
    """Credentials tokens are 1..64 printable non-whitespace ASCII characters (U+0021..U+007E)."""
    return 0 < len(value) <= TOKEN_MAX_LENGTH and all(0x21 <= ord(c) <= 0x7E for c in value)


def authorization_token_candidates(header: str) -> list[str]:
    """The credentials tokens an Authorization header may carry: its base64 decoding first, then the raw value."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "token" or not value:
        return []
    candidates = []
    try:
        decoded = base64.b64decode(value, validate=True).decode("ascii").strip()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if decoded and is_printable_token(decoded):
        candidates.append(decoded)
    if is_printable_token(value) and value not in candidates:
        candidates.append(value)
    return candidates


def authorization_header_value(*, token: str, encode: bool = True) -> str:
    """Our Authorization header towards a partner."""
    if encode:
        return "Token " + base64.b64encode(token.encode()).decode("ascii")
    return f"Token {token}"


@dataclass(frozen=True)
class PartnerCredentials:
    """What `request.auth` holds after authentication: the partner, and the token it presented (decoded)."""

    partner: Partner
    token: str


class OcpiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.headers.get("Authorization")
        if not header:
            return None
        candidates = authorization_token_candidates(header)
        if candidates:
            hashes = {credentials_token_hash(token): token for token in candidates}
            partners = {
                p.incoming_token_hash: p
                for p in Partner.objects.filter(incoming_token_hash__in=hashes, suspended_at__isnull=True).exclude(
                    status=PartnerStatus.UNREGISTERED
                )
            }
            for token_hash, token in hashes.items():
                if token_hash in partners:
                    return (None, PartnerCredentials(partner=partners[token_hash], token=token))
        raise exceptions.AuthenticationFailed("Unknown credentials token")

    def authenticate_header(self, request) -> str:
        return "Token"


class ConfigurationModuleAccess(BasePermission):
    """versions, version details and credentials: any known partner, token A included."""

    message = "A credentials token is required"

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, PartnerCredentials)


class RegisteredPartnerAccess(BasePermission):
    """Functional modules (and hubclientinfo): only partners that completed the credentials handshake."""

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, PartnerCredentials):
            return False
        if request.auth.partner.status != PartnerStatus.REGISTERED:
            self.message = "This credentials token is only valid for the versions and credentials modules"
            raise exceptions.PermissionDenied(self.message)
        return True


class HubAccess(RegisteredPartnerAccess):
    """Modules between a platform and its hub (hubclientinfo): registered partners whose role is HUB."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if not partner_is_hub(partner=request.auth.partner):
            raise NotForYourRole("This module is for partners with the role HUB")
        return True


def _routing_party(headers: Mapping[str, str], direction: str) -> tuple[str, str] | None:
    """The (country_code, party_id) of the OCPI-to or OCPI-from headers, upper-cased (CiString); None when absent.
    Half an address (one of the two headers) is Misaddressed."""
    country_code = (headers.get(f"OCPI-{direction}-country-code") or "").strip().upper()
    party_id = (headers.get(f"OCPI-{direction}-party-id") or "").strip().upper()
    if not country_code and not party_id:
        return None
    if not (country_code and party_id):
        raise Misaddressed(f"OCPI-{direction}-country-code and OCPI-{direction}-party-id go together")
    return country_code, party_id


def check_routing_headers(*, partner: Partner, headers: Mapping[str, str]) -> tuple[str, str]:
    """The party a functional module's request comes from, which our answer is addressed to (transport_and_format
    "Message Routing Headers", party to party: TO is the receiving party, FROM the requesting one).

    OCPI-to, when given, must be our party: we are not a hub and route nothing on. OCPI-from, when given, must be a
    party of the authenticated partner (for a hub, also one it reported behind it); without it, the partner's main
    party. Anything else is Misaddressed: the credentials token says who is calling, a header cannot change it."""
    to = _routing_party(headers, "to")
    ours = (settings.OCPI_COUNTRY_CODE.upper(), settings.OCPI_PARTY_ID.upper())
    if to is not None and to != ours:
        raise Misaddressed(f"OCPI-to {to[0]}/{to[1]} is not a party on this platform (we are {ours[0]}/{ours[1]})")
    sender = _routing_party(headers, "from")
    if sender is None:
        return partner.country_code.upper(), partner.party_id.upper()
    if sender not in partner_sender_parties(partner=partner):
        raise Misaddressed(f"OCPI-from {sender[0]}/{sender[1]} is not one of the parties of your credentials")
    return sender
