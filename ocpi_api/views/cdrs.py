"""CDRs module, Sender interface (mod_cdrs.asciidoc): the paginated list of the CDRs (credit CDRs included) of the
partner's own tokens. CDRs are billing's; the OCPI projection is `billing.selectors.cdr_as_ocpi`."""

from billing.selectors import cdr_as_ocpi
from ocpi_api.modules import InterfaceRole, OcpiModule, ocpi_route
from ocpi_api.pagination import paginated_response
from ocpi_api.selectors import cdr_list_of_partner
from ocpi_api.views.base import OcpiView


class CdrListView(OcpiView):
    def get(self, request):
        return paginated_response(
            request=request,
            queryset=cdr_list_of_partner(partner=self.partner),
            serialize=lambda cdr: cdr_as_ocpi(cdr=cdr),
        )


MODULE = OcpiModule(
    identifier="cdrs",
    role=InterfaceRole.SENDER,
    url_name="cdrs",
    urlpatterns=[ocpi_route("cdrs", CdrListView.as_view(), name="cdrs")],
)
