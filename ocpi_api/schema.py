"""The OpenAPI description of our OCPI interface (drf-spectacular), served at /ocpi/schema/."""

from django.urls import include, path
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.views import SpectacularAPIView

# The schema covers the OCPI URLconf only, with its real /ocpi/ prefix.
urlpatterns = [path("ocpi/", include("ocpi_api.urls"))]


class OcpiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "ocpi_api.auth.OcpiTokenAuthentication"
    name = "ocpiCredentialsToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <base64 of the credentials token>` (OCPI 2.2.1); a plain token is accepted too.",
        }


class OcpiSchemaView(SpectacularAPIView):
    authentication_classes = []
    permission_classes = []
    urlconf = "ocpi_api.schema"
    custom_settings = {
        "TITLE": "OCPI 2.2.1 CPO interface",
        "DESCRIPTION": "Every response is the OCPI envelope: data, status_code, status_message, timestamp.",
    }
