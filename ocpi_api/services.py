"""Writes for the OCPI interface: partners and their credentials, objects partners push to us."""

import logging
import secrets

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from ocpi_api import client
from ocpi_api.envelope import (
    InvalidParameters,
    MethodNotAllowedInState,
    NoMatchingEndpoints,
    OcpiError,
    PartnerApiError,
    StatusCode,
    UnknownToken,
)
from ocpi_api.models import ClientInfo, Partner, PartnerParty, PartnerStatus, PartnerToken, Role
from ocpi_api.modules import VERSION, ModuleID
from ocpi_api.outbox import outbox_partner_release
from ocpi_api.selectors import credentials_token_hash, our_credentials_as_ocpi, token_uid_held_by_another
from ocpi_api.serializers import credentials_validate
from ocpp_gateway import events

logger = logging.getLogger(__name__)

TOKEN_PREFIX_LENGTH = 6
# What a partner hears when its versions URL or endpoints gave no usable OCPI answer: what the network said (refused
# address, connection refused, a redirect, a timeout) would make us a port scanner of our own network.
PARTNER_API_UNUSABLE_MESSAGE = (
    "Your versions URL or endpoints gave no usable OCPI answer (public addresses only, no redirects); "
    "ask our support for details"
)


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


class PartyTaken(OcpiError):
    """A partner declared a party that another partner (or this platform) holds. The request reached the OCPI
    layer, so HTTP 200 with 2001 (status_codes.asciidoc)."""

    http_status = 200
    status_code = StatusCode.INVALID_PARAMETERS


def _parties_q(parties: set[tuple[str, str]]) -> Q:
    q = Q(pk__in=[])
    for country_code, party_id in parties:
        q |= Q(country_code=country_code, party_id=party_id)
    return q


def partner_parties_claim(*, partner: Partner, parties: set[tuple[str, str]]) -> None:
    """Make `parties` exactly the ones the partner holds. PartyTaken when one is this platform's own or held by
    another partner that is not unregistered (an unregistered partner's parties are free again, its data stays
    its own). Runs in the caller's transaction: a refused claim rolls back the credentials it came with."""
    parties = {(c.upper(), p.upper()) for c, p in parties if c and p}
    ours = (settings.OCPI_COUNTRY_CODE.upper(), settings.OCPI_PARTY_ID.upper())
    if ours in parties:
        raise PartyTaken(f"{ours[0]}/{ours[1]} is this platform's own party")
    others = PartnerParty.objects.filter(_parties_q(parties)).exclude(partner=partner)
    taken = sorted(f"{p.country_code}/{p.party_id}" for p in others.exclude(partner__status=PartnerStatus.UNREGISTERED))
    if taken:
        raise PartyTaken(f"{', '.join(taken)} is held by another partner")
    with transaction.atomic():
        others.delete()
        PartnerParty.objects.filter(partner=partner).exclude(_parties_q(parties)).delete()
        held = set(PartnerParty.objects.filter(partner=partner).values_list("country_code", "party_id"))
        try:
            PartnerParty.objects.bulk_create(
                PartnerParty(partner=partner, country_code=c, party_id=p) for c, p in sorted(parties - held)
            )
        except IntegrityError as exc:  # a concurrent claim of the same party won
            raise PartyTaken("A party you declared was just taken by another partner") from exc


# --- Credentials (credentials.asciidoc) -------------------------------------------------------------------------


def partner_main_role(*, roles: list[dict], country_code: str = "", party_id: str = "") -> dict:
    """The role that describes the partner: the one matching the invited party, else its first EMSP role, else its
    first role."""
    for role in roles:
        if (role["country_code"].upper(), role["party_id"].upper()) == (country_code.upper(), party_id.upper()):
            return role
    return next((r for r in roles if r["role"] == Role.EMSP), roles[0])


def check_partner_endpoints(*, endpoints: list[dict]) -> None:
    """3003 unless the partner offers a module we can use with it (besides credentials) and every module that
    settings.OCPI_PARTNER_REQUIRED_MODULES demands. We serve every OCPI 2.2.1 module (`ocpi_api.registry`), so
    any ModuleID of 2.2.1 is one we can use."""
    theirs = {e["identifier"] for e in endpoints}
    if not (theirs & ModuleID.ALL) - {ModuleID.CREDENTIALS}:
        raise NoMatchingEndpoints("No module in common with the partner besides credentials")
    missing = set(settings.OCPI_PARTNER_REQUIRED_MODULES) - theirs
    if missing:
        raise NoMatchingEndpoints(f"The partner lacks required endpoints: {', '.join(sorted(missing))}")


