"""Reads for the OCPI interface: partners by credentials token, and OCPI projections of our objects."""

import hashlib

from django.conf import settings
from django.db.models import F, Max, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.urls import reverse

from billing.encoding import ocpi_datetime
from billing.models import Cdr, Session
from cpo.models import EVSE, Connector, Location
from ocpi_api.models import ClientInfo, Partner, PartnerParty, PartnerStatus, PartnerToken, Role
from ocpi_api.modules import InterfaceRole, absolute_url
from ocpp_gateway.selectors import evse_status_shown


def credentials_token_hash(token: str) -> str:
    """SHA-256 hex of a credentials token. Our tokens are long random strings, so an unsalted fast hash is enough
    and lets us find the partner by an indexed lookup."""
    return hashlib.sha256(token.encode()).hexdigest()


def partner_get_by_token(*, token: str) -> Partner | None:
    """The partner whose incoming credentials token this is (never an UNREGISTERED or suspended one)."""
    return (
        Partner.objects.filter(incoming_token_hash=credentials_token_hash(token), suspended_at__isnull=True)
        .exclude(status=PartnerStatus.UNREGISTERED)
        .first()
    )


def partners_with_receiver(*, module: str) -> list[Partner]:
    """Registered partners that have a Receiver endpoint for `module`."""
    return [
        p
        for p in Partner.objects.filter(status=PartnerStatus.REGISTERED)
        if p.endpoint_url(identifier=module, role=InterfaceRole.RECEIVER)
    ]


def partner_of_party(*, country_code: str, party_id: str) -> Partner | None:
    """The registered partner that holds this OCPI party (PartnerParty: at most one); None for our own (empty)
    party."""
    if not country_code or not party_id:
        return None
    holder = (
        PartnerParty.objects.filter(
            country_code=country_code.upper(), party_id=party_id.upper(), partner__status=PartnerStatus.REGISTERED
        )
        .select_related("partner")
        .first()
    )
    return holder.partner if holder is not None else None


def partner_is_hub(*, partner: Partner) -> bool:
    """Whether the partner is a hub: its main role or any role it declared is HUB."""
    return partner.role == Role.HUB or any(r.get("role") == Role.HUB for r in partner.roles or [])


def partner_sender_parties(*, partner: Partner) -> set[tuple[str, str]]:
    """The parties a partner may name in OCPI-from headers (upper-cased): its own and, for a hub, those it told us
    are behind it (ClientInfo)."""
    parties = partner.party_ids()
    if partner_is_hub(partner=partner):
        parties |= {(c.upper(), p.upper()) for c, p in partner.client_infos.values_list("country_code", "party_id")}
    return parties


def our_business_details() -> dict:
    details = {"name": settings.OCPI_BUSINESS_NAME}
    if settings.OCPI_BUSINESS_WEBSITE:
        details["website"] = settings.OCPI_BUSINESS_WEBSITE
    return details


def our_credentials_as_ocpi(*, token: str) -> dict:
    """Our Credentials object, carrying the token the partner is to use with us."""
    return {
        "token": token,
        "url": absolute_url(reverse("ocpi:versions")),
        "roles": [
            {
                "role": "CPO",
                "business_details": our_business_details(),
                "party_id": settings.OCPI_PARTY_ID,
                "country_code": settings.OCPI_COUNTRY_CODE,
            }
        ],
    }


# --- Locations (mod_locations.asciidoc) -------------------------------------------------------------------------
# A Location's last_updated is the latest change of the location, one of its EVSEs or connectors; an EVSE's the
# latest of itself and its connectors. The asset models keep their own last_updated each; we derive these here.
# Only registered EVSEs are published: one a charger reported that staff never registered stays with staff.


def _evse_last_updated() -> Greatest:
    connectors = (
        Connector.objects.filter(evse=OuterRef("pk"))
        .order_by()
        .values("evse")
        .annotate(m=Max("last_updated"))
        .values("m")
    )
    return Greatest(F("last_updated"), Coalesce(Subquery(connectors), F("last_updated")))


