"""Tariffs module, Sender interface (mod_tariffs.asciidoc): the paginated list. Tariffs are billing's; the OCPI
projection is `billing.selectors.tariff_as_ocpi`."""

from billing.models import Tariff
from billing.selectors import tariff_as_ocpi
from ocpi_api.modules import InterfaceRole, OcpiModule, ocpi_route
from ocpi_api.pagination import paginated_response
from ocpi_api.views.base import OcpiView


class TariffListView(OcpiView):
    def get(self, request):
        return paginated_response(
            request=request,
            queryset=Tariff.objects.all(),
            serialize=lambda tariff: tariff_as_ocpi(tariff=tariff),
        )


MODULE = OcpiModule(
    identifier="tariffs",
    role=InterfaceRole.SENDER,
    url_name="tariffs",
    urlpatterns=[ocpi_route("tariffs", TariffListView.as_view(), name="tariffs")],
)
