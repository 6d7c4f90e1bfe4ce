"""ChargingProfiles module, Receiver interface (mod_charging_profiles.asciidoc):
PUT / GET / DELETE /ocpi/2.2.1/chargingprofiles/{session_id}.

Answered at once with a ChargingProfileResponse; the charger's answer (SetChargingProfile, GetCompositeSchedule,
ClearChargingProfile) follows as a ChargingProfileResult / ActiveChargingProfileResult / ClearProfileResult POSTed
to `response_url` (see ocpi_api.commands)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from ocpi_api.commands.receive import command_receive
from ocpi_api.envelope import InvalidParameters, ocpi_response
from ocpi_api.models import CommandType
from ocpi_api.modules import InterfaceRole, OcpiModule, ocpi_route
from ocpi_api.serializers import OcpiEnvelopeSerializer
from ocpi_api.views.base import OcpiView, UnknownEndpointView


class StrictNumberField(serializers.DecimalField):
    """A JSON number (not a string) with at most one digit after the point, as the spec says for limits."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=12, decimal_places=1, min_value=0, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(str(data))


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class ChargingProfilePeriodInput(serializers.Serializer):
    start_period = StrictIntegerField(min_value=0)
    limit = StrictNumberField()


class ChargingProfileInput(serializers.Serializer):
    start_date_time = serializers.DateTimeField(required=False, allow_null=True)
    duration = StrictIntegerField(min_value=0, required=False, allow_null=True)
    charging_rate_unit = serializers.ChoiceField(choices=["W", "A"])
    min_charging_rate = StrictNumberField(required=False, allow_null=True)
    charging_profile_period = ChargingProfilePeriodInput(many=True, allow_empty=False)

    def validate_charging_profile_period(self, periods):
        starts = [p["start_period"] for p in periods]
        if starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
            raise serializers.ValidationError("start_period must begin at 0 and increase")
        return periods


class SetChargingProfileInput(serializers.Serializer):
    charging_profile = ChargingProfileInput()
    response_url = serializers.URLField(max_length=512)


class ActiveChargingProfileQuery(serializers.Serializer):
    duration = serializers.IntegerField(min_value=1, max_value=7 * 24 * 3600)
    response_url = serializers.URLField(max_length=512)


class ClearProfileQuery(serializers.Serializer):
    response_url = serializers.URLField(max_length=512)


def _validated(serializer_class, data) -> dict:
    if not isinstance(data, dict):
        raise InvalidParameters("an object is expected")
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ChargingProfileView(OcpiView):
    def _answer(self, *, command: str, session_id: str, data: dict, request_data: dict):
        if len(session_id) > 36:
            raise InvalidParameters("session_id is at most 36 characters")
        answer = command_receive(
            partner=self.partner, command=command, data={**data, "session_id": session_id}, request=request_data
        )
        return ocpi_response(
            answer.as_ocpi(),
            http_status=answer.http_status,
            status_code=answer.status_code,
            status_message=answer.message or "Success",
        )

    @extend_schema(responses=OcpiEnvelopeSerializer)
    def get(self, request, session_id: str):
        query = {
            key: request.query_params.get(key)
            for key in ("duration", "response_url")
            if request.query_params.get(key) is not None
        }
        data = _validated(ActiveChargingProfileQuery, query)
        return self._answer(
            command=CommandType.GET_ACTIVE_CHARGING_PROFILE,
            session_id=session_id,
            data=data,
            request_data={"duration": data["duration"], "response_url": data["response_url"]},
        )

    @extend_schema(request=SetChargingProfileInput, responses=OcpiEnvelopeSerializer)
    def put(self, request, session_id: str):
        data = _validated(SetChargingProfileInput, request.data)
        return self._answer(
            command=CommandType.SET_CHARGING_PROFILE, session_id=session_id, data=data, request_data=request.data
        )

    @extend_schema(responses=OcpiEnvelopeSerializer)
    def delete(self, request, session_id: str):
        query = {"response_url": request.query_params["response_url"]} if "response_url" in request.query_params else {}
        data = _validated(ClearProfileQuery, query)
        return self._answer(
            command=CommandType.CLEAR_CHARGING_PROFILE,
            session_id=session_id,
            data=data,
            request_data={"response_url": data["response_url"]},
        )


MODULE = OcpiModule(
    identifier="chargingprofiles",
    role=InterfaceRole.RECEIVER,
    url_name="chargingprofiles",
    urlpatterns=[
        ocpi_route("chargingprofiles", UnknownEndpointView.as_view(), name="chargingprofiles"),
        ocpi_route(r"chargingprofiles/(?P<session_id>[^/]+)", ChargingProfileView.as_view(), name="chargingprofile"),
    ],
)
