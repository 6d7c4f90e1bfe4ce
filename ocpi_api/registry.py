"""The OCPI 2.2.1 modules we serve: version details and the URLconf are both built from `MODULES_2_2_1`, so adding a
module is one file in `ocpi_api/views/` defining `MODULE` (see `ocpi_api.modules`), plus one line below. Only the
versions view and the URLconf import this module."""

from ocpi_api.modules import OcpiModule
from ocpi_api.views import (
    cdrs,
    chargingprofiles,
    commands,
    credentials,
    hubclientinfo,
    locations,
    sessions,
    tariffs,
    tokens,
)

MODULES_2_2_1: tuple[OcpiModule, ...] = (
    credentials.MODULE,
    locations.MODULE,
    tariffs.MODULE,
    tokens.MODULE,
    hubclientinfo.MODULE,
    commands.MODULE,
    chargingprofiles.MODULE,
    sessions.MODULE,
    cdrs.MODULE,
)
