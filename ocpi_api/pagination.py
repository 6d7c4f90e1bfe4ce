"""Paginated GET of a Sender interface (transport_and_format.asciidoc "Pagination"), for any list module.

`date_from` is inclusive and `date_to` exclusive on the object's last_updated; objects come oldest first (ties by
primary key, so pages are stable); `limit` is capped by settings.OCPI_PAGINATION_MAX_LIMIT (also the default).
Headers: `X-Total-Count` (matches of the filters, not of offset/limit), `X-Limit` (the cap actually applied) and,
unless this is the last page, `Link: <next page URL>; rel="next"` carrying the same filters."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework.response import Response

from ocpi_api.envelope import InvalidParameters, ocpi_response

PAGINATION_PARAMETERS = ("offset", "limit")


def ocpi_datetime_parse(value: str, *, name: str) -> datetime:
    """An OCPI DateTime parameter; without a zone designator it is UTC. 2001 when it is not a date/time.
    (A '+' of an offset that arrived unencoded in a query string became a space: restore it.)"""
    text = value.strip().replace(" ", "+")
    try:
        parsed = parse_datetime(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidParameters(f"{name}: {value!r} is not an OCPI DateTime (e.g. 2019-01-28T12:00:00Z)")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _non_negative_int(value: str, *, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidParameters(f"{name}: {value!r} is not an integer") from None
    if number < 0:
        raise InvalidParameters(f"{name} must not be negative")
    return number


@dataclass(frozen=True)
class PageRequest:
    offset: int
    limit: int
    date_from: datetime | None
    date_to: datetime | None


def page_request_parse(*, query) -> PageRequest:
    """Pagination parameters from a query dict; 2001 for malformed values."""
    max_limit = settings.OCPI_PAGINATION_MAX_LIMIT
    offset = _non_negative_int(query["offset"], name="offset") if query.get("offset") not in (None, "") else 0
    limit = _non_negative_int(query["limit"], name="limit") if query.get("limit") not in (None, "") else max_limit
    if limit < 1:
        raise InvalidParameters("limit must be at least 1")
    date_from = ocpi_datetime_parse(query["date_from"], name="date_from") if query.get("date_from") else None
    date_to = ocpi_datetime_parse(query["date_to"], name="date_to") if query.get("date_to") else None
    return PageRequest(offset=offset, limit=min(limit, max_limit), date_from=date_from, date_to=date_to)


def paginated_response(
    *,
    request,
    queryset: QuerySet,
    serialize: Callable[[object], dict],
    date_field: str = "last_updated",
) -> Response:
    """The enveloped page of `queryset` (already restricted to what this partner may see) with the OCPI headers.
    `date_field` may be an annotation (locations use the latest last_updated of the location, EVSEs, connectors)."""
    page = page_request_parse(query=request.query_params)
    if page.date_from is not None:
        queryset = queryset.filter(**{f"{date_field}__gte": page.date_from})
    if page.date_to is not None:
        queryset = queryset.filter(**{f"{date_field}__lt": page.date_to})
    queryset = queryset.order_by(date_field, "pk")
    total = queryset.count()
    objects: Iterable = queryset[page.offset : page.offset + page.limit] if page.offset < total else []
    data = [serialize(obj) for obj in objects]
    headers = {"X-Total-Count": str(total), "X-Limit": str(page.limit)}
    next_offset = page.offset + len(data)
    if data and next_offset < total:
        headers["Link"] = f'<{next_page_url(request=request, offset=next_offset, limit=page.limit)}>; rel="next"'
    return ocpi_response(data, headers=headers)


def next_page_url(*, request, offset: int, limit: int) -> str:
    """This request's URL with the next offset and our limit, keeping every other query parameter (the filters)."""
    params = [
        (key, value)
        for key, values in request.query_params.lists()
        if key not in PAGINATION_PARAMETERS
        for value in values
    ]
    params = [("offset", str(offset)), ("limit", str(limit)), *params]
    return request.build_absolute_uri(request.path) + "?" + urlencode(params)
