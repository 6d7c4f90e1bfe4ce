"""OCPI 2.2.1 routes, mounted under /ocpi/: versions, version details, every registered module, the OpenAPI
description; anything else is an enveloped 404."""

from django.urls import re_path
from drf_spectacular.utils import extend_schema

from ocpi_api.registry import MODULES_2_2_1
from ocpi_api.schema import OcpiSchemaView
from ocpi_api.views.base import UnknownEndpointView
from ocpi_api.views.versions import VersionDetailsView, VersionsView

app_name = "ocpi"

urlpatterns = [
    re_path(r"^versions/?$", VersionsView.as_view(), name="versions"),
    re_path(r"^2\.2\.1/?$", VersionDetailsView.as_view(), name="version_details"),
    *(pattern for module in MODULES_2_2_1 for pattern in module.urlpatterns),
    re_path(r"^schema/?$", extend_schema(exclude=True)(OcpiSchemaView).as_view(), name="schema"),
    re_path(r"^.*$", UnknownEndpointView.as_view(), name="unknown"),
]
