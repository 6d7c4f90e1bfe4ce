"""Locations module, Sender interface (mod_locations.asciidoc): the list, and one Location, EVSE or Connector."""

from ocpi_api import selectors
from ocpi_api.envelope import UnknownObject, ocpi_response
from ocpi_api.modules import InterfaceRole, OcpiModule, ocpi_route
from ocpi_api.pagination import paginated_response
from ocpi_api.views.base import OcpiView


class LocationListView(OcpiView):
    def get(self, request):
        return paginated_response(
            request=request,
            queryset=selectors.location_list_published(),
            serialize=selectors.location_as_ocpi,
            date_field="ocpi_last_updated",
        )


class LocationObjectView(OcpiView):
    def get(self, request, location_id: str, evse_uid: str | None = None, connector_id: str | None = None):
        location = selectors.location_get_published(location_id=location_id)
        if location is None:
            raise UnknownObject(f"Unknown location {location_id!r}")
        if evse_uid is None:
            return ocpi_response(selectors.location_as_ocpi(location))
        evse = selectors.evse_get_published(location=location, evse_uid=evse_uid)
        if evse is None:
            raise UnknownObject(f"Unknown EVSE {evse_uid!r} at location {location_id!r}")
        if connector_id is None:
            return ocpi_response(selectors.evse_as_ocpi(evse))
        connector = selectors.connector_get(evse=evse, connector_id=connector_id)
        if connector is None:
            raise UnknownObject(f"Unknown connector {connector_id!r} of EVSE {evse_uid!r}")
        return ocpi_response(selectors.connector_as_ocpi(connector))


_location = LocationObjectView.as_view()
MODULE = OcpiModule(
    identifier="locations",
    role=InterfaceRole.SENDER,
    url_name="locations",
    urlpatterns=[
        ocpi_route("locations", LocationListView.as_view(), name="locations"),
        ocpi_route(r"locations/(?P<location_id>[^/]{1,36})", _location, name="location"),
        ocpi_route(r"locations/(?P<location_id>[^/]{1,36})/(?P<evse_uid>[^/]{1,36})", _location, name="evse"),
        ocpi_route(
            r"locations/(?P<location_id>[^/]{1,36})/(?P<evse_uid>[^/]{1,36})/(?P<connector_id>[^/]{1,36})",
            _location,
            name="connector",
        ),
    ],
)
