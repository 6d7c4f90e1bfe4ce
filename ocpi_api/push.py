"""What we push to partners, and the HTTP call that delivers one outbox message.

Announcers (`*_announce`) run inside the transaction of the change they announce and write outbox rows
(`ocpi_api.outbox`): Sessions and CDRs to the EMSP whose token was used (never to anyone else), EVSE status,
locations and tariffs to every registered partner that has a Receiver endpoint for the module. `message_send`
makes the call for a worker: the partner's token, `X-Request-ID`, `X-Correlation-ID` (one per message, the same
on every retry) and the `OCPI-from/to-*` routing headers."""

import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.encoding import DecimalJSONDecoder, DecimalJSONEncoder
from ocpi_api.auth import authorization_header_value
from ocpi_api.models import OutboxMessage, OutboxStatus, Partner, PartnerParty, PartnerStatus
from ocpi_api.outbox import outbox_enqueue, outbox_enqueue_once, outbox_last

logger = logging.getLogger(__name__)

RECEIVER = "RECEIVER"


# --- Delivery ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PushResult:
    ok: bool
    url: str
    request_id: str
    started_at: datetime
    duration_ms: int = 0
    http_status: int | None = None
    status_code: int | None = None
    status_message: str = ""
    error: str = ""
    location: str = ""
    permanent: bool = False  # retrying cannot help (the partner has no endpoint for it any more)


def message_url(message: OutboxMessage) -> str | None:
    base = message.partner.endpoint_url(identifier=message.module, role=RECEIVER)
    if not base:
        return None
    return f"{base.rstrip('/')}/{message.path}" if message.path else base


def message_send(*, message: OutboxMessage) -> PushResult:
    """One HTTP call for `message`. Success: HTTP 2xx and an OCPI status 1xxx (or, leniently, 2xx without an OCPI
    body). Anything else is an error to retry."""
    partner = message.partner
    request_id = str(uuid.uuid4())
    started = timezone.now()
    url = message_url(message)
    if url is None:
        return PushResult(ok=False, url="", request_id=request_id, started_at=started, permanent=True,
                          error=f"partner has no {message.module} Receiver endpoint")
    headers = {
        "Authorization": authorization_header_value(token=partner.outgoing_token,
                                                    encode=partner.encode_outgoing_token),
        "X-Request-ID": request_id,
        "X-Correlation-ID": message.correlation_id,
        "OCPI-from-country-code": settings.OCPI_COUNTRY_CODE,
        "OCPI-from-party-id": settings.OCPI_PARTY_ID,
        "OCPI-to-country-code": message.to_country_code,
        "OCPI-to-party-id": message.to_party_id,
        "Accept": "application/json",
    }
    content = None
    if message.body is not None:
        headers["Content-Type"] = "application/json"
        content = json.dumps(message.body, cls=DecimalJSONEncoder).encode()
    clock = time.monotonic()
    try:
        response = httpx.request(message.method, url, headers=headers, content=content,
                                 timeout=settings.OCPI_HTTP_TIMEOUT)
    except httpx.HTTPError as exc:
        return PushResult(ok=False, url=url, request_id=request_id, started_at=started,
                          duration_ms=int((time.monotonic() - clock) * 1000),
                          error=f"{exc.__class__.__name__}: {exc}"[:2000])
    duration_ms = int((time.monotonic() - clock) * 1000)
    try:
        body = response.json()
    except ValueError:
        body = None
    status_code = body.get("status_code") if isinstance(body, dict) else None
    status_code = status_code if isinstance(status_code, int) else None
    status_message = str(body.get("status_message") or "") if isinstance(body, dict) else ""
    ok = 200 <= response.status_code < 300 and (status_code is None or 1000 <= status_code < 2000)
    error = ""
    if not ok:
        error = f"HTTP {response.status_code}, OCPI status {status_code} {status_message}".strip()
        if not isinstance(body, dict):
            error += f": {response.text[:200]!r}"
    return PushResult(
        ok=ok, url=url, request_id=request_id, started_at=started, duration_ms=duration_ms,
        http_status=response.status_code, status_code=status_code, status_message=status_message, error=error,
        location=response.headers.get("Location", "") if ok else "",
    )


