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

Nothing here calls an EMSP on the gateway's database threads: `partner_token_authorize_step` (the authorizer the
gateway runs there) reads the database and returns either the result or a `RealtimeCheck` whose `ask` is the HTTP call
alone; the gateway runs that on a pool of its own (ocpp_gateway.authorization). `partner_token_authorize` makes the
whole decision in the caller's thread (the shell, tests).

`command_token_authorize` accepts the idTag of a recent START_SESSION / RESERVE_NOW for that charger (auth_method
COMMAND, no real-time authorization within OCPI_COMMAND_TOKEN_MINUTES).
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from django.conf import settings
from django.utils import timezone

from billing.enums import AuthMethod
from cpo.models import ChargingStation
from ocpi_api.client import ocpi_request
from ocpi_api.commands.results import Result
from ocpi_api.envelope import PartnerApiError, StatusCode
from ocpi_api.models import Command, CommandState, CommandType, PartnerStatus, PartnerToken, WhitelistType
from ocpp_gateway.authorization import (
    AuthorizationRequest,
    AuthorizationResult,
    AuthorizationStatus,
    RealtimeCheck,
    realtime_check_run,
)
from ocpp_gateway.id_tokens import token_types_for
from ocpp_gateway.requests import LocalListEntry

logger = logging.getLogger(__name__)


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
ALLOWED_TO_OCPP_201 = {
    **ALLOWED_TO_OCPP_16,
    AllowedType.NO_CREDIT: "NoCredit",
    AllowedType.NOT_ALLOWED: "NotAtThisLocation",
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
    types = token_types_for(id_token_type=id_token_type)
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


@dataclass(frozen=True)
class RealtimeRequest:
    """Everything `POST {tokens}/{uid}/authorize` needs, read from the database before the call."""

    url: str
    outgoing_token: str
    encode_token: bool
    body: dict | None
    token_type: str
    to_party: tuple[str, str]
    uid: str
    partner: str  # for the log
    partner_networks: str = ""


def realtime_request_for(*, token: PartnerToken, location_id: str, evse_uid: str = "") -> RealtimeRequest | None:
    """The real-time authorization request for a pushed token; None when its EMSP gave us nowhere to ask."""
    partner = token.partner
    base = partner.endpoint_url(identifier="tokens", role="SENDER") or partner.endpoint_url(identifier="tokens")
    if not base or not partner.outgoing_token:
        logger.info("%s: no tokens Sender endpoint to ask about %s", partner, token.uid)
        return None
    body = {"location_id": location_id, "evse_uids": [evse_uid] if evse_uid else []} if location_id else None
    return RealtimeRequest(
        url=f"{base.rstrip('/')}/{quote(token.uid, safe='')}/authorize",
        outgoing_token=partner.outgoing_token,
        encode_token=partner.encode_outgoing_token,
        body=body,
        token_type=token.type,
        to_party=(token.country_code, token.party_id),
        uid=token.uid,
        partner=str(partner),
        partner_networks=partner.allowed_networks,
    )


def realtime_request_send(request: RealtimeRequest, *, timeout: float) -> RealtimeAnswer | None:
    """Ask the EMSP whether the token may charge here (HTTP only, no database). None when it gave no usable answer in
    time."""
    try:
        answer = ocpi_request(
            "POST",
            request.url,
            token=request.outgoing_token,
            encode_token=request.encode_token,
            json=request.body,
            params={"type": request.token_type},
            to_party=request.to_party,
            timeout=timeout,
            partner_networks=request.partner_networks,
        )
    except PartnerApiError as exc:
        logger.warning("real-time authorization of %s at %s: no answer (%s)", request.uid, request.partner, exc)
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
            request.uid,
            request.partner,
            answer.http_status,
            answer.status_code,
            answer.status_message,
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


def _result(
    *, token: PartnerToken, status: str, auth_method: str, authorization_reference: str = "", source: str | None = None
) -> AuthorizationResult:
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


def partner_token_check(*, token: PartnerToken, request: AuthorizationRequest) -> AuthorizationResult | RealtimeCheck:
    """The whitelist rules of the module docstring for one pushed token, from the database: the result, or the
    real-time check that decides it."""
    if token.whitelist == WhitelistType.ALWAYS or (token.whitelist == WhitelistType.ALLOWED and token.valid):
        return _result(token=token, status=_whitelist_status(token), auth_method=AuthMethod.WHITELIST)
    status_map = _status_map(station_identity=request.station_identity)

    def decide(answer: RealtimeAnswer | None) -> AuthorizationResult:
        return _realtime_decide(token=token, request=request, answer=answer, status_map=status_map)

    realtime = realtime_request_for(token=token, location_id=request.location_id, evse_uid=request.evse_uid)
    if realtime is None:
        return decide(None)
    timeout = settings.OCPI_REALTIME_AUTHORIZATION_TIMEOUT
    return RealtimeCheck(ask=lambda: realtime_request_send(realtime, timeout=timeout), decide=decide, timeout=timeout)


def _realtime_decide(
    *, token: PartnerToken, request: AuthorizationRequest, answer: RealtimeAnswer | None, status_map: dict
) -> AuthorizationResult:
    """The EMSP's answer (None: none in time) as the result, per the token's whitelist type. No database."""
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
    return _result(
        token=token,
        status=status_map[allowed],
        auth_method=AuthMethod.AUTH_REQUEST,
        authorization_reference=answer.authorization_reference,
    )


def partner_token_authorize_step(request: AuthorizationRequest) -> AuthorizationResult | RealtimeCheck | None:
    """Gateway authorizer (ocpp_gateway.authorization): None when no EMSP pushed this token."""
    token = partner_token_for_id_tag(id_tag=request.id_tag, id_token_type=request.id_token_type)
    if token is None:
        return None
    return partner_token_check(token=token, request=request)


def partner_token_authorize(request: AuthorizationRequest) -> AuthorizationResult | None:
    """The same decision made whole in the caller's thread, real-time call included (the shell, tests)."""
    step = partner_token_authorize_step(request)
    if isinstance(step, RealtimeCheck):
        return realtime_check_run(step)
    return step


# --- The gateway authorizer for command tokens ----------------------------------------------------------------

_FAILED_RESULTS = (
    Result.REJECTED,
    Result.FAILED,
    Result.TIMEOUT,
    Result.NOT_SUPPORTED,
    Result.EVSE_OCCUPIED,
    Result.EVSE_INOPERATIVE,
)


def command_token_authorize(request: AuthorizationRequest) -> AuthorizationResult | None:
    """Accept the idTag of a START_SESSION (or RESERVE_NOW) this charger got within the last
    OCPI_COMMAND_TOKEN_MINUTES (mod_commands: the EMSP authorised the token; no real-time authorization for it at
    this charge point within 15 minutes). auth_method COMMAND; the token and reference of the command."""
    if not request.id_tag or not request.station_identity:
        return None
    since = timezone.now() - timedelta(minutes=settings.OCPI_COMMAND_TOKEN_MINUTES)
    candidates = (
        Command.objects.select_related("evse")
        .filter(
            command__in=(CommandType.START_SESSION, CommandType.RESERVE_NOW),
            id_tag__iexact=request.id_tag,
            station__identity=request.station_identity,
            created_at__gte=since,
        )
        .exclude(state=CommandState.REFUSED)
        .exclude(result__in=_FAILED_RESULTS)
        .order_by("-created_at", "-id")[:10]
    )
    for cmd in candidates:
        if request.evse_uid and cmd.evse is not None and cmd.evse.uid.upper() != request.evse_uid.upper():
            continue
        token = cmd.token or {}
        return AuthorizationResult(
            status=AuthorizationStatus.ACCEPTED,
            source=f"partner:{cmd.partner_id}",
            group_id=token.get("group_id") or "",
            authorization_reference=cmd.authorization_reference,
            token_uid=str(token.get("uid", ""))[:36],
            token_type=token.get("type", ""),
            contract_id=token.get("contract_id", ""),
            auth_method=AuthMethod.COMMAND,
            country_code=str(token.get("country_code", "")).upper(),
            party_id=str(token.get("party_id", "")).upper(),
        )
    return None


# --- Local authorization lists (ocpp_gateway.services.local_list) ----------------------------------------------

# mod_tokens WhitelistType: every value but NEVER allows the CPO to whitelist the token (ALWAYS must; ALLOWED may;
# ALLOWED_OFFLINE is allowed when the EMSP cannot be reached, which is when a station uses its local list).
LOCAL_LIST_WHITELISTS = (WhitelistType.ALWAYS, WhitelistType.ALLOWED, WhitelistType.ALLOWED_OFFLINE)


def partner_tokens_for_local_lists() -> Iterator[LocalListEntry]:
    """The registered partners' tokens stations may hold: valid ones Accepted, the others Blocked (a station refuses
    them offline too), newest first."""
    tokens = (
        PartnerToken.objects.filter(partner__status=PartnerStatus.REGISTERED, whitelist__in=LOCAL_LIST_WHITELISTS)
        .order_by("-last_updated", "uid")
        .only("uid", "type", "valid", "group_id")
    )
    for token in tokens.iterator(chunk_size=2000):
        yield LocalListEntry(
            id_tag=token.uid,
            status=AuthorizationStatus.ACCEPTED if token.valid else AuthorizationStatus.BLOCKED,
            token_type=token.type,
            group_id=token.group_id,
        )
