"""The OCPI response format (transport_and_format.asciidoc "Response format", status_codes.asciidoc).

Every answer under /ocpi/ is `{"data", "status_code", "status_message", "timestamp"}`, errors included; views raise
`OcpiError` (or DRF's exceptions) and `ocpi_exception_handler` turns them into that envelope.

Which HTTP status goes with it (status_codes.asciidoc): a request that is not parsed JSON gets an HTTP error (400;
413 and 431 for oversize bodies and headers, answered by the server before the body is read: cpo/server.py and
ocpi_api.middleware). A request that is valid JSON, addresses an existing resource and comes from an authenticated
and authorized sender has "reached the OCPI layer": it is never answered with an HTTP error status, whatever its
OCPI status (2001 for bad fields, 2003 for a command at an unknown location); only a GET (or a change) of an object
that does not exist is 404. A request we cannot serve because our database is unreachable (down, restarting, out of
connections) is 503 with Retry-After and 3000: the partner tries again later, as it does for any 5xx."""

import json
import logging
from datetime import UTC, datetime

from django import db
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse
from rest_framework import exceptions
from rest_framework.response import Response

from billing.encoding import ocpi_datetime

logger = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 30


class StatusCode:
    """OCPI status codes (status_codes.asciidoc)."""

    SUCCESS = 1000
    CLIENT_ERROR = 2000
    INVALID_PARAMETERS = 2001
    NOT_ENOUGH_INFORMATION = 2002
    UNKNOWN_LOCATION = 2003
    UNKNOWN_TOKEN = 2004
    SERVER_ERROR = 3000
    CLIENT_API_UNUSABLE = 3001
    UNSUPPORTED_VERSION = 3002
    NO_MATCHING_ENDPOINTS = 3003


def ocpi_envelope(*, data=None, status_code: int = StatusCode.SUCCESS, status_message: str = "Success") -> dict:
    return {
        "data": data,
        "status_code": status_code,
        "status_message": status_message,
        "timestamp": ocpi_datetime(datetime.now(UTC)),
    }


OCPI_PATH_PREFIX = "/ocpi/"  # where cpo/urls.py mounts ocpi_api.urls: every answer below it is the envelope


def ocpi_envelope_bytes(*, status_code: int, status_message: str) -> bytes:
    """An error envelope as the bytes of a JSON body, for answers made outside DRF (middleware, the server)."""
    return json.dumps(ocpi_envelope(status_code=status_code, status_message=status_message)).encode()


def ocpi_http_response(*, http_status: int, status_code: int, status_message: str) -> HttpResponse:
    """An error envelope as a plain Django response, for answers made before a view runs."""
    return HttpResponse(
        ocpi_envelope_bytes(status_code=status_code, status_message=status_message),
        status=http_status,
        content_type="application/json",
    )


def ocpi_response(
    data=None,
    *,
    http_status: int = 200,
    status_code: int = StatusCode.SUCCESS,
    status_message: str = "Success",
    headers: dict | None = None,
) -> Response:
    return Response(
        ocpi_envelope(data=data, status_code=status_code, status_message=status_message),
        status=http_status,
        headers=headers,
    )


