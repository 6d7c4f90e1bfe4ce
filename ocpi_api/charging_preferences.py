"""Charging Preferences (mod_sessions "Set: Charging Preferences", Sender interface PUT
`sessions/{session_id}/charging_preferences`): the driver's wishes for an ongoing session, sent by its eMSP.

`charging_preferences_set` checks the session is the partner's own (else 404 / 2003, as for an unknown one: we do not
tell partners which sessions exist) and answers with a ChargingPreferencesResponse:

- the session's EVSE lacks CHARGING_PREFERENCES_CAPABLE: NOT_POSSIBLE in an HTTP 404 / OCPI 2001 answer (the
  ChargingPreferencesResponse enum section says 404 / 2001 for that case);
- the session has ended, or departure_time is already past: NOT_POSSIBLE (200 / 1000);
- CHEAP and GREEN move charging in time, so they need both departure_time (DEPARTURE_REQUIRED) and energy_need
  (ENERGY_NEED_REQUIRED); FAST and REGULAR need neither;
- otherwise ACCEPTED.

Every PUT is kept as a ChargingPreferences record, for staff. Nothing is sent to the charger yet."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from cpo.models import EVSE, Capability
from ocpi_api.commands.receive import session_get
from ocpi_api.envelope import StatusCode, UnknownObject
from ocpi_api.models import ChargingPreferences, ChargingPreferencesResponse, Partner, ProfileType
from ocpp_gateway.services.load_management import transaction_preference_record

# What a driver's profile_type means to load management (ocpp_gateway.load_planner: a higher priority gets current
# first under a site's limit): FAST asks for as much as possible; CHEAP and GREEN accept less now (we have no price
# or energy-mix signal per hour to plan them by), REGULAR is everyone else.
PLANNER_PRIORITY = {ProfileType.FAST: 1, ProfileType.REGULAR: 0, ProfileType.CHEAP: -1, ProfileType.GREEN: -1}

# Profile types whose smart charging shifts energy in time: they need to know how much, and by when.
PROFILE_TYPES_NEEDING_DEPARTURE_AND_ENERGY = (ProfileType.CHEAP, ProfileType.GREEN)


@dataclass(frozen=True)
class ChargingPreferencesAnswer:
    response: str
    http_status: int = 200
    status_code: int = StatusCode.SUCCESS
    message: str = "Success"


def evse_accepts_charging_preferences(evse: EVSE | None) -> bool:
    return evse is not None and Capability.CHARGING_PREFERENCES_CAPABLE in (evse.capabilities or [])


def _response_for(
    *, transaction, evse, profile_type: str, departure_time: datetime | None, energy_need: Decimal | None
) -> ChargingPreferencesAnswer:
    if not evse_accepts_charging_preferences(evse):
        return ChargingPreferencesAnswer(
            ChargingPreferencesResponse.NOT_POSSIBLE,
            http_status=404,
            status_code=StatusCode.INVALID_PARAMETERS,
            message="The EVSE of this session is not CHARGING_PREFERENCES_CAPABLE",
        )
    if transaction is None or transaction.status != transaction.Status.ACTIVE:
        return ChargingPreferencesAnswer(ChargingPreferencesResponse.NOT_POSSIBLE, message="The session has ended")
    if departure_time is not None and departure_time <= timezone.now():
        return ChargingPreferencesAnswer(
            ChargingPreferencesResponse.NOT_POSSIBLE, message="departure_time is in the past"
        )
    if profile_type in PROFILE_TYPES_NEEDING_DEPARTURE_AND_ENERGY:
        if departure_time is None:
            return ChargingPreferencesAnswer(
                ChargingPreferencesResponse.DEPARTURE_REQUIRED, message=f"{profile_type} needs departure_time"
            )
        if energy_need is None:
            return ChargingPreferencesAnswer(
                ChargingPreferencesResponse.ENERGY_NEED_REQUIRED, message=f"{profile_type} needs energy_need"
            )
    return ChargingPreferencesAnswer(ChargingPreferencesResponse.ACCEPTED)


def charging_preferences_set(
    *, partner: Partner, session_id: str, preferences: dict, request: dict
) -> ChargingPreferencesAnswer:
    """Answer a ChargingPreferences PUT and keep it. `preferences` is the validated object (profile_type,
    departure_time, energy_need, discharge_allowed), `request` what the partner sent. Raises UnknownObject (404 / 2003)
    for a session we do not know or that is not of one of the partner's parties."""
    session = session_get(session_id=session_id)
    if session is None or (session.emsp_country_code.upper(), session.emsp_party_id.upper()) not in partner.party_ids():
        raise UnknownObject(f"Unknown session {session_id!r}")
    transaction = session.transaction
    evse = transaction.evse if transaction is not None else None
    departure_time = preferences.get("departure_time")
    energy_need = preferences.get("energy_need")
    answer = _response_for(
        transaction=transaction,
        evse=evse,
        profile_type=preferences["profile_type"],
        departure_time=departure_time,
        energy_need=energy_need,
    )
    ChargingPreferences.objects.create(
        partner=partner,
        session_id=session.id,
        transaction=transaction,
        evse=evse,
        profile_type=preferences["profile_type"],
        departure_time=departure_time,
        energy_need=energy_need,
        discharge_allowed=bool(preferences.get("discharge_allowed")),
        response=answer.response,
        request=request,
    )
    if answer.response == ChargingPreferencesResponse.ACCEPTED and transaction is not None:
        transaction_preference_record(
            transaction_pk=transaction.pk,
            priority=PLANNER_PRIORITY.get(preferences["profile_type"], 0),
            departure_time=departure_time,
        )
    return answer


def charging_preferences_current(*, session_id: str) -> ChargingPreferences | None:
    """The latest ACCEPTED preferences of a session, or None."""
    return ChargingPreferences.objects.filter(
        session_id=session_id, response=ChargingPreferencesResponse.ACCEPTED
    ).first()