def _partner_apply_credentials(*, partner: Partner, credentials: dict, endpoints: list[dict], encode: bool) -> None:
    roles = [
        {**r, "country_code": r["country_code"].upper(), "party_id": r["party_id"].upper()}
        for r in credentials["roles"]
    ]
    main = partner_main_role(roles=roles, country_code=partner.country_code, party_id=partner.party_id)
    partner.country_code = main["country_code"]
    partner.party_id = main["party_id"]
    partner.role = main["role"]
    partner.business_details = main["business_details"]
    partner.name = partner.name or main["business_details"]["name"]
    partner.roles = roles
    partner.versions_url = credentials["url"]
    partner.version = VERSION
    partner.endpoints = endpoints
    partner.outgoing_token = credentials["token"]
    partner.encode_outgoing_token = encode


def _partner_save_registered(partner: Partner) -> None:
    try:
        with transaction.atomic():
            partner.save()
            partner_parties_claim(partner=partner, parties={(r["country_code"], r["party_id"]) for r in partner.roles})
    except IntegrityError as exc:
        raise OcpiError(
            f"Another registered partner uses {partner.country_code}/{partner.party_id}",
            http_status=409,
            status_code=StatusCode.CLIENT_ERROR,
        ) from exc


def partner_endpoints_fetch(*, partner: Partner, credentials: dict) -> tuple[list[dict], bool]:
    """The partner's 2.2.1 endpoints fetched with the token and versions URL it just gave us. When its API gives no
    usable answer, the partner gets PARTNER_API_UNUSABLE_MESSAGE (3001); what happened goes to the log and to the
    partner record (`last_error`) for staff. 3002 and 3003 keep their message: they come from a valid OCPI answer."""
    try:
        return client.partner_endpoints_fetch(
            versions_url=credentials["url"],
            token=credentials["token"],
            encode_token=partner.encode_outgoing_token,
            partner_networks=partner.allowed_networks,
        )
    except PartnerApiError as exc:
        logger.warning("partner %s (%s): credentials exchange failed: %s", partner.pk, partner, exc)
        Partner.objects.filter(pk=partner.pk).update(last_error=str(exc)[:2000], last_error_at=timezone.now())
        if exc.status_code != StatusCode.CLIENT_API_UNUSABLE:
            raise
        raise PartnerApiError(PARTNER_API_UNUSABLE_MESSAGE) from exc


def check_partner_may_register(*, partner: Partner) -> None:
    """POST is for a partner holding an invitation token; 405 for one that is registered already."""
    if partner.status != PartnerStatus.INVITED:
        raise MethodNotAllowedInState("Already registered: use PUT to update the credentials")


def check_partner_registered(*, partner: Partner) -> None:
    """PUT and DELETE are for registered partners; 405 for one that holds only an invitation token."""
    if partner.status != PartnerStatus.REGISTERED:
        raise MethodNotAllowedInState("Not registered: use POST to register")


def credentials_register(*, partner: Partner, credentials: dict) -> tuple[Partner, str]:
    """POST credentials: an INVITED partner (authenticated with token A) gives us its token B and versions URL. We fetch
    its versions and endpoints with token B (3001/3002/3003 when that fails), then store them and return a new token
    C; token A is dead from then on. 405 when the partner is registered already.

    The partner's API is called outside any database transaction; the partner row is then locked and its state
    checked again, so two concurrent POSTs with the same token A cannot both register."""
    check_partner_may_register(partner=partner)
    endpoints, encode = partner_endpoints_fetch(partner=partner, credentials=credentials)
    check_partner_endpoints(endpoints=endpoints)
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        check_partner_may_register(partner=partner)
        _partner_apply_credentials(partner=partner, credentials=credentials, endpoints=endpoints, encode=encode)
        partner.last_error = ""
        token_c = credentials_token_generate()
        partner_incoming_token_set(partner=partner, token=token_c)
        partner.status = PartnerStatus.REGISTERED
        partner.registered_at = timezone.now()
        _partner_save_registered(partner)
    return partner, token_c


