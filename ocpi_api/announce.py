"""What we announce to partners: outbox rows (`ocpi_api.outbox`) written inside the transaction of the change they
announce. Sessions and CDRs go to the EMSP whose token was used (never to anyone else), EVSE status, locations and
tariffs to every registered partner that has a Receiver endpoint for the module. Each announcer says nothing when
the partner was told this already, so a change announced twice is pushed once."""

import hashlib
import json
from datetime import timedelta
from urllib.parse import quote

from django.conf import settings
from django.db import transaction

from billing.encoding import DecimalJSONDecoder, DecimalJSONEncoder
from billing.enums import SessionStatus
from billing.models import Cdr, Session, Tariff
from billing.selectors import cdr_as_ocpi, session_as_ocpi, tariff_as_ocpi
from cpo.models import EVSE
from ocpi_api import selectors
from ocpi_api.models import OutboxMessage, OutboxStatus, Partner
from ocpi_api.modules import InterfaceRole, ModuleID
from ocpi_api.outbox import outbox_enqueue, outbox_enqueue_once, outbox_last, outbox_object_key
from ocpp_gateway.selectors import evse_status_shown

ACTIVE_STATUSES = (SessionStatus.ACTIVE, SessionStatus.PENDING, SessionStatus.RESERVATION)


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


def session_object_key(session: Session) -> str:
    return outbox_object_key(ModuleID.SESSIONS, session.country_code, session.party_id, session.id)


def cdr_object_key(cdr: Cdr) -> str:
    """The outbox key of a CDR's POST (the dashboard shows its push by it)."""
    return outbox_object_key(ModuleID.CDRS, cdr.country_code, cdr.party_id, cdr.id)


def session_announce(*, session: Session, final: bool = False) -> OutboxMessage | None:
    """Queue what the owning EMSP needs to know of `session` (a billing.Session just synced): a PUT the first time
    (or after a push was given up, or when periods already sent changed), else a PATCH of the fields that changed.
    Nothing for our own tokens, partners without a sessions Receiver, or when nothing changed (so a task that runs
    twice announces once).

    charging_periods: a PATCH adds periods at the partner, so only finished periods are sent (all but the running
    last one while the session is ACTIVE, all once it is over). PATCHes of an active session are throttled to one
    per OCPI_SESSION_PATCH_MIN_INTERVAL; later changes coalesce into the waiting one; `final` sends at once.
    Precondition: inside the transaction that wrote the session, holding its transaction's row lock."""
    partner = selectors.partner_of_party(country_code=session.emsp_country_code, party_id=session.emsp_party_id)
    if partner is None or not partner.endpoint_url(identifier=ModuleID.SESSIONS, role=InterfaceRole.RECEIVER):
        return None
    data = _normal(session_as_ocpi(session=session))
    periods = list(data.pop("charging_periods", None) or [])
    done = final or data.get("status") not in ACTIVE_STATUSES
    finished = periods if done else periods[:-1]
    hashes = [_digest(p) for p in finished]
    key = session_object_key(session)
    path = _our_path(session.id)
    to_party = (session.emsp_country_code.upper(), session.emsp_party_id.upper())
    meta = {"session": data, "periods": hashes}
    last = outbox_last(partner=partner, object_key=key)
    previous = (last.meta or {}) if last is not None else {}
    sent = previous.get("periods") or []
    if last is None or last.status == OutboxStatus.FAILED or "session" not in previous or hashes[: len(sent)] != sent:
        body = {**data, "charging_periods": finished} if finished else data
        return outbox_enqueue(
            partner=partner,
            module=ModuleID.SESSIONS,
            method="PUT",
            path=path,
            object_key=key,
            body=body,
            to_party=to_party,
            coalesce=True,
            meta=meta,
        )
    before = previous["session"]
    if set(before) - set(data):  # a field went away: only a PUT can say so
        return outbox_enqueue(
            partner=partner,
            module=ModuleID.SESSIONS,
            method="PUT",
            path=path,
            object_key=key,
            body={**data, "charging_periods": finished},
            to_party=to_party,
            coalesce=True,
            meta=meta,
        )
    changes = {k: v for k, v in data.items() if k != "last_updated" and before.get(k) != v}
    new_periods = finished[len(sent) :]
    if not changes and not new_periods:
        return None
    if new_periods:
        changes["charging_periods"] = new_periods
    changes["last_updated"] = data["last_updated"]
    not_before = None
    if not done:
        not_before = last.due_at + timedelta(seconds=settings.OCPI_SESSION_PATCH_MIN_INTERVAL)
    return outbox_enqueue(
        partner=partner,
        module=ModuleID.SESSIONS,
        method="PATCH",
        path=path,
        object_key=key,
        body=changes,
        to_party=to_party,
        coalesce=True,
        not_before=not_before,
        meta=meta,
    )


