"""Roaming tokens as a source of authorization for the gateway (mod_tokens.asciidoc).

`partner_token_authorize` decides Authorize / StartTransaction / TransactionEvent for the tokens EMSPs pushed to us
(`PartnerToken`), honouring `valid` and `whitelist`:

| whitelist       | what we do                                                                                       |
|-----------------|--------------------------------------------------------------------------------------------------|
| ALWAYS          | whitelist only (real-time authorization is not allowed): valid -> Accepted, else Blocked         |
| ALLOWED         | our choice: a valid token is accepted from the whitelist; an invalid one is asked in real time   |
|                 | (its state may have changed) and stays Blocked when the EMSP does not answer                     |
| ALLOWED_OFFLINE | asked in real time; when the EMSP does not answer in time, the whitelist decides (valid or not)  |
| NEVER           | asked in real time; no answer in time -> Invalid                                                 |

"Asked in real time" is POST `{tokens endpoint}/{uid}/authorize?type=` with a LocationReferences body, within
settings.OCPI_REALTIME_AUTHORIZATION_TIMEOUT (shorter than the charger's own timeout). An EMSP answer of HTTP 404 or
OCPI 2004 means it does not know the token: Invalid, whatever the whitelist. Anything else that is not an
AuthorizationInfo (timeout, refused connection, 5xx, 2002, 3xxx, malformed data) counts as no answer.

The result names the partner (`partner:<pk>`), the token's contract_id/type, the issuing party and how it was decided
(auth_method AUTH_REQUEST when the EMSP answered in real time, WHITELIST otherwise); the `authorization_reference`
the EMSP returned is kept on the transaction by the gateway.

`command_token_authorize` accepts the idTag of a recent START_SESSION / RESERVE_NOW for that charger (auth_method
COMMAND): see ocpi_api.commands.
"""

import logging
from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings

from cpo.models import ChargingStation
from ocpi_api.client import ocpi_request
from ocpi_api.envelope import PartnerApiError, StatusCode
from ocpi_api.models import PartnerStatus, PartnerToken, WhitelistType
from ocpp_gateway.authorization import AuthorizationRequest, AuthorizationResult, AuthorizationStatus

logger = logging.getLogger(__name__)


class AuthMethod:
    """OCPI AuthMethod (mod_cdrs.asciidoc)."""

    AUTH_REQUEST = "AUTH_REQUEST"
    COMMAND = "COMMAND"
    WHITELIST = "WHITELIST"


class AllowedType:
    """OCPI AllowedType (mod_tokens.asciidoc)."""

    ALLOWED = "ALLOWED"
    BLOCKED = "BLOCKED"
    EXPIRED = "EXPIRED"
    NO_CREDIT = "NO_CREDIT"
    NOT_ALLOWED = "NOT_ALLOWED"


# OCPI AllowedType -> OCPP AuthorizationStatus. OCPP 1.6 has no "no credit" / "not here": Invalid says "may not
# charge" without claiming the card is blocked or expired. OCPP 2.0.1 has the precise values.
ALLOWED_TO_OCPP_16 = {
    AllowedType.ALLOWED: AuthorizationStatus.ACCEPTED,
    AllowedType.BLOCKED: AuthorizationStatus.BLOCKED,
    AllowedType.EXPIRED: AuthorizationStatus.EXPIRED,
    AllowedType.NO_CREDIT: AuthorizationStatus.INVALID,
    AllowedType.NOT_ALLOWED: AuthorizationStatus.INVALID,
}
ALLOWED_TO_OCPP_201 = {**ALLOWED_TO_OCPP_16, AllowedType.NO_CREDIT: "NoCredit", AllowedType.NOT_ALLOWED: "NotAtThisLocation"}

# Which OCPI token types an OCPP idToken can be, most likely first. OCPP 1.6 idTags carry no type (RFID mostly).
_TOKEN_TYPES_FOR_ID_TOKEN_TYPE = {
    "": ["RFID", "APP_USER", "AD_HOC_USER", "OTHER"],
    "ISO14443": ["RFID"],
    "ISO15693": ["RFID"],
    "Central": ["APP_USER", "AD_HOC_USER", "OTHER", "RFID"],
    "eMAID": ["APP_USER", "AD_HOC_USER", "RFID", "OTHER"],
    "KeyCode": ["OTHER"],
    "Local": ["OTHER", "RFID"],
    "MacAddress": ["OTHER"],
}


@dataclass(frozen=True)
class RealtimeAnswer:
    """The EMSP's AuthorizationInfo, reduced to what we use. `allowed` is None when the EMSP does not know the
    token (HTTP 404 / 2004)."""

    allowed: str | None
    authorization_reference: str = ""
    evse_uids: tuple[str, ...] | None = None  # the EVSEs the driver may use, when the EMSP restricted them


# --- Reads ------------------------------------------------------------------------------------------------------

def partner_token_for_id_tag(*, id_tag: str, id_token_type: str = "") -> PartnerToken | None:
    """The pushed token an OCPP idTag / idToken stands for, among registered partners' tokens (uid is a CiString)."""
    types = _TOKEN_TYPES_FOR_ID_TOKEN_TYPE.get(id_token_type, _TOKEN_TYPES_FOR_ID_TOKEN_TYPE[""])
    tokens = list(
        PartnerToken.objects.select_related("partner").filter(
            uid__iexact=id_tag, type__in=types, partner__status=PartnerStatus.REGISTERED
        )
    )
    tokens.sort(key=lambda t: (types.index(t.type), -t.last_updated.timestamp()))
    return tokens[0] if tokens else None