def credentials_update(*, partner: Partner, credentials: dict) -> tuple[Partner, str]:
    """PUT credentials: a registered partner gives new credentials (new token, version or endpoints). We fetch its
    endpoints again and return a new token for it; its previous token is dead. 405 when not registered."""
    check_partner_registered(partner=partner)
    endpoints, encode = partner_endpoints_fetch(partner=partner, credentials=credentials)
    check_partner_endpoints(endpoints=endpoints)
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        check_partner_registered(partner=partner)
        _partner_apply_credentials(partner=partner, credentials=credentials, endpoints=endpoints, encode=encode)
        partner.last_error = ""
        token = credentials_token_generate()
        partner_incoming_token_set(partner=partner, token=token)
        _partner_save_registered(partner)
    return partner, token


@transaction.atomic
def credentials_unregister(*, partner: Partner) -> Partner:
    """DELETE credentials: the partner ends the connection. Both tokens are forgotten. 405 when not registered."""
    partner = Partner.objects.select_for_update().get(pk=partner.pk)
    check_partner_registered(partner=partner)
    partner.status = PartnerStatus.UNREGISTERED
    partner_incoming_token_set(partner=partner, token=None)
    partner.outgoing_token = ""
    partner.save()
    events.announce(events.tokens_changed)  # its tokens leave the stations' local lists
    return partner


def partner_register(
    *, versions_url: str, token_a: str, name: str = "", encode_token: bool = True, allowed_networks: str = ""
) -> Partner:
    """Register with a partner that gave us its versions URL and a token A (we are the Sender of credentials).

    1. GET its versions and 2.2.1 endpoints with token A; 3002/3003 when unusable.
    2. Store the partner as INVITED with a new token B of ours, committed, because during our POST the partner calls
       our versions with token B.
    3. POST our credentials (token B) to its credentials endpoint with token A; it answers with its credentials and
       token C, which we use from then on. Any failure leaves the partner UNREGISTERED and re-raises.

    Staff start this, so errors keep their detail. `allowed_networks` (Partner.allowed_networks) lets a lab partner
    live on a non-public network."""
    endpoints, encode = client.partner_endpoints_fetch(
        versions_url=versions_url, token=token_a, encode_token=encode_token, partner_networks=allowed_networks
    )
    credentials_url = next((e["url"] for e in endpoints if e["identifier"] == "credentials"), None)
    if credentials_url is None:
        raise NoMatchingEndpoints("The partner has no credentials endpoint")
    check_partner_endpoints(endpoints=endpoints)
    token_b = credentials_token_generate()
    partner = Partner(
        name=name,
        versions_url=versions_url,
        version=VERSION,
        endpoints=endpoints,
        outgoing_token=token_a,
        encode_outgoing_token=encode,
        status=PartnerStatus.INVITED,
        allowed_networks=allowed_networks,
    )
    partner_incoming_token_set(partner=partner, token=token_b)
    partner.save()
    try:
        answer = client.credentials_post(
            url=credentials_url,
            token=token_a,
            encode_token=encode,
            credentials=our_credentials_as_ocpi(token=token_b),
            partner_networks=allowed_networks,
        )
        try:
            credentials = credentials_validate(answer)
        except ValidationError as exc:
            raise PartnerApiError(f"The partner's credentials are invalid: {exc.detail}") from exc
        _partner_apply_credentials(partner=partner, credentials=credentials, endpoints=endpoints, encode=encode)
        partner.status = PartnerStatus.REGISTERED
        partner.registered_at = timezone.now()
        _partner_save_registered(partner)
    except Exception:
        Partner.objects.filter(pk=partner.pk).update(
            status=PartnerStatus.UNREGISTERED, incoming_token_hash=None, outgoing_token=""
        )
        raise
    return partner


# --- Staff actions on a registered partner ------------------------------------------------------------------------


class PartnerActionRefused(OcpiError):
    """A staff action that does not apply to the partner as it stands (not registered, no credentials endpoint)."""


@transaction.atomic
def partner_suspend(*, partner: Partner) -> Partner:
    """Stop talking to a partner without ending the connection: its token is refused as not valid (HTTP 401) and
    pushes to it are held, pending, until `partner_resume`. Its tokens, sessions and credentials are kept.
    Suspending a suspended partner changes nothing."""
    partner = Partner.objects.select_for_update().get(pk=partner.pk)
    if partner.status == PartnerStatus.UNREGISTERED:
        raise PartnerActionRefused(f"{partner} is unregistered: there is nothing to suspend")
    if partner.suspended_at is None:
        partner.suspended_at = timezone.now()
        partner.save(update_fields=["suspended_at", "updated_at"])
    return partner


