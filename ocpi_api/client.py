"""Our outgoing OCPI calls (httpx, with timeouts). Every failure to use the partner's API is a PartnerApiError
(status 3001), an unsupported version 3002, missing endpoints 3003: the credentials views answer with them."""

import logging
import uuid
from dataclasses import dataclass

import httpx
from django.conf import settings

from ocpi_api.auth import authorization_header_value
from ocpi_api.envelope import NoMatchingEndpoints, PartnerApiError, StatusCode, UnsupportedVersion
from ocpi_api.modules import VERSION

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OcpiAnswer:
    http_status: int
    status_code: int | None
    status_message: str
    data: object
    headers: httpx.Headers


def ocpi_request(
    method: str,
    url: str,
    *,
    token: str,
    encode_token: bool = True,
    json: object = None,
    params: dict | None = None,
    to_party: tuple[str, str] | None = None,
    correlation_id: str | None = None,
    timeout: float | None = None,
) -> OcpiAnswer:
    """One OCPI call. `to_party` (country_code, party_id) adds the routing headers that functional modules carry;
    `timeout` (seconds) overrides settings.OCPI_HTTP_TIMEOUT, e.g. for real-time authorization."""
    headers = {
        "Authorization": authorization_header_value(token=token, encode=encode_token),
        "X-Request-ID": str(uuid.uuid4()),
        "X-Correlation-ID": correlation_id or str(uuid.uuid4()),
        "Accept": "application/json",
    }
    if to_party is not None:
        headers.update(
            {
                "OCPI-from-country-code": settings.OCPI_COUNTRY_CODE,
                "OCPI-from-party-id": settings.OCPI_PARTY_ID,
                "OCPI-to-country-code": to_party[0],
                "OCPI-to-party-id": to_party[1],
            }
        )
    try:
        response = httpx.request(
            method, url, headers=headers, json=json, params=params,
            timeout=settings.OCPI_HTTP_TIMEOUT if timeout is None else timeout,
        )
    except httpx.HTTPError as exc:
        raise PartnerApiError(f"{method} {url} failed: {exc.__class__.__name__}: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise PartnerApiError(f"{method} {url} answered HTTP {response.status_code} without an OCPI response")
    status_code = body.get("status_code")
    return OcpiAnswer(
        http_status=response.status_code,
        status_code=status_code if isinstance(status_code, int) else None,
        status_message=str(body.get("status_message") or ""),
        data=body.get("data"),
        headers=response.headers,
    )


def check_success(answer: OcpiAnswer, *, what: str) -> OcpiAnswer:
    if not 200 <= answer.http_status < 300 or answer.status_code is None or not 1000 <= answer.status_code < 2000:
        raise PartnerApiError(
            f"{what}: HTTP {answer.http_status}, OCPI status {answer.status_code} {answer.status_message}".strip()
        )
    return answer


def versions_get(*, url: str, token: str, encode_token: bool = True) -> tuple[list[dict], bool]:
    """The partner's version list. A 401 with the base64 token is retried once with the plain token (many 2.1.1 and
    2.2 platforms expect that); returns the list and whether encoding worked."""
    answer = ocpi_request("GET", url, token=token, encode_token=encode_token)
    if answer.http_status == 401 and encode_token:
        plain = ocpi_request("GET", url, token=token, encode_token=False)
        if plain.http_status != 401:
            answer, encode_token = plain, False
    check_success(answer, what=f"GET {url}")
    if not isinstance(answer.data, list) or not all(
        isinstance(v, dict) and isinstance(v.get("version"), str) and isinstance(v.get("url"), str)
        for v in answer.data
    ):
        raise PartnerApiError(f"GET {url}: data is not a list of Version objects")
    return answer.data, encode_token


def version_details_get(*, url: str, token: str, encode_token: bool = True) -> list[dict]:
    answer = check_success(ocpi_request("GET", url, token=token, encode_token=encode_token), what=f"GET {url}")
    data = answer.data
    if not isinstance(data, dict) or not isinstance(data.get("endpoints"), list):
        raise PartnerApiError(f"GET {url}: data is not a version details object")
    endpoints = []
    for endpoint in data["endpoints"]:
        if not (
            isinstance(endpoint, dict)
            and isinstance(endpoint.get("identifier"), str)
            and isinstance(endpoint.get("url"), str)
            and endpoint.get("role", "SENDER") in ("SENDER", "RECEIVER")
        ):
            raise PartnerApiError(f"GET {url}: malformed Endpoint {endpoint!r}")
        endpoints.append({"identifier": endpoint["identifier"], "role": endpoint.get("role", ""), "url": endpoint["url"]})
    return endpoints


def partner_endpoints_fetch(*, versions_url: str, token: str, encode_token: bool = True) -> tuple[list[dict], bool]:
    """Fetch the partner's versions, choose 2.2.1 (3002 when it has none) and fetch its endpoints (3003 when there
    are none). Returns the endpoints and whether the base64 token encoding is the one that worked."""
    versions, encode_token = versions_get(url=versions_url, token=token, encode_token=encode_token)
    match = next((v for v in versions if v["version"] == VERSION), None)
    if match is None:
        offered = ", ".join(v["version"] for v in versions) or "none"
        raise UnsupportedVersion(f"The partner offers OCPI {offered}; we speak {VERSION}")
    endpoints = version_details_get(url=match["url"], token=token, encode_token=encode_token)
    if not endpoints:
        raise NoMatchingEndpoints(f"The partner lists no endpoints for OCPI {VERSION}")
    return endpoints, encode_token


def credentials_post(*, url: str, token: str, encode_token: bool, credentials: dict) -> dict:
    """POST our credentials to the partner's credentials endpoint; returns its credentials object."""
    answer = ocpi_request("POST", url, token=token, encode_token=encode_token, json=credentials)
    if answer.status_code in (StatusCode.UNSUPPORTED_VERSION, StatusCode.NO_MATCHING_ENDPOINTS):
        raise PartnerApiError(f"POST {url}: {answer.status_code} {answer.status_message}",
                              status_code=answer.status_code)
    check_success(answer, what=f"POST {url}")
    if not isinstance(answer.data, dict):
        raise PartnerApiError(f"POST {url}: data is not a credentials object")
    return answer.data
