"""Commands module, Receiver interface (mod_commands.asciidoc): POST /ocpi/2.2.1/commands/{command}.

The body is validated per CommandType (2001 when it does not fit), then `ocpi_api.commands.receive.command_receive`
answers at once with a CommandResponse; the CommandResult follows at the request's `response_url`."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from ocpi_api.commands.receive import command_receive
from ocpi_api.envelope import InvalidParameters, ocpi_response
from ocpi_api.models import CommandType
from ocpi_api.modules import InterfaceRole, OcpiModule, ocpi_route
from ocpi_api.serializers import OcpiEnvelopeSerializer, StrictCharField, TokenSerializer, printable_ascii
from ocpi_api.views.base import OcpiView, UnknownEndpointView


def _id(required: bool = True) -> StrictCharField:
    """CiString(36)."""
    if required:
        return StrictCharField(max_length=36, validators=[printable_ascii])
    return StrictCharField(max_length=36, validators=[printable_ascii], required=False, allow_null=True)


class CommandInput(serializers.Serializer):
    response_url = serializers.URLField(max_length=512)


class StartSessionInput(CommandInput):
    token = TokenSerializer()
    location_id = _id()
    evse_uid = _id(required=False)
    connector_id = _id(required=False)
    authorization_reference = _id(required=False)

    def validate(self, attrs):
        if attrs.get("connector_id") and not attrs.get("evse_uid"):
            raise serializers.ValidationError({"evse_uid": "required when connector_id is set"})
        return attrs


class StopSessionInput(CommandInput):
    session_id = _id()


class UnlockConnectorInput(CommandInput):
    location_id = _id()
    evse_uid = _id()
    connector_id = _id()


class ReserveNowInput(CommandInput):
    token = TokenSerializer()
    expiry_date = serializers.DateTimeField()
    reservation_id = _id()
    location_id = _id()
    evse_uid = _id(required=False)
    authorization_reference = _id(required=False)

    def validate_expiry_date(self, value):
        from django.utils import timezone

        if value <= timezone.now():
            raise serializers.ValidationError("must be in the future")
        return value


class CancelReservationInput(CommandInput):
    reservation_id = _id()


INPUTS = {
    CommandType.START_SESSION: StartSessionInput,
    CommandType.STOP_SESSION: StopSessionInput,
    CommandType.UNLOCK_CONNECTOR: UnlockConnectorInput,
    CommandType.RESERVE_NOW: ReserveNowInput,
    CommandType.CANCEL_RESERVATION: CancelReservationInput,
}


class CommandView(OcpiView):
    @extend_schema(request=StartSessionInput, responses=OcpiEnvelopeSerializer)
    def post(self, request, command: str):
        input_class = INPUTS.get(command)
        if input_class is None:
            raise InvalidParameters(f"{command!r} is not a CommandType")
        if not isinstance(request.data, dict):
            raise InvalidParameters(f"a {input_class.__name__.removesuffix('Input')} object is expected")
        serializer = input_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        answer = command_receive(
            partner=self.partner, command=command, data=serializer.validated_data, request=request.data
        )
        return ocpi_response(
            answer.as_ocpi(),
            http_status=answer.http_status,
            status_code=answer.status_code,
            status_message=answer.message or "Success",
        )


MODULE = OcpiModule(
    identifier="commands",
    role=InterfaceRole.RECEIVER,
    url_name="commands",
    urlpatterns=[
        ocpi_route("commands", UnknownEndpointView.as_view(), name="commands"),
        ocpi_route(r"commands/(?P<command>[^/]+)", CommandView.as_view(), name="command"),
    ],
)
