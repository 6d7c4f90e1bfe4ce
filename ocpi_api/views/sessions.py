"""Sessions module, Sender interface (mod_sessions.asciidoc): the paginated list of the sessions of the partner's own
tokens. `date_from` is required for this module (2001 without it). Sessions are billing's; the OCPI projection is
`billing.selectors.session_as_ocpi`.

PUT `sessions/{session_id}/charging_preferences` takes the driver's ChargingPreferences for an ongoing session and
answers with a ChargingPreferencesResponse (see ocpi_api.charging_preferences)."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from billing.selectors import session_as_ocpi
from ocpi_api.charging_preferences import charging_preferences_set
from ocpi_api.envelope import InvalidParameters, ocpi_response
from ocpi_api.models import ProfileType
from ocpi_api.modules import InterfaceRole, OcpiModule, ocpi_route
from ocpi_api.pagination import paginated_response
from ocpi_api.selectors import session_list_of_partner
from ocpi_api.serializers import OcpiEnvelopeSerializer
from ocpi_api.views.base import OcpiView


class SessionListView(OcpiView):
    def get(self, request):
        if not request.query_params.get("date_from"):
            raise InvalidParameters("date_from is required (mod_sessions: GET of the Sender interface)")
        return paginated_response(
            request=request,
            queryset=session_list_of_partner(partner=self.partner),
            serialize=lambda session: session_as_ocpi(session=session),
        )


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean, not "true" or 1."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictDecimalField(serializers.DecimalField):
    """An OCPI number: a JSON number (not a string), rounded to `decimal_places`."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        try:
            value = Decimal(str(data)).quantize(Decimal(1).scaleb(-self.decimal_places), rounding=ROUND_HALF_UP)
        except InvalidOperation:
            self.fail("invalid")
        return super().to_internal_value(str(value))


class ChargingPreferencesInput(serializers.Serializer):
    profile_type = serializers.ChoiceField(choices=ProfileType.choices)
    departure_time = serializers.DateTimeField(required=False, allow_null=True)
    energy_need = StrictDecimalField(max_digits=12, decimal_places=4, min_value=0, required=False, allow_null=True)
    discharge_allowed = StrictBooleanField(required=False, allow_null=True)


class ChargingPreferencesView(OcpiView):
    @extend_schema(request=ChargingPreferencesInput, responses=OcpiEnvelopeSerializer)
    def put(self, request, session_id: str):
        if len(session_id) > 36:
            raise InvalidParameters("session_id is at most 36 characters")
        if not isinstance(request.data, dict):
            raise InvalidParameters("a ChargingPreferences object is expected")
        serializer = ChargingPreferencesInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        answer = charging_preferences_set(
            partner=self.partner, session_id=session_id, preferences=serializer.validated_data, request=request.data
        )
        return ocpi_response(
            answer.response,
            http_status=answer.http_status,
            status_code=answer.status_code,
            status_message=answer.message,
        )


MODULE = OcpiModule(
    identifier="sessions",
    role=InterfaceRole.SENDER,
    url_name="sessions",
    urlpatterns=[
        ocpi_route("sessions", SessionListView.as_view(), name="sessions"),
        ocpi_route(
            r"sessions/(?P<session_id>[^/]+)/charging_preferences",
            ChargingPreferencesView.as_view(),
            name="session_charging_preferences",
        ),
    ],
)
