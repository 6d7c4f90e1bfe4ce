"""Credentials module (credentials.asciidoc): GET, POST (register), PUT (update / re-key), DELETE (unregister)."""

from drf_spectacular.utils import extend_schema

from ocpi_api import services
from ocpi_api.auth import ConfigurationModuleAccess
from ocpi_api.envelope import ocpi_response
from ocpi_api.modules import InterfaceRole, OcpiModule, ocpi_route
from ocpi_api.selectors import our_credentials_as_ocpi
from ocpi_api.serializers import CredentialsSerializer, OcpiEnvelopeSerializer, credentials_validate
from ocpi_api.views.base import OcpiView


class CredentialsView(OcpiView):
    """Token A reaches GET and POST; a registered partner GET, PUT and DELETE; the state decides 405."""

    permission_classes = [ConfigurationModuleAccess]
    routed = False

    def get(self, request):
        # The credentials to access our platform are the ones the partner just used.
        return ocpi_response(our_credentials_as_ocpi(token=request.auth.token))

    @extend_schema(request=CredentialsSerializer, responses=OcpiEnvelopeSerializer)
    def post(self, request):
        services.check_partner_may_register(partner=self.partner)
        credentials = credentials_validate(request.data)
        _, token = services.credentials_register(partner=self.partner, credentials=credentials)
        return ocpi_response(our_credentials_as_ocpi(token=token))

    @extend_schema(request=CredentialsSerializer, responses=OcpiEnvelopeSerializer)
    def put(self, request):
        services.check_partner_registered(partner=self.partner)
        credentials = credentials_validate(request.data)
        _, token = services.credentials_update(partner=self.partner, credentials=credentials)
        return ocpi_response(our_credentials_as_ocpi(token=token))

    def delete(self, request):
        services.credentials_unregister(partner=self.partner)
        return ocpi_response()


MODULE = OcpiModule(
    identifier="credentials",
    role=InterfaceRole.SENDER,  # the role is irrelevant for credentials; the spec advises SENDER
    url_name="credentials",
    urlpatterns=[ocpi_route("credentials", CredentialsView.as_view(), name="credentials")],
)
