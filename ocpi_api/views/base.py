"""The base of every OCPI view: our authentication, the envelope for errors, and the OCPI headers."""

import uuid

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from ocpi_api.auth import OcpiTokenAuthentication, PartnerCredentials, RegisteredPartnerAccess
from ocpi_api.envelope import UnknownObject, ocpi_exception_handler
from ocpi_api.serializers import OcpiEnvelopeSerializer

REQUEST_ID = "X-Request-ID"
CORRELATION_ID = "X-Correlation-ID"


class OcpiView(APIView):
    """A view of a functional module: registered partners only, routing headers on the response."""

    authentication_classes = [OcpiTokenAuthentication]
    permission_classes = [RegisteredPartnerAccess]
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    # Configuration modules (versions, credentials, hubclientinfo) are not routed: no OCPI-from/to headers.
    routed = True
    serializer_class = OcpiEnvelopeSerializer  # what every answer looks like, for the OpenAPI description

    def get_exception_handler(self):
        return ocpi_exception_handler

    @property
    def partner(self):
        return self.request.auth.partner

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        headers = request.headers
        response[REQUEST_ID] = headers.get(REQUEST_ID) or str(uuid.uuid4())
        response[CORRELATION_ID] = headers.get(CORRELATION_ID) or str(uuid.uuid4())
        if self.routed:
            response["OCPI-from-country-code"] = settings.OCPI_COUNTRY_CODE
            response["OCPI-from-party-id"] = settings.OCPI_PARTY_ID
            to_country = headers.get("OCPI-from-country-code")
            to_party = headers.get("OCPI-from-party-id")
            auth = getattr(request, "_auth", None)
            if not (to_country and to_party) and isinstance(auth, PartnerCredentials) and auth.partner.country_code:
                to_country, to_party = auth.partner.country_code, auth.partner.party_id
            if to_country and to_party:
                response["OCPI-to-country-code"] = to_country
                response["OCPI-to-party-id"] = to_party
        return response


@extend_schema(exclude=True)
class UnknownEndpointView(OcpiView):
    """Anything under /ocpi/ that no module serves: 404 in the envelope, whatever the method."""

    authentication_classes = []
    permission_classes = [AllowAny]
    routed = False

    def _not_found(self, request, *args, **kwargs):
        raise UnknownObject(f"No OCPI endpoint at {request.path}")

    get = post = put = patch = delete = _not_found