@transaction.atomic
def partner_resume(*, partner: Partner) -> Partner:
    """Accept the partner's token again and send what was held for it, in order. Resuming an active partner changes
    nothing."""
    partner = Partner.objects.select_for_update().get(pk=partner.pk)
    suspended_at = partner.suspended_at
    if suspended_at is not None:
        partner.suspended_at = None
        partner.save(update_fields=["suspended_at", "updated_at"])
        outbox_partner_release(partner=partner, suspended_at=suspended_at)
    return partner


def check_partner_may_rotate(*, partner: Partner) -> str:
    """The partner's credentials endpoint; refused unless it is registered and not suspended."""
    if partner.status != PartnerStatus.REGISTERED:
        raise PartnerActionRefused(f"{partner} is not registered: there are no credentials to rotate")
    if partner.is_suspended:
        raise PartnerActionRefused(f"{partner} is suspended: resume it first")
    url = partner.endpoint_url(identifier=ModuleID.CREDENTIALS)
    if not url:
        raise NoMatchingEndpoints(f"{partner} lists no credentials endpoint")
    return url


def partner_credentials_rotate(*, partner: Partner) -> Partner:
    """Replace both credentials tokens (credentials.asciidoc, PUT method, we being the client): a new token for the
    partner, sent in our credentials with a PUT to its credentials endpoint; it answers with a new token for us, and
    its versions and endpoints are fetched again with it. The partner's previous token is dead from the moment we
    send the PUT (the new one is committed first because the partner may call our versions with it meanwhile); when
    the PUT fails, the previous tokens stay in force and the error is re-raised with its detail (staff
    start this). Once the partner accepted, its new token is kept even if its endpoints cannot be read again
    (`last_error` says so). Nothing is held locked while the partner answers."""
    url = check_partner_may_rotate(partner=partner)
    new_token = credentials_token_generate()
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        check_partner_may_rotate(partner=partner)
        previous = (partner.incoming_token_hash, partner.incoming_token_prefix)
        partner_incoming_token_set(partner=partner, token=new_token)
        partner.save(update_fields=["incoming_token_hash", "incoming_token_prefix", "updated_at"])
    try:
        answer = client.credentials_put(
            url=url,
            token=partner.outgoing_token,
            encode_token=partner.encode_outgoing_token,
            credentials=our_credentials_as_ocpi(token=new_token),
            partner_networks=partner.allowed_networks,
        )
        try:
            credentials = credentials_validate(answer)
        except ValidationError as exc:
            raise PartnerApiError(f"The partner's credentials are invalid: {exc.detail}") from exc
    except Exception:
        Partner.objects.filter(pk=partner.pk, incoming_token_hash=credentials_token_hash(new_token)).update(
            incoming_token_hash=previous[0], incoming_token_prefix=previous[1]
        )
        raise
    # The partner holds our new token now: its answer is kept even when its endpoints cannot be read again.
    last_error = ""
    try:
        endpoints, encode = client.partner_endpoints_fetch(
            versions_url=credentials["url"],
            token=credentials["token"],
            encode_token=partner.encode_outgoing_token,
            partner_networks=partner.allowed_networks,
        )
        check_partner_endpoints(endpoints=endpoints)
    except OcpiError as exc:
        endpoints, encode = partner.endpoints, partner.encode_outgoing_token
        last_error = f"credentials rotated, but its endpoints could not be read again: {exc}"[:2000]
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        _partner_apply_credentials(partner=partner, credentials=credentials, endpoints=endpoints, encode=encode)
        partner.last_error = last_error
        partner.last_error_at = timezone.now() if last_error else partner.last_error_at
        _partner_save_registered(partner)
    return partner


# --- Tokens pushed by EMSPs (mod_tokens.asciidoc, Receiver interface) -------------------------------------------

TOKEN_FIELDS = (
    "contract_id",
    "visual_number",
    "issuer",
    "group_id",
    "valid",
    "whitelist",
    "language",
    "default_profile_type",
    "energy_contract",
    "last_updated",
)
TOKEN_IDS = ("country_code", "party_id", "uid", "type")


def check_partner_party(*, partner: Partner, country_code: str, party_id: str) -> None:
    """Client-owned objects live under the owner's country_code/party_id: a partner may only use its own parties
    (those it declared in its credentials). Others answer 404, as transport_and_format allows."""
    if (country_code.upper(), party_id.upper()) not in partner.party_ids():
        raise OcpiError(
            f"{country_code}/{party_id} is not one of your parties",
            http_status=404,
            status_code=StatusCode.INVALID_PARAMETERS,
        )


