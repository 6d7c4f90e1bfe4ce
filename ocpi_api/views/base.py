"""The base of every OCPI view: our authentication, JSON parsing with a nesting bound, the envelope for errors, the
routing headers (checked on requests, set on answers), and no OPTIONS.

Request and correlation ids, and the body-size limit, are set for all of /ocpi/ by ocpi_api.middleware."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from ocpi_api.auth import (
    OcpiTokenAuthentication,
    PartnerCredentials,
    RegisteredPartnerAccess,
    check_routing_headers,
)
from ocpi_api.envelope import UnknownEndpoint, ocpi_exception_handler
from ocpi_api.serializers import OcpiEnvelopeSerializer

# Far deeper than any OCPI object (a CDR's tariff price components are 7 levels down), far shallower than the
# recursion that the JSON parser and everything after it would hit.
MAX_JSON_DEPTH = 32


def json_nesting_exceeds(value, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class OcpiJSONParser(JSONParser):
    """DRF's JSON parser, with nesting beyond MAX_JSON_DEPTH refused as a parse error (HTTP 400, 2001) instead of a
    RecursionError in the parser or later."""

    def parse(self, stream, media_type=None, parser_context=None):
        too_deep = ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if json_nesting_exceeds(data, MAX_JSON_DEPTH):
            raise too_deep
        return data


class OcpiView(APIView):
    """A view of a functional module: registered partners only, routing headers checked and answered."""

    authentication_classes = [OcpiTokenAuthentication]
    permission_classes = [RegisteredPartnerAccess]
    renderer_classes = [JSONRenderer]
    parser_classes = [OcpiJSONParser]
    metadata_class = None  # OPTIONS is not an OCPI method: 405 in the envelope, not DRF's metadata
    # Configuration modules (versions, credentials, hubclientinfo) are not routed: no OCPI-from/to headers.
    routed = True
    serializer_class = OcpiEnvelopeSerializer  # what every answer looks like, for the OpenAPI description
    requester: tuple[str, str] | None = None  # the party the request came from, once the routing headers are checked

    def get_exception_handler(self):
        return ocpi_exception_handler

    @property
    def partner(self):
        return self.request.auth.partner

    @property
    def allowed_methods(self):
        return [method for method in super().allowed_methods if method != "OPTIONS"]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self.routed:
            self.requester = check_routing_headers(partner=self.partner, headers=request.headers)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.routed:
            response["OCPI-from-country-code"] = settings.OCPI_COUNTRY_CODE
            response["OCPI-from-party-id"] = settings.OCPI_PARTY_ID
            to = self.requester
            auth = getattr(request, "_auth", None)
            if to is None and isinstance(auth, PartnerCredentials) and auth.partner.country_code:
                to = (auth.partner.country_code.upper(), auth.partner.party_id.upper())
            if to is not None:
                response["OCPI-to-country-code"], response["OCPI-to-party-id"] = to
        return response


@extend_schema(exclude=True)
class UnknownEndpointView(OcpiView):
    """Anything under /ocpi/ that no module serves: 404 in the envelope, whatever the method."""

    authentication_classes = []
    permission_classes = [AllowAny]
    routed = False

    def _not_found(self, request, *args, **kwargs):
        raise UnknownEndpoint(f"No OCPI endpoint at {request.path}")

    get = post = put = patch = delete = options = _not_found