# --- Who gets what ----------------------------------------------------------------------------------------------

def partners_with_receiver(*, module: str) -> list[Partner]:
    """Registered partners that have a Receiver endpoint for `module`."""
    return [
        p for p in Partner.objects.filter(status=PartnerStatus.REGISTERED)
        if p.endpoint_url(identifier=module, role=RECEIVER)
    ]


def partner_of_party(*, country_code: str, party_id: str) -> Partner | None:
    """The registered partner that holds this OCPI party (PartnerParty: at most one); None for our own (empty)
    party."""
    if not country_code or not party_id:
        return None
    holder = (
        PartnerParty.objects.filter(
            country_code=country_code.upper(), party_id=party_id.upper(), partner__status=PartnerStatus.REGISTERED
        )
        .select_related("partner")
        .first()
    )
    return holder.partner if holder is not None else None


def _segment(value: str) -> str:
    return quote(str(value), safe="")


def _our_path(*ids: str) -> str:
    """URL segments of an object we own at a Receiver: /{country_code}/{party_id}/{id}..."""
    return "/".join(_segment(v) for v in (settings.OCPI_COUNTRY_CODE, settings.OCPI_PARTY_ID, *ids))


def _normal(value):
    """JSON-equal values compare equal (Decimal('1.50') and 1.5, tuples and lists)."""
    return json.loads(json.dumps(value, cls=DecimalJSONEncoder), cls=DecimalJSONDecoder)


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(_normal(value), sort_keys=True, cls=DecimalJSONEncoder).encode()).hexdigest()[:16]


# --- Sessions (mod_sessions Receiver: PUT/PATCH {url}/{country_code}/{party_id}/{session_id}) --------------------

SESSIONS = "sessions"
CDRS = "cdrs"
LOCATIONS = "locations"
TARIFFS = "tariffs"


def session_announce(*, session, final: bool = False) -> OutboxMessage | None:
    """Queue what the owning EMSP needs to know of `session` (a billing.Session just synced): a PUT the first time
    (or after a push was given up, or when periods already sent changed), else a PATCH of the fields that changed.
    Nothing for our own tokens, partners without a sessions Receiver, or when nothing changed (so a task that runs
    twice announces once).

    charging_periods: a PATCH adds periods at the partner, so only finished periods are sent (all but the running
    last one while the session is ACTIVE, all once it is over). PATCHes of an active session are throttled to one
    per OCPI_SESSION_PATCH_MIN_INTERVAL; later changes coalesce into the waiting one; `final` sends at once.
    Precondition: inside the transaction that synced the session, holding its row lock."""
    from billing.selectors import session_as_ocpi

    partner = partner_of_party(country_code=session.emsp_country_code, party_id=session.emsp_party_id)
    if partner is None or not partner.endpoint_url(identifier=SESSIONS, role=RECEIVER):
        return None
    data = _normal(session_as_ocpi(session=session))
    periods = list(data.pop("charging_periods", None) or [])
    done = final or data.get("status") not in ("ACTIVE", "PENDING", "RESERVATION")
    finished = periods if done else periods[:-1]
    hashes = [_digest(p) for p in finished]
    key = f"{SESSIONS}:{session.country_code}:{session.party_id}:{session.id}"
    path = _our_path(session.id)
    to_party = (session.emsp_country_code.upper(), session.emsp_party_id.upper())
    meta = {"session": data, "periods": hashes}
    last = outbox_last(partner=partner, object_key=key)
    previous = (last.meta or {}) if last is not None else {}
    sent = previous.get("periods") or []
    if last is None or last.status == OutboxStatus.FAILED or "session" not in previous or hashes[: len(sent)] != sent:
        body = {**data, "charging_periods": finished} if finished else data
        return outbox_enqueue(partner=partner, module=SESSIONS, method="PUT", path=path, object_key=key,
                              body=body, to_party=to_party, coalesce=True, meta=meta)
    before = previous["session"]
    if set(before) - set(data):  # a field went away: only a PUT can say so
        return outbox_enqueue(partner=partner, module=SESSIONS, method="PUT", path=path, object_key=key,
                              body={**data, "charging_periods": finished}, to_party=to_party, coalesce=True,
                              meta=meta)
    changes = {k: v for k, v in data.items() if k != "last_updated" and before.get(k) != v}
    new_periods = finished[len(sent):]
    if not changes and not new_periods:
        return None
    if new_periods:
        changes["charging_periods"] = new_periods
    changes["last_updated"] = data["last_updated"]
    not_before = None
    if not done:
        not_before = last.due_at + timedelta(seconds=settings.OCPI_SESSION_PATCH_MIN_INTERVAL)
    return outbox_enqueue(partner=partner, module=SESSIONS, method="PATCH", path=path, object_key=key,
                          body=changes, to_party=to_party, coalesce=True, not_before=not_before, meta=meta)