class OcpiError(Exception):
    """An OCPI error answer: HTTP status plus OCPI status code and message."""

    http_status = 400
    status_code = StatusCode.CLIENT_ERROR

    def __init__(self, message: str, *, http_status: int | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        if http_status is not None:
            self.http_status = http_status
        if status_code is not None:
            self.status_code = status_code


class InvalidParameters(OcpiError):
    """2001 for a request that reached the OCPI layer: HTTP 200 (status_codes.asciidoc)."""

    http_status = 200
    status_code = StatusCode.INVALID_PARAMETERS


class Misaddressed(OcpiError):
    """Routing headers that name a party this platform does not host, or a sender that is not the authenticated
    partner: the request never reaches our OCPI layer (there is no such resource here), so an HTTP error."""

    http_status = 400
    status_code = StatusCode.INVALID_PARAMETERS


class NotForYourRole(OcpiError):
    """An authenticated partner calling a module that is not for its role (hubclientinfo from a non-hub): it is not
    authorized, so the request does not reach the OCPI layer."""

    http_status = 403
    status_code = StatusCode.CLIENT_ERROR


class UnknownObject(OcpiError):
    http_status = 404
    status_code = StatusCode.UNKNOWN_LOCATION


class UnknownEndpoint(OcpiError):
    """No OCPI endpoint at this URL: 404 with the generic client error (2003 is for unknown Locations)."""

    http_status = 404
    status_code = StatusCode.CLIENT_ERROR


class UnknownToken(OcpiError):
    http_status = 404
    status_code = StatusCode.UNKNOWN_TOKEN


class MethodNotAllowedInState(OcpiError):
    http_status = 405
    status_code = StatusCode.CLIENT_ERROR


class PartnerApiError(OcpiError):
    """The partner's API could not be used (3001), e.g. while we fetch its versions during registration."""

    http_status = 200
    status_code = StatusCode.CLIENT_API_UNUSABLE


class UnsupportedVersion(PartnerApiError):
    status_code = StatusCode.UNSUPPORTED_VERSION


class NoMatchingEndpoints(PartnerApiError):
    status_code = StatusCode.NO_MATCHING_ENDPOINTS


def _validation_message(detail) -> str:
    """Flatten DRF's nested error detail into `field: problem; ...`."""
    if isinstance(detail, dict):
        parts = []
        for key, value in detail.items():
            inner = _validation_message(value)
            parts.append(inner if key == "non_field_errors" else f"{key}: {inner}")
        return "; ".join(parts)
    if isinstance(detail, list):
        return ", ".join(_validation_message(item) for item in detail)
    return str(detail)


def ocpi_exception_handler(exc: Exception, context: dict) -> Response:
    """Every exception in an OCPI view becomes an enveloped answer; unexpected ones are logged and become 3000."""
    if isinstance(exc, OcpiError):
        return ocpi_response(http_status=exc.http_status, status_code=exc.status_code, status_message=exc.message)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return ocpi_response(
            http_status=401,
            status_code=StatusCode.CLIENT_ERROR,
            status_message=str(exc.detail),
            headers={"WWW-Authenticate": "Token"},
        )
    if isinstance(exc, exceptions.PermissionDenied):
        # Token A on a functional module: transport_and_format says 401.
        return ocpi_response(
            http_status=401,
            status_code=StatusCode.CLIENT_ERROR,
            status_message=str(exc.detail),
            headers={"WWW-Authenticate": "Token"},
        )
    if isinstance(exc, exceptions.ValidationError):  # valid JSON, bad fields: the request reached the OCPI layer
        return ocpi_response(
            http_status=200, status_code=StatusCode.INVALID_PARAMETERS, status_message=_validation_message(exc.detail)
        )
    if isinstance(exc, (exceptions.ParseError, exceptions.UnsupportedMediaType)):  # not JSON: transport layer
        return ocpi_response(
            http_status=exc.status_code, status_code=StatusCode.INVALID_PARAMETERS, status_message=str(exc.detail)
        )
    if isinstance(exc, RequestDataTooBig):
        return ocpi_response(http_status=413, status_code=StatusCode.CLIENT_ERROR, status_message=str(exc))
    if isinstance(exc, (Http404, exceptions.NotFound)):
        return ocpi_response(http_status=404, status_code=StatusCode.CLIENT_ERROR, status_message="Not found")
    if isinstance(exc, exceptions.MethodNotAllowed):
        return ocpi_response(http_status=405, status_code=StatusCode.CLIENT_ERROR, status_message=str(exc.detail))
    if isinstance(exc, exceptions.APIException):
        return ocpi_response(
            http_status=exc.status_code,
            status_code=StatusCode.CLIENT_ERROR if exc.status_code < 500 else StatusCode.SERVER_ERROR,
            status_message=str(exc.detail),
        )
    if isinstance(exc, (db.OperationalError, db.InterfaceError)):  # unreachable, restarting, out of connections
        logger.warning("OCPI request not served: database unavailable: %s", str(exc).strip().splitlines()[-1:])
        return ocpi_response(
            http_status=503,
            status_code=StatusCode.SERVER_ERROR,
            status_message="Temporarily unavailable (database); retry later",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    logger.exception("OCPI request failed", exc_info=exc)
    return ocpi_response(http_status=500, status_code=StatusCode.SERVER_ERROR, status_message="Internal error")
