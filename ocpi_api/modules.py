"""The module registry: which OCPI 2.2.1 modules we serve, in which interface role, under which routes.

Version details and the URLconf are both built from `modules_2_2_1()`, so adding a module (sessions, cdrs,
commands, chargingprofiles) is one file in `ocpi_api/views/` defining `MODULE`, plus one line below."""

from dataclasses import dataclass, field
from importlib import import_module

from django.conf import settings
from django.urls import URLPattern, re_path, reverse

VERSION = "2.2.1"
URL_PREFIX = r"^2\.2\.1/"


class InterfaceRole:
    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


def ocpi_route(pattern: str, view, name: str) -> URLPattern:
    """A route under /ocpi/2.2.1/; the trailing slash is optional (the spec's examples use both)."""
    pattern = pattern.strip("/")
    return re_path(f"{URL_PREFIX}{pattern}/?$", view, name=name)


@dataclass(frozen=True)
class OcpiModule:
    identifier: str  # ModuleID
    role: str  # InterfaceRole
    url_name: str  # the route whose URL goes into version details
    urlpatterns: list[URLPattern] = field(default_factory=list)

    def url(self) -> str:
        return absolute_url(reverse(f"ocpi:{self.url_name}"))


def absolute_url(path: str) -> str:
    """Our public URL for a path (settings.OCPI_BASE_URL is what partners reach us at)."""
    return f"{settings.OCPI_BASE_URL}{path}"


def modules_2_2_1() -> list[OcpiModule]:
    from ocpi_api.views import credentials, hubclientinfo, locations, tariffs, tokens

    modules = [credentials.MODULE, locations.MODULE, tariffs.MODULE, tokens.MODULE, hubclientinfo.MODULE]
    # One line per further module:
    modules.append(import_module("ocpi_api.views.commands").MODULE)
    modules.append(import_module("ocpi_api.views.chargingprofiles").MODULE)
    modules.append(import_module("ocpi_api.views.sessions").MODULE)
    modules.append(import_module("ocpi_api.views.cdrs").MODULE)
    return modules