def check_object_ids(*, body: dict, url_ids: dict) -> None:
    """2001 when an id in the pushed object differs from the one in the URL (CiString: case-insensitive)."""
    for key, expected in url_ids.items():
        if key in body and str(body[key]).upper() != str(expected).upper():
            raise InvalidParameters(f"{key} {body[key]!r} differs from the URL ({expected!r})")


def _token_values(token: dict) -> dict:
    values = {key: token.get(key) for key in TOKEN_FIELDS if key in token}
    for key in ("visual_number", "group_id", "language", "default_profile_type"):
        if key in values and values[key] is None:
            values[key] = ""
    return values


def partner_token_put(
    *, partner: Partner, country_code: str, party_id: str, uid: str, token_type: str, token: dict
) -> tuple[PartnerToken, bool]:
    """Create or replace a Token (PUT). Optional fields left out go back to empty. Returns (token, created)."""
    check_partner_party(partner=partner, country_code=country_code, party_id=party_id)
    check_object_ids(
        body=token, url_ids={"country_code": country_code, "party_id": party_id, "uid": uid, "type": token_type}
    )
    values = dict.fromkeys(("visual_number", "group_id", "language", "default_profile_type"), "")
    values["energy_contract"] = None
    values.update(_token_values(token))
    with transaction.atomic():
        existing = (
            PartnerToken.objects.select_for_update()
            .filter(country_code__iexact=country_code, party_id__iexact=party_id, uid__iexact=uid, type=token_type)
            .first()
        )
        if existing is not None and existing.partner_id != partner.pk:
            raise OcpiError(
                f"{country_code}/{party_id} is not one of your parties",
                http_status=404,
                status_code=StatusCode.INVALID_PARAMETERS,
            )
        if existing is None and token_uid_held_by_another(partner=partner, uid=uid):
            raise InvalidParameters(f"Token uid {uid!r} belongs to another partner's customer")
        if existing is None or _local_list_fields(existing) != _local_list_fields(values):
            events.announce(events.tokens_changed)
        if existing is None:
            return PartnerToken.objects.create(
                partner=partner,
                country_code=token["country_code"].upper(),
                party_id=token["party_id"].upper(),
                uid=token["uid"],
                type=token_type,
                **values,
            ), True
        for key, value in values.items():
            setattr(existing, key, value)
        existing.save()
        return existing, False


@transaction.atomic
def partner_token_patch(
    *, partner: Partner, country_code: str, party_id: str, uid: str, token_type: str, changes: dict
) -> PartnerToken:
    """Update the fields given (PATCH; `last_updated` is required). 2004 when the token is unknown."""
    check_partner_party(partner=partner, country_code=country_code, party_id=party_id)
    check_object_ids(
        body=changes, url_ids={"country_code": country_code, "party_id": party_id, "uid": uid, "type": token_type}
    )
    token = (
        PartnerToken.objects.select_for_update()
        .filter(
            partner=partner,
            country_code__iexact=country_code,
            party_id__iexact=party_id,
            uid__iexact=uid,
            type=token_type,
        )
        .first()
    )
    if token is None:
        raise UnknownToken(f"Unknown token {uid!r} ({token_type}); PUT it first")
    before = _local_list_fields(token)
    for key, value in _token_values(changes).items():
        setattr(token, key, value)
    token.save()
    if _local_list_fields(token) != before:
        events.announce(events.tokens_changed)
    return token


def _local_list_fields(token: PartnerToken | dict) -> tuple:
    """What stations' local lists hold of a token (ocpi_api.authorization.partner_tokens_for_local_lists)."""
    get = token.get if isinstance(token, dict) else lambda name: getattr(token, name)
    return tuple(get(name) for name in ("valid", "whitelist", "group_id"))


# --- Hub client info (mod_hub_client_info.asciidoc, Receiver interface) -----------------------------------------


@transaction.atomic
def client_info_put(
    *, partner: Partner, country_code: str, party_id: str, client_info: dict
) -> tuple[ClientInfo, bool]:
    """Store the connection status of a party behind a hub. The ids in the object must match the URL (2001)."""
    check_object_ids(body=client_info, url_ids={"country_code": country_code, "party_id": party_id})
    return ClientInfo.objects.update_or_create(
        partner=partner,
        country_code=country_code.upper(),
        party_id=party_id.upper(),
        defaults={
            "role": client_info["role"],
            "status": client_info["status"],
            "last_updated": client_info["last_updated"],
        },
    )
