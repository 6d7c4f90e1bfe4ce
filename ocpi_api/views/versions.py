"""Versions module (version_information_endpoint.asciidoc): /ocpi/versions and /ocpi/2.2.1."""

from django.urls import reverse

from ocpi_api.auth import ConfigurationModuleAccess
from ocpi_api.envelope import ocpi_response
from ocpi_api.modules import VERSION, absolute_url
from ocpi_api.registry import MODULES_2_2_1
from ocpi_api.views.base import OcpiView


def versions_as_ocpi() -> list[dict]:
    return [{"version": VERSION, "url": absolute_url(reverse("ocpi:version_details"))}]


def version_details_as_ocpi() -> dict:
    return {
        "version": VERSION,
        "endpoints": [
            {"identifier": module.identifier, "role": module.role, "url": module.url()} for module in MODULES_2_2_1
        ],
    }


class VersionsView(OcpiView):
    permission_classes = [ConfigurationModuleAccess]
    routed = False

    def get(self, request):
        return ocpi_response(versions_as_ocpi())


class VersionDetailsView(OcpiView):
    permission_classes = [ConfigurationModuleAccess]
    routed = False

    def get(self, request):
        return ocpi_response(version_details_as_ocpi())
