"""Credentials-token authentication (transport_and_format.asciidoc "Authorization header").

`Authorization: Token <base64(token)>` as OCPI 2.2.1 requires; the plain `Token <token>` of many 2.1.1/2.2
implementations is accepted too. A missing or unknown token is HTTP 401; a partner that only holds an invitation
token (token A) may use `versions` and `credentials` and nothing else (401 elsewhere)."""

import base64
import binascii
from dataclasses import dataclass

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from ocpi_api.models import Partner, PartnerStatus
from ocpi_api.selectors import credentials_token_hash

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
                for p in Partner.objects.filter(incoming_token_hash__in=hashes).exclude(
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