def _location_last_updated() -> Greatest:
    evses = (
        EVSE.objects.filter(location=OuterRef("pk"), registered=True)
        .order_by()
        .values("location")
        .annotate(m=Max("last_updated"))
        .values("m")
    )
    connectors = (
        Connector.objects.filter(evse__location=OuterRef("pk"), evse__registered=True)
        .order_by()
        .values("evse__location")
        .annotate(m=Max("last_updated"))
        .values("m")
    )
    return Greatest(
        F("last_updated"),
        Coalesce(Subquery(evses), F("last_updated")),
        Coalesce(Subquery(connectors), F("last_updated")),
    )


def _evses_prefetch() -> Prefetch:
    return Prefetch(
        "evses",
        queryset=EVSE.objects.filter(registered=True)
        .annotate(ocpi_last_updated=_evse_last_updated())
        .select_related("station")
        .prefetch_related("connectors")
        .order_by("uid"),
    )


def location_list_published() -> QuerySet[Location]:
    """Published locations with their EVSEs and connectors; `ocpi_last_updated` is their OCPI last_updated.
    Unpublished (private) locations are never given to partners."""
    return (
        Location.objects.filter(publish=True)
        .annotate(ocpi_last_updated=_location_last_updated())
        .prefetch_related(_evses_prefetch())
    )


def location_get_published(*, location_id: str) -> Location | None:
    return location_list_published().filter(id=location_id).first()


def evse_get_published(*, location: Location, evse_uid: str) -> EVSE | None:
    return next((evse for evse in location.evses.all() if evse.uid == evse_uid and evse.registered), None)


def connector_get(*, evse: EVSE, connector_id: str) -> Connector | None:
    return next((c for c in evse.connectors.all() if c.connector_id == connector_id), None)


def _put(obj: dict, key: str, value) -> None:
    """Optional fields are left out rather than sent empty or null."""
    if value not in (None, "", [], {}):
        obj[key] = value


def connector_tariff_ids(connector: Connector) -> list[str]:
    """The connector's own tariffs, else its location's default tariff (what billing prices it with)."""
    if connector.tariff_ids:
        return list(connector.tariff_ids)
    default = connector.evse.location.default_tariff_id
    return [default] if default else []


def connector_as_ocpi(connector: Connector) -> dict:
    data = {
        "id": connector.connector_id,
        "standard": connector.standard,
        "format": connector.format,
        "power_type": connector.power_type,
        "max_voltage": connector.max_voltage,
        "max_amperage": connector.max_amperage,
    }
    _put(data, "max_electric_power", connector.max_electric_power)
    _put(data, "tariff_ids", connector_tariff_ids(connector))
    _put(data, "terms_and_conditions", connector.terms_and_conditions)
    data["last_updated"] = ocpi_datetime(connector.last_updated)
    return data


def evse_as_ocpi(evse: EVSE) -> dict:
    connectors = list(evse.connectors.all())
    data = {"uid": evse.uid}
    _put(data, "evse_id", evse.evse_id)
    data["status"] = evse_status_shown(evse=evse)
    _put(data, "capabilities", list(evse.capabilities or []))
    data["connectors"] = [connector_as_ocpi(c) for c in connectors]
    _put(data, "floor_level", evse.floor_level)
    _put(data, "physical_reference", evse.physical_reference)
    _put(data, "directions", list(evse.directions or []))
    _put(data, "parking_restrictions", list(evse.parking_restrictions or []))
    last_updated = getattr(evse, "ocpi_last_updated", None) or max(
        [evse.last_updated, *(c.last_updated for c in connectors)]
    )
    data["last_updated"] = ocpi_datetime(last_updated)
    return data


