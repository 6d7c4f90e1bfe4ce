"""The OCPI response format (transport_and_format.asciidoc "Response format", status_codes.asciidoc).

Every answer under /ocpi/ is `{"data", "status_code", "status_message", "timestamp"}`, errors included; views raise
`OcpiError` (or DRF's exceptions) and `ocpi_exception_handler` turns them into that envelope."""

import logging
from datetime import UTC, datetime

from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from billing.encoding import ocpi_datetime

logger = logging.getLogger(__name__)


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
    http_status = 400
    status_code = StatusCode.INVALID_PARAMETERS


class UnknownObject(OcpiError):
    http_status = 404
    status_code = StatusCode.UNKNOWN_LOCATION


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
    if isinstance(exc, exceptions.ValidationError):
        return ocpi_response(
            http_status=400, status_code=StatusCode.INVALID_PARAMETERS, status_message=_validation_message(exc.detail)
        )
    if isinstance(exc, (exceptions.ParseError, exceptions.UnsupportedMediaType)):
        return ocpi_response(
            http_status=exc.status_code, status_code=StatusCode.INVALID_PARAMETERS, status_message=str(exc.detail)
        )
    if isinstance(exc, (Http404, exceptions.NotFound)):
        return ocpi_response(http_status=404, status_code=StatusCode.UNKNOWN_LOCATION, status_message="Not found")
    if isinstance(exc, exceptions.MethodNotAllowed):
        return ocpi_response(http_status=405, status_code=StatusCode.CLIENT_ERROR, status_message=str(exc.detail))
    if isinstance(exc, exceptions.APIException):
        return ocpi_response(
            http_status=exc.status_code,
            status_code=StatusCode.CLIENT_ERROR if exc.status_code < 500 else StatusCode.SERVER_ERROR,
            status_message=str(exc.detail),
        )
    logger.exception("OCPI request failed", exc_info=exc)
    return ocpi_response(http_status=500, status_code=StatusCode.SERVER_ERROR, status_message="Internal error")
