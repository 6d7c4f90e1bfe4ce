"""What an OCPI 2.2.1 module of ours is: its ModuleID, interface role and routes (`OcpiModule`), and the helpers a
view needs to declare one. Each view module defines its `MODULE`; `ocpi_api.registry` lists them. Views import this
small module only, never the registry."""

from dataclasses import dataclass, field

from django.conf import settings
from django.urls import URLPattern, re_path, reverse

VERSION = "2.2.1"
URL_PREFIX = r"^2\.2\.1/"


class InterfaceRole:
    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


class ModuleID:
    """OCPI 2.2.1 ModuleID (version_information_endpoint.asciidoc): every functional and configuration module."""

    CDRS = "cdrs"
    CHARGING_PROFILES = "chargingprofiles"
    COMMANDS = "commands"
    CREDENTIALS = "credentials"
    HUB_CLIENT_INFO = "hubclientinfo"
    LOCATIONS = "locations"
    SESSIONS = "sessions"
    TARIFFS = "tariffs"
    TOKENS = "tokens"

    ALL = frozenset(
        {CDRS, CHARGING_PROFILES, COMMANDS, CREDENTIALS, HUB_CLIENT_INFO, LOCATIONS, SESSIONS, TARIFFS, TOKENS}
    )


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