def cdr_announce(*, cdr: Cdr) -> OutboxMessage | None:
    """Queue the POST of a CDR to the EMSP whose token was used, once (a second call finds the first message), after
    every push of its session (the session's order key). Precondition: inside the transaction that created the CDR."""
    partner = selectors.partner_of_party(country_code=cdr.emsp_country_code, party_id=cdr.emsp_party_id)
    if partner is None or not partner.endpoint_url(identifier=ModuleID.CDRS, role=InterfaceRole.RECEIVER):
        return None
    message, _ = outbox_enqueue_once(
        partner=partner,
        module=ModuleID.CDRS,
        path="",
        object_key=cdr_object_key(cdr),
        order_key=session_object_key(cdr.session),
        body=_normal(cdr_as_ocpi(cdr=cdr)),
        to_party=(cdr.emsp_country_code.upper(), cdr.emsp_party_id.upper()),
    )
    return message


# --- Locations (mod_locations Receiver: PUT/PATCH {url}/{cc}/{pid}/{location_id}[/{evse_uid}[/{connector_id}]]) ---


def _location_key(location_id: str) -> str:
    # One key per location: a Location PUT (which carries its EVSEs' status) and EVSE PATCHes stay in order.
    return outbox_object_key(ModuleID.LOCATIONS, location_id)


def evse_status_announce(*, evse: EVSE, partners: list[Partner] | None = None) -> list[OutboxMessage]:
    """PATCH `{status, last_updated}` of a published EVSE to every partner with a locations Receiver (`partners`
    when the caller looked them up for a whole batch), unless the partner was last told this status already.
    Coalesces with an undelivered PATCH of the same EVSE."""
    if partners is None:
        partners = selectors.partners_with_receiver(module=ModuleID.LOCATIONS)
    if not partners or not evse.location.publish or not evse.registered:
        return []
    status = evse_status_shown(evse=evse)
    last_updated = selectors.evse_as_ocpi(evse)["last_updated"]
    path = _our_path(evse.location_id, evse.uid)
    messages = []
    for partner in partners:
        last = outbox_last(partner=partner, object_key=_location_key(evse.location_id), path=path)
        if last is not None and last.status != OutboxStatus.FAILED and (last.meta or {}).get("status") == status:
            continue
        messages.append(
            outbox_enqueue(
                partner=partner,
                module=ModuleID.LOCATIONS,
                method="PATCH",
                path=path,
                object_key=_location_key(evse.location_id),
                body={"status": status, "last_updated": last_updated},
                coalesce=True,
                meta={"status": status},
            )
        )
    return messages


def location_put_announce(
    *, location_id: str, evse_uid: str | None = None, connector_id: str | None = None
) -> list[OutboxMessage]:
    """PUT the current Location (or one of its EVSEs, or one connector) to every partner with a locations Receiver.
    Unpublished locations are never pushed."""
    partners = selectors.partners_with_receiver(module=ModuleID.LOCATIONS)
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
        outbox_enqueue(
            partner=partner,
            module=ModuleID.LOCATIONS,
            method="PUT",
            path=_our_path(*ids),
            object_key=_location_key(location.id),
            body=body,
            coalesce=True,
            meta={"status": body.get("status")} if len(ids) == 2 else {},
        )
        for partner in partners
    ]


# --- Tariffs (mod_tariffs Receiver: PUT/DELETE {url}/{country_code}/{party_id}/{tariff_id}) ----------------------


def tariff_put_announce(*, tariff: Tariff) -> list[OutboxMessage]:
    partners = selectors.partners_with_receiver(module=ModuleID.TARIFFS)
    if not partners:
        return []
    body = _normal(tariff_as_ocpi(tariff=tariff))
    path = "/".join(_segment(v) for v in (tariff.country_code, tariff.party_id, tariff.id))
    return [
        outbox_enqueue(
            partner=partner,
            module=ModuleID.TARIFFS,
            method="PUT",
            path=path,
            object_key=outbox_object_key(ModuleID.TARIFFS, tariff.id),
            body=body,
            coalesce=True,
        )
        for partner in partners
    ]


def tariff_delete_announce(*, country_code: str, party_id: str, tariff_id: str) -> list[OutboxMessage]:
    path = "/".join(_segment(v) for v in (country_code, party_id, tariff_id))
    return [
        outbox_enqueue(
            partner=partner,
            module=ModuleID.TARIFFS,
            method="DELETE",
            path=path,
            object_key=outbox_object_key(ModuleID.TARIFFS, tariff_id),
            body=None,
            coalesce=True,
        )
        for partner in selectors.partners_with_receiver(module=ModuleID.TARIFFS)
    ]


def evse_status_push(*, evse_pk: int, partners: list[Partner] | None = None) -> list[OutboxMessage]:
    """An EVSE changed status (a gateway event): PATCH it to partners (see `evse_status_announce`), holding the EVSE
    row so two runs for the same EVSE announce one after the other."""
    with transaction.atomic():
        evse = (
            EVSE.objects.select_for_update(of=("self",))
            .select_related("location", "station")
            .filter(pk=evse_pk)
            .first()
        )
        if evse is None:
            return []
        return evse_status_announce(evse=evse, partners=partners)
