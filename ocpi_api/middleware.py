"""The transport layer of /ocpi/ in Django: what is answered before a view runs, and the ids on every answer.

The size of a body is checked from its Content-Length before anything reads it, so no token check, parser or
serializer sees an oversize request (HTTP 413 in the envelope). Under daphne (`python -m cpo.server`) the server
itself refuses it at the headers, before receiving the body; this check is the same rule for any other server and
for the test client. The limit is Django's `DATA_UPLOAD_MAX_MEMORY_SIZE` (no file uploads here: it bounds every
body). Every answer below /ocpi/ carries X-Request-ID and X-Correlation-ID (transport_and_format "Unique message
IDs"): the request's own, else new ones."""

import logging
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from ocpi_api.envelope import OCPI_PATH_PREFIX, StatusCode, ocpi_http_response

logger = logging.getLogger(__name__)

REQUEST_ID = "X-Request-ID"
CORRELATION_ID = "X-Correlation-ID"


def body_too_large_message(limit: int) -> str:
    return f"The request body is larger than {limit} bytes"


def check_body_size(request: HttpRequest) -> HttpResponse | None:
    """A 413 envelope when the declared body is above the limit, else None."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return ocpi_http_response(
            http_status=400, status_code=StatusCode.CLIENT_ERROR, status_message="Content-Length is not a number"
        )
    if limit is not None and length > limit:
        logger.warning("OCPI %s %s refused: body of %d bytes", request.method, request.path, length)
        return ocpi_http_response(
            http_status=413, status_code=StatusCode.CLIENT_ERROR, status_message=body_too_large_message(limit)
        )
    return None


class OcpiTransportMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(OCPI_PATH_PREFIX):
            return self.get_response(request)
        response = check_body_size(request) or self.get_response(request)
        response[REQUEST_ID] = request.headers.get(REQUEST_ID) or str(uuid.uuid4())
        response[CORRELATION_ID] = request.headers.get(CORRELATION_ID) or str(uuid.uuid4())
        return response
