"""Our outgoing OCPI calls: the one HTTP client of the platform (httpx, with timeouts).

`ocpi_call` makes one call with the OCPI headers (the partner's credentials token, `X-Request-ID`,
`X-Correlation-ID` and, for functional modules, the `OCPI-from/to-*` routing headers) to a public address only
(`ocpi_api.egress`; redirects are not followed) and reports what happened, failures included, as an
`OcpiExchange`: the outbox records each one as an attempt. `ocpi_request` is the same call
for callers that need an OCPI answer: every failure to use the partner's API is a PartnerApiError (status 3001), an
unsupported version 3002, missing endpoints 3003; the credentials views answer with them."""

import json as jsonlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import httpx
from django.conf import settings
from django.utils import timezone

from billing.encoding import DecimalJSONEncoder
from ocpi_api.auth import authorization_header_value
from ocpi_api.egress import PartnerTransport, allowed_networks
from ocpi_api.envelope import NoMatchingEndpoints, PartnerApiError, StatusCode, UnsupportedVersion
from ocpi_api.modules import VERSION

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OcpiExchange:
    """One HTTP call as it went. `http_status` is None when no answer came (`error` says why); `body` is the parsed
    JSON answer (None when it was not JSON)."""

    method: str
    url: str
    request_id: str
    started_at: datetime
    duration_ms: int = 0
    http_status: int | None = None
    body: object = None
    text: str = ""
    headers: httpx.Headers | None = None
    error: str = ""

    @property
    def status_code(self) -> int | None:
        code = self.body.get("status_code") if isinstance(self.body, dict) else None
        return code if isinstance(code, int) else None

    @property
    def status_message(self) -> str:
        return str(self.body.get("status_message") or "") if isinstance(self.body, dict) else ""

    @property
    def ok(self) -> bool:
        """HTTP 2xx and an OCPI status 1xxx (or, leniently, 2xx without an OCPI body)."""
        if self.http_status is None or not 200 <= self.http_status < 300:
            return False
        return self.status_code is None or 1000 <= self.status_code < 2000

    def problem(self) -> str:
        """What went wrong, for logs and the outbox ("" when it is ok)."""
        if self.ok:
            return ""
        if self.http_status is None:
            return self.error
        text = f"HTTP {self.http_status}, OCPI status {self.status_code} {self.status_message}".strip()
        return text if isinstance(self.body, dict) else f"{text}: {self.text[:200]!r}"


def ocpi_headers(
    *,
    token: str,
    encode_token: bool = True,
    request_id: str,
    correlation_id: str,
    to_party: tuple[str, str] | None = None,
) -> dict[str, str]:
    """The headers of an OCPI request. `to_party` (country_code, party_id) adds the routing headers that functional
    modules carry."""
    headers = {
        "Authorization": authorization_header_value(token=token, encode=encode_token),
        "X-Request-ID": request_id,
        "X-Correlation-ID": correlation_id,
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
    return headers


def ocpi_call(
    method: str,
    url: str,
    *,
    token: str,
    encode_token: bool = True,
    body: object = None,
    params: dict | None = None,
    to_party: tuple[str, str] | None = None,
    correlation_id: str | None = None,
    timeout: float | None = None,
    partner_networks: str = "",
) -> OcpiExchange:
    """One OCPI call; never raises for what the network or the partner did (see `OcpiExchange`). `body` is sent as
    JSON (Decimals as numbers); `timeout` (seconds) overrides settings.OCPI_HTTP_TIMEOUT; `partner_networks` are the
    non-public networks this partner may be reached in (`Partner.allowed_networks`), besides the platform-wide
    settings.OCPI_PARTNER_ALLOWED_NETWORKS. A refused address is an error like any other (`AddressRefused`)."""
    request_id = str(uuid.uuid4())
    headers = ocpi_headers(
        token=token,
        encode_token=encode_token,
        request_id=request_id,
        correlation_id=correlation_id or str(uuid.uuid4()),
        to_party=to_party,
    )
    content = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        content = jsonlib.dumps(body, cls=DecimalJSONEncoder).encode()
    started = timezone.now()
    clock = time.monotonic()
    try:
        transport = PartnerTransport(allowed=allowed_networks(partner_networks=partner_networks))
        with httpx.Client(transport=transport, follow_redirects=False) as http:
            response = http.request(
                method,
                url,
                headers=headers,
                content=content,
                params=params,
                timeout=settings.OCPI_HTTP_TIMEOUT if timeout is None else timeout,
            )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return OcpiExchange(
            method=method,
            url=url,
            request_id=request_id,
            started_at=started,
            duration_ms=int((time.monotonic() - clock) * 1000),
            error=f"{exc.__class__.__name__}: {exc}"[:2000],
        )
    try:
        answer = response.json()
    except ValueError:
        answer = None
    return OcpiExchange(
        method=method,
        url=url,
        request_id=request_id,
        started_at=started,
        duration_ms=int((time.monotonic() - clock) * 1000),
        http_status=response.status_code,
        body=answer,
        text=response.text[:200],
        headers=response.headers,
    )


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
    partner_networks: str = "",
) -> OcpiAnswer:
    """One OCPI call that must get an OCPI answer (any HTTP status): PartnerApiError when none came. Arguments as
    for `ocpi_call` (`json` is the body)."""
    exchange = ocpi_call(
        method,
        url,
        token=token,
        encode_token=encode_token,
        body=json,
        params=params,
        to_party=to_party,
        correlation_id=correlation_id,
        timeout=timeout,
        partner_networks=partner_networks,
    )
    if exchange.http_status is None:
        raise PartnerApiError(f"{method} {url} failed: {exchange.error}")
    if not isinstance(exchange.body, dict):
        raise PartnerApiError(f"{method} {url} answered HTTP {exchange.http_status} without an OCPI response")
    return OcpiAnswer(
        http_status=exchange.http_status,
        status_code=exchange.status_code,
        status_message=exchange.status_message,
        data=exchange.body.get("data"),
        headers=exchange.headers if exchange.headers is not None else httpx.Headers(),
    )