def cdr_announce(*, cdr) -> OutboxMessage | None:
    """Queue the POST of a CDR to the EMSP whose token was used, once (a second call finds the first message).
    Precondition: inside the transaction that created the CDR."""
    from billing.selectors import cdr_as_ocpi

    partner = partner_of_party(country_code=cdr.emsp_country_code, party_id=cdr.emsp_party_id)
    if partner is None or not partner.endpoint_url(identifier=CDRS, role=RECEIVER):
        return None
    message, _ = outbox_enqueue_once(
        partner=partner, module=CDRS, path="", object_key=f"{CDRS}:{cdr.country_code}:{cdr.party_id}:{cdr.id}",
        body=_normal(cdr_as_ocpi(cdr=cdr)), to_party=(cdr.emsp_country_code.upper(), cdr.emsp_party_id.upper()),
    )
    return message


# --- Locations (mod_locations Receiver: PUT/PATCH {url}/{cc}/{pid}/{location_id}[/{evse_uid}[/{connector_id}]]) ---

def _location_key(location_id: str) -> str:
    # One key per location: a Location PUT (which carries its EVSEs' status) and EVSE PATCHes stay in order.
    return f"{LOCATIONS}:{location_id}"


def evse_status_announce(*, evse) -> list[OutboxMessage]:
    """PATCH `{status, last_updated}` of a published EVSE to every partner with a locations Receiver, unless the
    partner was last told this status already. Coalesces with an undelivered PATCH of the same EVSE."""
    from ocpi_api.selectors import evse_as_ocpi

    partners = partners_with_receiver(module=LOCATIONS)
    if not partners or not evse.location.publish:
        return []
    status = evse.status
    last_updated = evse_as_ocpi(evse)["last_updated"]
    path = _our_path(evse.location_id, evse.uid)
    messages = []
    for partner in partners:
        last = outbox_last(partner=partner, object_key=_location_key(evse.location_id), path=path)
        if last is not None and last.status != OutboxStatus.FAILED and (last.meta or {}).get("status") == status:
            continue
        messages.append(outbox_enqueue(
            partner=partner, module=LOCATIONS, method="PATCH", path=path,
            object_key=_location_key(evse.location_id), body={"status": status, "last_updated": last_updated},
            coalesce=True, meta={"status": status},
        ))
    return messages


def location_put_announce(*, location_id: str, evse_uid: str | None = None, connector_id: str | None = None) -> list:
    """PUT the current Location (or one of its EVSEs, or one connector) to every partner with a locations Receiver.
    Unpublished locations are never pushed."""
    from ocpi_api import selectors

    partners = partners_with_receiver(module=LOCATIONS)
    if not partners:
        return []
    location = selectors.location_get_published(location_id=location_id)
    if location is None:
        return []
    body, ids = selectors.location_as_ocpi(location), [location.id]
    if evse_uid is not None:
        evse = selectors.evse_get_published(location=location, evse_uid=evse_uid)
        if evse is None:
            return []
        body, ids = selectors.evse_as_ocpi(evse), [location.id, evse.uid]
        if connector_id is not None:
            connector = selectors.connector_get(evse=evse, connector_id=connector_id)
            if connector is None:
                return []
            body, ids = selectors.connector_as_ocpi(connector), [*ids, connector.connector_id]
    body = _normal(body)
    return [
        outbox_enqueue(partner=partner, module=LOCATIONS, method="PUT", path=_our_path(*ids),
                       object_key=_location_key(location.id), body=body, coalesce=True,
                       meta={"status": body.get("status")} if len(ids) == 2 else {})
        for partner in partners
    ]