def _status_map(*, station_identity: str) -> dict:
    version = (
        ChargingStation.objects.filter(identity=station_identity).values_list("ocpp_version", flat=True).first() or ""
    )
    return ALLOWED_TO_OCPP_16 if version in ("", "1.6") else ALLOWED_TO_OCPP_201


# --- Real-time authorization (mod_tokens POST authorize) -------------------------------------------------------

def token_authorize_realtime(
    *, token: PartnerToken, location_id: str, evse_uid: str = "", timeout: float | None = None
) -> RealtimeAnswer | None:
    """Ask the EMSP whether the token may charge here. None when it gave no usable answer in time."""
    partner = token.partner
    base = partner.endpoint_url(identifier="tokens", role="SENDER") or partner.endpoint_url(identifier="tokens")
    if not base or not partner.outgoing_token:
        logger.info("%s: no tokens Sender endpoint to ask about %s", partner, token.uid)
        return None
    url = f"{base.rstrip('/')}/{quote(token.uid, safe='')}/authorize"
    body = None
    if location_id:
        body = {"location_id": location_id, "evse_uids": [evse_uid] if evse_uid else []}
    timeout = settings.OCPI_REALTIME_AUTHORIZATION_TIMEOUT if timeout is None else timeout
    try:
        answer = ocpi_request(
            "POST", url, token=partner.outgoing_token, encode_token=partner.encode_outgoing_token, json=body,
            params={"type": token.type}, to_party=(token.country_code, token.party_id), timeout=timeout,
        )
    except PartnerApiError as exc:
        logger.warning("real-time authorization of %s at %s: no answer (%s)", token.uid, partner, exc)
        return None
    if answer.http_status == 404 or answer.status_code == StatusCode.UNKNOWN_TOKEN:
        return RealtimeAnswer(allowed=None)
    data = answer.data
    if not (
        200 <= answer.http_status < 300
        and answer.status_code == StatusCode.SUCCESS
        and isinstance(data, dict)
        and data.get("allowed") in ALLOWED_TO_OCPP_16
    ):
        logger.warning(
            "real-time authorization of %s at %s: unusable answer HTTP %s, OCPI %s %s",
            token.uid, partner, answer.http_status, answer.status_code, answer.status_message,
        )
        return None
    reference = data.get("authorization_reference")
    location = data.get("location")
    evse_uids = None
    if isinstance(location, dict) and isinstance(location.get("evse_uids"), list) and location["evse_uids"]:
        evse_uids = tuple(str(uid) for uid in location["evse_uids"])
    return RealtimeAnswer(
        allowed=data["allowed"],
        authorization_reference=str(reference)[:36] if isinstance(reference, str) else "",
        evse_uids=evse_uids,
    )


# --- The authorizer ---------------------------------------------------------------------------------------------

def _result(*, token: PartnerToken, status: str, auth_method: str, authorization_reference: str = "",
            source: str | None = None) -> AuthorizationResult:
    return AuthorizationResult(
        status=status,
        source=source or f"partner:{token.partner_id}",
        group_id=token.group_id,
        authorization_reference=authorization_reference,
        token_uid=token.uid,
        token_type=token.type,
        contract_id=token.contract_id,
        auth_method=auth_method,
        country_code=token.country_code,
        party_id=token.party_id,
    )


def _whitelist_status(token: PartnerToken) -> str:
    return AuthorizationStatus.ACCEPTED if token.valid else AuthorizationStatus.BLOCKED


def partner_token_decide(*, token: PartnerToken, request: AuthorizationRequest) -> AuthorizationResult:
    """The whitelist rules of the module docstring, for one pushed token."""
    if token.whitelist == WhitelistType.ALWAYS or (token.whitelist == WhitelistType.ALLOWED and token.valid):
        return _result(token=token, status=_whitelist_status(token), auth_method=AuthMethod.WHITELIST)
    answer = token_authorize_realtime(token=token, location_id=request.location_id, evse_uid=request.evse_uid)
    if answer is None:  # no answer in time: fall back per whitelist type
        if token.whitelist == WhitelistType.ALLOWED_OFFLINE:
            return _result(token=token, status=_whitelist_status(token), auth_method=AuthMethod.WHITELIST)
        if token.whitelist == WhitelistType.ALLOWED:
            return _result(token=token, status=AuthorizationStatus.BLOCKED, auth_method=AuthMethod.WHITELIST)
        return _result(token=token, status=AuthorizationStatus.INVALID, auth_method=AuthMethod.AUTH_REQUEST)
    if answer.allowed is None:
        return _result(token=token, status=AuthorizationStatus.INVALID, auth_method=AuthMethod.AUTH_REQUEST)
    allowed = answer.allowed
    if allowed == AllowedType.ALLOWED and request.evse_uid and answer.evse_uids is not None:
        if request.evse_uid.upper() not in {uid.upper() for uid in answer.evse_uids}:
            allowed = AllowedType.NOT_ALLOWED
    status = _status_map(station_identity=request.station_identity)[allowed]
    return _result(
        token=token, status=status, auth_method=AuthMethod.AUTH_REQUEST,
        authorization_reference=answer.authorization_reference,
    )


def partner_token_authorize(request: AuthorizationRequest) -> AuthorizationResult | None:
    """Gateway authorizer (ocpp_gateway.authorization): None when no EMSP pushed this token."""
    token = partner_token_for_id_tag(id_tag=request.id_tag, id_token_type=request.id_token_type)
    if token is None:
        return None
    return partner_token_decide(token=token, request=request)