def check_success(answer: OcpiAnswer, *, what: str) -> OcpiAnswer:
    if not 200 <= answer.http_status < 300 or answer.status_code is None or not 1000 <= answer.status_code < 2000:
        raise PartnerApiError(
            f"{what}: HTTP {answer.http_status}, OCPI status {answer.status_code} {answer.status_message}".strip()
        )
    return answer


def versions_get(
    *, url: str, token: str, encode_token: bool = True, partner_networks: str = ""
) -> tuple[list[dict], bool]:
    """The partner's version list. A 401 with the base64 token is retried once with the plain token (many 2.1.1 and
    2.2 platforms expect that); returns the list and whether encoding worked."""
    answer = ocpi_request("GET", url, token=token, encode_token=encode_token, partner_networks=partner_networks)
    if answer.http_status == 401 and encode_token:
        plain = ocpi_request("GET", url, token=token, encode_token=False, partner_networks=partner_networks)
        if plain.http_status != 401:
            answer, encode_token = plain, False
    check_success(answer, what=f"GET {url}")
    if not isinstance(answer.data, list) or not all(
        isinstance(v, dict) and isinstance(v.get("version"), str) and isinstance(v.get("url"), str) for v in answer.data
    ):
        raise PartnerApiError(f"GET {url}: data is not a list of Version objects")
    return answer.data, encode_token


def version_details_get(*, url: str, token: str, encode_token: bool = True, partner_networks: str = "") -> list[dict]:
    answer = check_success(
        ocpi_request("GET", url, token=token, encode_token=encode_token, partner_networks=partner_networks),
        what=f"GET {url}",
    )
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
        endpoints.append(
            {"identifier": endpoint["identifier"], "role": endpoint.get("role", ""), "url": endpoint["url"]}
        )
    return endpoints


def partner_endpoints_fetch(
    *, versions_url: str, token: str, encode_token: bool = True, partner_networks: str = ""
) -> tuple[list[dict], bool]:
    """Fetch the partner's versions, choose 2.2.1 (3002 when it has none) and fetch its endpoints (3003 when there
    are none). Returns the endpoints and whether the base64 token encoding is the one that worked."""
    versions, encode_token = versions_get(
        url=versions_url, token=token, encode_token=encode_token, partner_networks=partner_networks
    )
    match = next((v for v in versions if v["version"] == VERSION), None)
    if match is None:
        offered = ", ".join(v["version"] for v in versions) or "none"
        raise UnsupportedVersion(f"The partner offers OCPI {offered}; we speak {VERSION}")
    endpoints = version_details_get(
        url=match["url"], token=token, encode_token=encode_token, partner_networks=partner_networks
    )
    if not endpoints:
        raise NoMatchingEndpoints(f"The partner lists no endpoints for OCPI {VERSION}")
    return endpoints, encode_token


def credentials_post(
    *, url: str, token: str, encode_token: bool, credentials: dict, partner_networks: str = ""
) -> dict:
    """POST our credentials to the partner's credentials endpoint; returns its credentials object."""
    return _credentials_send(
        "POST",
        url=url,
        token=token,
        encode_token=encode_token,
        credentials=credentials,
        partner_networks=partner_networks,
    )


def credentials_put(*, url: str, token: str, encode_token: bool, credentials: dict, partner_networks: str = "") -> dict:
    """PUT our updated credentials (a new token for the partner) to its credentials endpoint, with the token it gave
    us; returns its updated credentials object, with a new token for us (credentials.asciidoc, PUT method)."""
    return _credentials_send(
        "PUT",
        url=url,
        token=token,
        encode_token=encode_token,
        credentials=credentials,
        partner_networks=partner_networks,
    )


def _credentials_send(
    method: str, *, url: str, token: str, encode_token: bool, credentials: dict, partner_networks: str
) -> dict:
    answer = ocpi_request(
        method, url, token=token, encode_token=encode_token, json=credentials, partner_networks=partner_networks
    )
    if answer.status_code in (StatusCode.UNSUPPORTED_VERSION, StatusCode.NO_MATCHING_ENDPOINTS):
        raise PartnerApiError(
            f"{method} {url}: {answer.status_code} {answer.status_message}", status_code=answer.status_code
        )
    check_success(answer, what=f"{method} {url}")
    if not isinstance(answer.data, dict):
        raise PartnerApiError(f"{method} {url}: data is not a credentials object")
    return answer.data