# --- Tariffs (mod_tariffs Receiver: PUT/DELETE {url}/{country_code}/{party_id}/{tariff_id}) ----------------------

def tariff_put_announce(*, tariff) -> list[OutboxMessage]:
    from billing.selectors import tariff_as_ocpi

    partners = partners_with_receiver(module=TARIFFS)
    if not partners:
        return []
    body = _normal(tariff_as_ocpi(tariff=tariff))
    path = "/".join(_segment(v) for v in (tariff.country_code, tariff.party_id, tariff.id))
    return [
        outbox_enqueue(partner=partner, module=TARIFFS, method="PUT", path=path, object_key=f"{TARIFFS}:{tariff.id}",
                       body=body, coalesce=True)
        for partner in partners
    ]


def tariff_delete_announce(*, country_code: str, party_id: str, tariff_id: str) -> list[OutboxMessage]:
    path = "/".join(_segment(v) for v in (country_code, party_id, tariff_id))
    return [
        outbox_enqueue(partner=partner, module=TARIFFS, method="DELETE", path=path,
                       object_key=f"{TARIFFS}:{tariff_id}", body=None, coalesce=True)
        for partner in partners_with_receiver(module=TARIFFS)
    ]


# --- The session pipeline (DESIGN.md "The flow of one charge", steps 4-5) ---------------------------------------

def transaction_push(*, transaction_pk: int):
    """Bring the OCPI Session of a gateway transaction up to date and tell its EMSP, in one database transaction:
    billing syncs the Session (created ACTIVE, or updated with kWh, periods and running cost, or COMPLETED when the
    transaction ended) and its PUT/PATCH is queued; once the session is over, billing writes its CDR (once, pricing
    the final usage, which also settles the session) and its POST is queued (once). Idempotent whichever gateway
    event triggered it, however often and on however many workers it runs: billing locks the transaction row until
    this commits, and its unique constraints and ours (one CDR per session, one POST per CDR) back that up.
    Returns the session, or None when the transaction cannot be billed (yet), e.g. it has no EVSE."""
    from billing.enums import SessionStatus
    from billing.services import NotBillable, cdr_create, session_sync

    with transaction.atomic():
        try:
            session = session_sync(transaction_pk=transaction_pk)
        except NotBillable as exc:
            logger.warning("transaction %s: no OCPI Session: %s", transaction_pk, exc)
            return None
        cdr = None
        if session.status == SessionStatus.COMPLETED:
            cdr = cdr_create(session=session)
            session.refresh_from_db()
        session_announce(session=session, final=session.status in (SessionStatus.COMPLETED, SessionStatus.INVALID))
        if cdr is not None:
            cdr_announce(cdr=cdr)
    return session


def transactions_unsettled(*, quiet_seconds: float, days: int = 7, limit: int = 500) -> list[int]:
    """Transactions whose OCPI pipeline did not finish (its task was lost with a worker or the broker): ended without
    a CDR, or running without a Session, and not changed for `quiet_seconds` (the normal task had its chance). Only
    the last `days` and only those with an EVSE (others cannot be billed). For the reconciling beat task."""
    from django.db.models import Exists, OuterRef

    from billing.models import Cdr, Session
    from ocpp_gateway.models import Transaction

    now = timezone.now()
    quiet = now - timedelta(seconds=quiet_seconds)
    recent = Transaction.objects.filter(evse__isnull=False, updated_at__lte=quiet, started_at__gte=now - timedelta(days=days))
    has_cdr = Exists(Cdr.objects.filter(session__transaction=OuterRef("pk"), credit=False))
    has_session = Exists(Session.objects.filter(transaction=OuterRef("pk")))
    ended = recent.filter(status=Transaction.Status.ENDED).exclude(has_cdr)
    running = recent.filter(status=Transaction.Status.ACTIVE).exclude(has_session)
    ids = list(ended.values_list("pk", flat=True)[:limit]) + list(running.values_list("pk", flat=True)[:limit])
    return ids[:limit]
