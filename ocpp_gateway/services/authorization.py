"""Authorization (2.0.1 block C; 1.6 Core): may this token charge here, and what a transaction keeps of the
authorization that let it start.

The decision itself is the authorizers' (ocpp_gateway.authorization). These services read our database only: when an
authorizer must ask an EMSP in real time they return its `RealtimeCheck`, before writing anything, and the gateway
calls them again with the result as `auth` once the check has run off the database threads (handlers.base
`db_authorizing`). A message about a transaction that carries the token that started it is answered with the stored
authorization: nobody is asked twice about one transaction.
"""

from cpo.models import EVSE, ChargingStation
from ocpp_gateway.authorization import (
    AuthorizationRequest,
    AuthorizationResult,
    AuthorizationStatus,
    RealtimeCheck,
    id_tag_authorize_step,
)
from ocpp_gateway.models import Transaction
from ocpp_gateway.selectors import station_place


def token_authorize(
    *, station: ChargingStation, id_tag: str, id_token_type: str = "", evse: EVSE | None = None
) -> AuthorizationResult | RealtimeCheck:
    """The authorizers' decision for a token at this station (and EVSE), or the real-time check that makes it."""
    return token_authorize_at(
        identity=station.identity,
        location_id=station.location_id,
        evse_uid=evse.uid if evse else "",
        id_tag=id_tag,
        id_token_type=id_token_type,
    )


def token_authorize_at(
    *, identity: str, location_id: str | None, evse_uid: str = "", id_tag: str, id_token_type: str = ""
) -> AuthorizationResult | RealtimeCheck:
    """`token_authorize` from what it needs of the station and EVSE (selectors.station_place), without models."""
    return id_tag_authorize_step(
        AuthorizationRequest(
            id_tag=id_tag,
            id_token_type=id_token_type,
            station_identity=identity,
            location_id=location_id or "",
            evse_uid=evse_uid,
        )
    )


def id_tag_check(
    *,
    station_pk: int,
    id_tag: str,
    id_token_type: str = "",
    ocpp_evse_id: int | None = None,
    auth: AuthorizationResult | None = None,
) -> AuthorizationResult | RealtimeCheck:
    """Authorize.req: may this token charge here?"""
    if auth is not None:
        return auth
    place = station_place(station_pk=station_pk, ocpp_evse_id=ocpp_evse_id)
    return token_authorize_at(
        identity=place.identity,
        location_id=place.location_id,
        evse_uid=place.evse_uid,
        id_tag=id_tag,
        id_token_type=id_token_type,
    )


def token_authorize_stored(
    *, tx: Transaction, station: ChargingStation, id_tag: str, id_token_type: str = "", evse: EVSE | None = None
) -> AuthorizationResult:
    """A token in a message about a transaction that has ended, or a replayed one: answered from our database only.
    The token that started it gets the stored authorization; another one what our database says of it (a real-time
    check counts as unanswered: replays and late messages never make us call anyone)."""
    if is_starting_token(tx, id_tag):
        return authorization_stored(tx)
    step = token_authorize(station=station, id_tag=id_tag, id_token_type=id_token_type, evse=evse)
    return step.decide(None) if isinstance(step, RealtimeCheck) else step


def authorization_stored(tx: Transaction) -> AuthorizationResult:
    """The authorization a transaction was started with, as it was decided then."""
    return AuthorizationResult(
        status=tx.auth_status or AuthorizationStatus.INVALID,
        source=tx.auth_source,
        group_id=tx.group_id,
        authorization_reference=tx.authorization_reference,
        auth_method=tx.auth_method,
        token_uid=tx.token_uid,
        token_type=tx.token_type,
        contract_id=tx.contract_id,
        country_code=tx.token_country_code,
        party_id=tx.token_party_id,
    )


def authorization_fields(auth: AuthorizationResult) -> dict:
    """What a transaction keeps of the authorization that let it start (for its OCPI Session and CDR)."""
    return {
        "auth_status": auth.status,
        "auth_source": auth.source,
        "group_id": auth.group_id,
        "authorization_reference": auth.authorization_reference,
        "auth_method": auth.auth_method,
        "token_uid": auth.token_uid,
        "token_type": auth.token_type,
        "contract_id": auth.contract_id,
        "token_country_code": auth.country_code,
        "token_party_id": auth.party_id,
    }


def is_starting_token(tx: Transaction, id_tag: str) -> bool:
    """Whether `id_tag` is the token the transaction was started with (idTags are case-insensitive)."""
    return bool(tx.id_tag) and tx.id_tag.casefold() == id_tag.casefold()
