"""HubClientInfo module, Receiver interface (mod_hub_client_info.asciidoc): GET/PUT
/ocpi/2.2.1/hubclientinfo/{country_code}/{party_id}. A configuration module: no routing headers. The Hub is the data
owner: only a partner with the role HUB may use it (403 for others)."""

from drf_spectacular.utils import extend_schema

from ocpi_api import selectors, services
from ocpi_api.auth import HubAccess
from ocpi_api.envelope import UnknownObject, ocpi_response
from ocpi_api.modules import InterfaceRole, OcpiModule, ocpi_route
from ocpi_api.serializers import ClientInfoSerializer, OcpiEnvelopeSerializer, client_info_validate
from ocpi_api.views.base import OcpiView, UnknownEndpointView


class ClientInfoView(OcpiView):
    permission_classes = [HubAccess]
    routed = False

    def get(self, request, country_code: str, party_id: str):
        client_info = selectors.client_info_get(partner=self.partner, country_code=country_code, party_id=party_id)
        if client_info is None:
            raise UnknownObject(f"No ClientInfo for {country_code}/{party_id}")
        return ocpi_response(selectors.client_info_as_ocpi(client_info))

    @extend_schema(request=ClientInfoSerializer, responses=OcpiEnvelopeSerializer)
    def put(self, request, country_code: str, party_id: str):
        client_info = client_info_validate(request.data)
        _, created = services.client_info_put(
            partner=self.partner, country_code=country_code, party_id=party_id, client_info=client_info
        )
        return ocpi_response(http_status=201 if created else 200)


MODULE = OcpiModule(
    identifier="hubclientinfo",
    role=InterfaceRole.RECEIVER,
    url_name="hubclientinfo",
    urlpatterns=[
        ocpi_route("hubclientinfo", UnknownEndpointView.as_view(), name="hubclientinfo"),
        ocpi_route(
            r"hubclientinfo/(?P<country_code>[^/]+)/(?P<party_id>[^/]+)", ClientInfoView.as_view(), name="client_info"
        ),
    ],
)