def location_as_ocpi(location: Location) -> dict:
    """The OCPI Location object, shaped like the specification's location_example.json."""
    evses = [evse for evse in location.evses.all() if evse.registered]
    data = {
        "country_code": settings.OCPI_COUNTRY_CODE,
        "party_id": settings.OCPI_PARTY_ID,
        "id": location.id,
        "publish": location.publish,
    }
    _put(data, "name", location.name)
    data["address"] = location.address
    data["city"] = location.city
    _put(data, "postal_code", location.postal_code)
    _put(data, "state", location.state)
    data["country"] = location.country
    data["coordinates"] = {"latitude": f"{location.latitude:.6f}", "longitude": f"{location.longitude:.6f}"}
    _put(data, "parking_type", location.parking_type)
    _put(data, "evses", [evse_as_ocpi(e) for e in evses])
    data["operator"] = our_business_details()
    _put(data, "facilities", list(location.facilities or []))
    data["time_zone"] = location.time_zone
    _put(data, "opening_times", location.opening_times)
    if location.charging_when_closed is not None:
        data["charging_when_closed"] = location.charging_when_closed
    last_updated = getattr(location, "ocpi_last_updated", None) or max(
        [location.last_updated, *(e.last_updated for e in evses)]
    )
    data["last_updated"] = ocpi_datetime(last_updated)
    return data


# --- Sessions and CDRs (billing's), as a partner may list them ---------------------------------------------------


def of_partner_tokens(partner: Partner) -> Q:
    """Sessions and CDRs carry the party of the token used; a partner sees those of its own parties only."""
    condition = Q(pk__in=[])
    for country_code, party_id in partner.party_ids():
        condition |= Q(emsp_country_code__iexact=country_code, emsp_party_id__iexact=party_id)
    return condition


def session_list_of_partner(*, partner: Partner) -> QuerySet[Session]:
    return Session.objects.filter(of_partner_tokens(partner))


def cdr_list_of_partner(*, partner: Partner) -> QuerySet[Cdr]:
    return Cdr.objects.filter(of_partner_tokens(partner))


# --- Tokens pushed by EMSPs -------------------------------------------------------------------------------------


def partner_token_get(*, partner: Partner, country_code: str, party_id: str, uid: str, token_type: str):
    """A token of this partner's parties (other partners' tokens are not found)."""
    return PartnerToken.objects.filter(
        partner=partner, country_code__iexact=country_code, party_id__iexact=party_id, uid__iexact=uid, type=token_type
    ).first()


def token_uid_held_by_another(*, partner: Partner, uid: str) -> bool:
    """Whether another partner pushed a token with this uid (any party, any type). A charger sends only the uid, so a
    uid is one partner's: whoever held it would get the driver's authorizations, sessions and CDRs."""
    return PartnerToken.objects.filter(uid__iexact=uid).exclude(partner=partner).exists()


def partner_token_as_ocpi(token) -> dict:
    data = {
        "country_code": token.country_code,
        "party_id": token.party_id,
        "uid": token.uid,
        "type": token.type,
        "contract_id": token.contract_id,
    }
    _put(data, "visual_number", token.visual_number)
    data["issuer"] = token.issuer
    _put(data, "group_id", token.group_id)
    data["valid"] = token.valid
    data["whitelist"] = token.whitelist
    _put(data, "language", token.language)
    _put(data, "default_profile_type", token.default_profile_type)
    _put(data, "energy_contract", token.energy_contract)
    data["last_updated"] = ocpi_datetime(token.last_updated)
    return data


# --- Hub client info --------------------------------------------------------------------------------------------


def client_info_get(*, partner: Partner, country_code: str, party_id: str):
    return ClientInfo.objects.filter(
        partner=partner, country_code__iexact=country_code, party_id__iexact=party_id
    ).first()


def client_info_as_ocpi(client_info) -> dict:
    return {
        "party_id": client_info.party_id,
        "country_code": client_info.country_code,
        "role": client_info.role,
        "status": client_info.status,
        "last_updated": ocpi_datetime(client_info.last_updated),
    }
