"""How our OCPI views are described in OpenAPI (drf-spectacular's AutoSchema, set in REST_FRAMEWORK)."""

import re

from drf_spectacular.openapi import AutoSchema


class OcpiAutoSchema(AutoSchema):
    """One view serves several OCPI routes (a location, its EVSE, its connector): operation ids from the whole
    path and method, so each route has its own and none collide."""

    def get_operation_id(self) -> str:
        path = re.sub(r"[^A-Za-z0-9]+", "_", self.path).strip("_")
        return f"{path}_{self.method.lower()}"
