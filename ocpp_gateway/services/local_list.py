"""Local authorization lists (1.6 Local Auth List Management; 2.0.1 block D, D01-D02): every station holds the tokens
it may accept while it cannot ask us, and we keep that list in sync.

What a list should hold comes from token sources: the gateway's own (this CPO's cards, `cpo.Token`) and those other
apps register (`local_list_source_register`: ocpi_api adds the partners' tokens whose whitelist allows whitelisting).
Accepted tokens come first; blocked and expired ones follow so that a station refuses them offline too. A station
gets at most as many as it can hold (1.6 LocalAuthListMaxLength, 2.0.1 LocalAuthListCtrlr.Entries maxLimit), and
at most SendLocalListMaxLength / ItemsPerMessage entries and BytesPerMessage bytes per SendLocalList, from its stored
configuration (ocpp_gateway.services.message_limits).

Sync (`local_list_sync`): the first time, after a mismatch or an unanswered update, the whole list (Full, then
Differential messages for what did not fit in one); otherwise the difference between what the station holds
(LocalAuthListEntry, written only once it accepted) and what it should hold. Each message carries the version the
list has once applied. On every accepted boot the station's GetLocalListVersion is compared with ours
(`local_list_check`); a different number means the station lost or changed its list, and it gets the whole list.
Token changes mark every list dirty and queue one sync per station after OCPP_LOCAL_LIST_DEBOUNCE_SECONDS
(`local_lists_changed`). Commands wait for the charger: call these from tasks or views, never from a handler.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cpo.models import ChargingStation, Token
from ocpp_gateway.commands import CommandError
from ocpp_gateway.id_tokens import id_token_type_for
from ocpp_gateway.models import LocalAuthList, LocalAuthListEntry, StationVariable
from ocpp_gateway.requests import (
    OCPP_16_ID_TAG_LENGTH,
    GetLocalListVersion,
    LocalListEntry,
    SendLocalList,
    is_ocpp16,
)
from ocpp_gateway.services.command_audit import command_send_audited
from ocpp_gateway.services.message_limits import MessageLimits, batches, positive_number

logger = logging.getLogger(__name__)

State = LocalAuthList.State
ACCEPTED = "Accepted"
# A sync holds its station's lease this long at most (a process that died mid-sync lets go after it).
SYNC_LEASE_SECONDS = 300
PLATFORM = "platform: local list"

TokenSource = Callable[[], Iterable[LocalListEntry]]
_sources: list[TokenSource] = []


def local_list_source_register(source: TokenSource) -> None:
    """Add a source of tokens for every station's list, after the gateway's own. Idempotent (AppConfig.ready)."""
    if source not in _sources:
        _sources.append(source)


def own_tokens() -> Iterable[LocalListEntry]:
    """This CPO's cards: valid ones Accepted (Expired past their expiry date), the others Blocked."""
    now = timezone.now()
    for token in Token.objects.order_by("uid", "type").iterator():
        if not token.valid:
            status = "Blocked"
        elif token.expiry_date is not None and token.expiry_date <= now:
            status = "Expired"
        else:
            status = ACCEPTED
        yield LocalListEntry(
            id_tag=token.uid,
            status=status,
            token_type=token.type,
            expiry_date=token.expiry_date,
            group_id=token.group_id,
        )


# --- What a station should hold ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What the station's configuration says about its list (None: not known)."""

    supported: bool = True
    enabled: bool = True
    max_entries: int | None = None
    per_message: int | None = None
    bytes_per_message: int | None = None


def local_list_limits(*, station: ChargingStation) -> Limits:
    """From the stored configuration (ocpp_gateway.services.device_model)."""
    if is_ocpp16(station.ocpp_version):
        keys = dict(
            StationVariable.objects.filter(
                station=station,
                component="",
                variable__in=(
                    "LocalAuthListEnabled",
                    "LocalAuthListMaxLength",
                    "SendLocalListMaxLength",
                    "SupportedFeatureProfiles",
                ),
            ).values_list("variable", "value")
        )
        profiles = keys.get("SupportedFeatureProfiles")
        return Limits(
            supported=profiles is None or "localauthlistmanagement" in profiles.lower(),
            enabled=keys.get("LocalAuthListEnabled", "true").strip().lower() != "false",
            max_entries=positive_number(keys.get("LocalAuthListMaxLength")),
            per_message=positive_number(keys.get("SendLocalListMaxLength")),
        )
    rows = {
        row.variable: row
        for row in StationVariable.objects.filter(
            station=station,
            component="LocalAuthListCtrlr",
            evse_id=0,
            attribute_type="Actual",
            variable__in=("Available", "Enabled", "Entries", "ItemsPerMessage", "BytesPerMessage"),
        )
    }
    available, enabled = rows.get("Available"), rows.get("Enabled")
    entries, per_message, size = rows.get("Entries"), rows.get("ItemsPerMessage"), rows.get("BytesPerMessage")
    return Limits(
        supported=available is None or available.value.strip().lower() != "false",
        enabled=enabled is None or enabled.value.strip().lower() != "false",
        max_entries=positive_number(entries.max_limit) if entries is not None else None,
        per_message=positive_number(per_message.value) if per_message is not None else None,
        bytes_per_message=positive_number(size.value) if size is not None else None,
    )


def entry_key(entry: LocalListEntry | LocalAuthListEntry, *, ocpp16: bool) -> tuple[str, str]:
    """idTags are case-insensitive (CiString); a 2.0.1 idToken is also its type."""
    if ocpp16:
        return entry.id_tag.casefold(), ""
    if isinstance(entry, LocalAuthListEntry):
        return entry.id_tag.casefold(), entry.id_token_type
    return entry.id_tag.casefold(), id_token_type_for(token_type=entry.token_type)


def local_list_wanted(*, station: ChargingStation, max_entries: int | None) -> tuple[list[LocalListEntry], int]:
    """The entries the station should hold, in order (Accepted first, then the rest; own tokens before partners'),
    cut at `max_entries`; and how many there were before the cut."""
    ocpp16 = is_ocpp16(station.ocpp_version)
    seen: set[tuple[str, str]] = set()
    accepted: list[LocalListEntry] = []
    refused: list[LocalListEntry] = []
    for source in [own_tokens, *_sources]:
        for entry in source():
            if not entry.id_tag or (ocpp16 and len(entry.id_tag) > OCPP_16_ID_TAG_LENGTH):
                continue  # 1.6 idTags are CiString20: a longer uid cannot be on the list
            key = entry_key(entry, ocpp16=ocpp16)
            if key in seen:
                continue  # the first source that knows a token decides, as for authorization
            seen.add(key)
            (accepted if entry.status == ACCEPTED else refused).append(entry)
    wanted = accepted + refused
    return (wanted[:max_entries] if max_entries else wanted), len(wanted)


def _held(*, station: ChargingStation) -> dict[tuple[str, str], LocalAuthListEntry]:
    ocpp16 = is_ocpp16(station.ocpp_version)
    return {entry_key(e, ocpp16=ocpp16): e for e in LocalAuthListEntry.objects.filter(station=station)}


def _same(held: LocalAuthListEntry, entry: LocalListEntry) -> bool:
    return (held.status, held.expiry_date, held.group_id) == (entry.status, entry.expiry_date, entry.group_id)


def local_list_changes(*, station: ChargingStation, wanted: list[LocalListEntry]) -> list[LocalListEntry]:
    """A differential update: new and changed entries, and removals (status None) of those no longer wanted."""
    ocpp16 = is_ocpp16(station.ocpp_version)
    held = _held(station=station)
    changes = []
    wanted_keys = set()
    for entry in wanted:
        key = entry_key(entry, ocpp16=ocpp16)
        wanted_keys.add(key)
        if key not in held or not _same(held[key], entry):
            changes.append(entry)
    for key, row in held.items():
        if key not in wanted_keys:
            token_type = "RFID" if ocpp16 else _token_type_of(row.id_token_type)
            changes.append(LocalListEntry(id_tag=row.id_tag, status=None, token_type=token_type))
    return changes


# A held entry's 2.0.1 idToken type -> an OCPI token type that gives it back (to name the entry in a removal).
TOKEN_TYPE_OF_ID_TOKEN_TYPE = {"ISO14443": "RFID", "Central": "APP_USER"}


def _token_type_of(id_token_type: str) -> str:
    return TOKEN_TYPE_OF_ID_TOKEN_TYPE.get(id_token_type, "OTHER")


# --- Recording what the station accepted ---------------------------------------------------------------------------


def _entries_apply(*, station: ChargingStation, entries: Iterable[LocalListEntry], replace: bool) -> None:
    """What the station holds after it accepted `entries` (the whole list when `replace`): one INSERT for the new
    ones, one DELETE for the removed ones, an UPDATE per changed one."""
    ocpp16 = is_ocpp16(station.ocpp_version)
    if replace:
        LocalAuthListEntry.objects.filter(station=station).delete()
    held = {} if replace else _held(station=station)
    created: dict[tuple[str, str], LocalAuthListEntry] = {}
    removed = []
    for entry in entries:
        key = entry_key(entry, ocpp16=ocpp16)
        row = held.get(key)
        if entry.status is None:
            created.pop(key, None)
            if row is not None:
                removed.append(row.pk)
            continue
        values = {"status": entry.status, "expiry_date": entry.expiry_date, "group_id": entry.group_id[:36]}
        if row is None:
            created[key] = LocalAuthListEntry(station=station, id_tag=entry.id_tag, id_token_type=key[1], **values)
        elif not _same(row, entry):
            LocalAuthListEntry.objects.filter(pk=row.pk).update(**values)
    LocalAuthListEntry.objects.filter(pk__in=removed).delete()
    LocalAuthListEntry.objects.bulk_create(created.values(), batch_size=1000)


def _list_update(station_pk: int, **fields) -> None:
    LocalAuthList.objects.filter(station_id=station_pk).update(**fields)


def local_list_get(*, station_pk: int) -> LocalAuthList:
    return LocalAuthList.objects.get_or_create(station_id=station_pk)[0]


# --- Sending -----------------------------------------------------------------------------------------------------


def _audit_payload(request: SendLocalList, *, ocpp16: bool) -> dict:
    """The audit log keeps the message's head, how many entries it carried and the first few idTags."""
    _, payload = request.for_version("1.6" if ocpp16 else "2.0.1")
    shown = payload.pop("localAuthorizationList", [])
    payload["entries"] = len(shown)
    payload["localAuthorizationList"] = shown[:20]
    return payload


# A version number as wide as it gets (int32): a message measured with it never grows past the limit.
WIDEST_VERSION = 2**31 - 1


def local_list_messages(*, station: ChargingStation, entries: list[LocalListEntry]) -> list[list[LocalListEntry]]:
    """The entries cut into SendLocalList messages within what the station takes: its ItemsPerMessage /
    SendLocalListMaxLength (else OCPP_LOCAL_LIST_ITEMS_PER_MESSAGE) and its BytesPerMessage (2.0.1)."""
    limits = local_list_limits(station=station)
    ocpp16 = is_ocpp16(station.ocpp_version)
    version = "1.6" if ocpp16 else "2.0.1"
    return batches(
        entries,
        limits=MessageLimits(
            items=limits.per_message or settings.OCPP_LOCAL_LIST_ITEMS_PER_MESSAGE, size=limits.bytes_per_message
        ),
        call_for=lambda chunk: SendLocalList(version=WIDEST_VERSION, entries=tuple(chunk)).for_version(version),
        wire=lambda entry: entry.ocpp16() if ocpp16 else entry.ocpp201(),
    )


def _send(*, station: ChargingStation, entries: list[LocalListEntry], full: bool, actor: str) -> str:
    """Send the entries (all of them for a full update) in as many messages as the station takes, each with the next
    version; record each one the station accepts. Returns the state it ends in."""
    ocpp16 = is_ocpp16(station.ocpp_version)
    version = LocalAuthList.objects.values_list("version", flat=True).get(station_id=station.pk)
    for number, chunk in enumerate(local_list_messages(station=station, entries=entries)):
        replace = full and number == 0
        version += 1
        request = SendLocalList(version=version, entries=tuple(chunk), full=replace)
        answered = command_send_audited(
            station=station, request=request, actor=actor, audit_payload=_audit_payload(request, ocpp16=ocpp16)
        )
        status = answered.status
        now = timezone.now()
        if answered.ok and status == ACCEPTED:
            with transaction.atomic():
                _entries_apply(station=station, entries=chunk, replace=replace)
                _list_update(
                    station.pk,
                    version=version,
                    station_version=version,
                    entries_count=LocalAuthListEntry.objects.filter(station=station).count(),
                    last_status=ACCEPTED,
                    last_sync_at=now,
                )
            continue
        # Refused or unanswered: what the station holds is not known for sure, so the next sync sends it all.
        if answered.error is not None and answered.error.reason == CommandError.OFFLINE:
            state = State.PENDING
        elif answered.error is not None and answered.error.reason == CommandError.TIMEOUT:
            state = State.NO_ANSWER
        elif status == "NotSupported" or (answered.error is not None and answered.error.error_code == "NotImplemented"):
            state = State.UNSUPPORTED
        else:
            state = State.FAILED
        _list_update(station.pk, state=state, full_wanted=True, last_status=status[:60], last_sync_at=now)
        logger.warning("%s: SendLocalList v%s not applied: %s", station.identity, version, status)
        return state if status != "VersionMismatch" else "VersionMismatch"
    return State.IN_SYNC


def _sync_once(*, station_pk: int, actor: str) -> str:
    station = ChargingStation.objects.get(pk=station_pk)
    if not station.online:
        _list_update(station_pk, state=State.PENDING, last_status="offline")
        return State.PENDING
    limits = local_list_limits(station=station)
    if not limits.supported:
        _list_update(station_pk, state=State.UNSUPPORTED, last_status="not in SupportedFeatureProfiles")
        return State.UNSUPPORTED
    if not limits.enabled:
        _list_update(station_pk, state=State.DISABLED, last_status="LocalAuthListEnabled is false")
        return State.DISABLED
    wanted, count = local_list_wanted(station=station, max_entries=limits.max_entries)
    _list_update(station_pk, wanted_count=count, max_entries=limits.max_entries)
    row = LocalAuthList.objects.get(station_id=station_pk)
    full = row.full_wanted or row.version <= 0
    if not full:
        changes = local_list_changes(station=station, wanted=wanted)
        if not changes:
            _list_update(station_pk, state=State.IN_SYNC)
            return State.IN_SYNC
        _list_update(station_pk, state=State.SYNCING)
        state = _send(station=station, entries=changes, full=False, actor=actor)
        if state != "VersionMismatch":
            if state == State.IN_SYNC:
                _list_update(station_pk, state=State.IN_SYNC)
            return state
        full = True  # the station's list is not the one we think: send it whole, once
    if row.version <= 0 and not wanted and row.station_version == 0:
        _list_update(station_pk, state=State.IN_SYNC, full_wanted=False)
        return State.IN_SYNC  # nothing to hold and the station holds nothing: no need for a version 1
    _list_update(station_pk, state=State.SYNCING)
    state = _send(station=station, entries=wanted, full=True, actor=actor)
    if state == State.IN_SYNC:
        _list_update(station_pk, state=State.IN_SYNC, full_wanted=False)
    return State.FAILED if state == "VersionMismatch" else state


def _lease_claim(*, station_pk: int, full: bool) -> bool:
    """Take the station's sync lease; when another process holds it, leave it a note (dirty) to do another pass."""
    now = timezone.now()
    with transaction.atomic():
        local_list_get(station_pk=station_pk)
        row = LocalAuthList.objects.select_for_update().get(station_id=station_pk)
        if full:
            row.full_wanted = True
        if row.sync_lease is not None and row.sync_lease > now - timedelta(seconds=SYNC_LEASE_SECONDS):
            row.dirty = True
            row.save(update_fields=["dirty", "full_wanted"])
            return False
        row.sync_lease, row.dirty = now, False
        row.save(update_fields=["sync_lease", "dirty", "full_wanted"])
        return True


def local_list_sync(*, station_pk: int, full: bool = False, actor: str = PLATFORM) -> str:
    """Bring the station's list up to date (the whole list when `full`); returns the state it is in afterwards, or
    "busy" when another process is syncing it (that one does another pass for what changed meanwhile)."""
    if not _lease_claim(station_pk=station_pk, full=full):
        return "busy"
    state: str = State.FAILED
    try:
        for _ in range(5):
            state = _sync_once(station_pk=station_pk, actor=actor)
            if state != State.IN_SYNC:
                break
            # Tokens changed while we were sending (dirty): another pass, else let go.
            if LocalAuthList.objects.filter(station_id=station_pk, dirty=False).update(sync_lease=None):
                return state
            _list_update(station_pk, dirty=False)
    finally:
        _list_update(station_pk, sync_lease=None)
    return state


def local_list_check(*, station_pk: int, actor: str = PLATFORM) -> str:
    """After an accepted boot: ask the station for its list version; a version other than ours means it lost or
    changed its list, and it gets the whole list again. Then any change waiting is sent. Returns the state."""
    if not settings.OCPP_LOCAL_LIST_ENABLED:
        return "off"
    station = ChargingStation.objects.get(pk=station_pk)
    row = local_list_get(station_pk=station_pk)
    limits = local_list_limits(station=station)
    if not limits.supported:
        _list_update(station_pk, state=State.UNSUPPORTED, last_status="not in SupportedFeatureProfiles")
        return State.UNSUPPORTED
    answered = command_send_audited(station=station, request=GetLocalListVersion(), actor=actor)
    now = timezone.now()
    if not answered.ok:
        error = answered.error
        assert error is not None
        unsupported = error.error_code in ("NotImplemented", "NotSupported")
        state = State.UNSUPPORTED if unsupported else State.NO_ANSWER
        _list_update(station_pk, state=state, last_status=answered.status[:60], last_checked_at=now)
        return state
    version = GetLocalListVersion.version(answered.answer or {})
    if version is None or version < 0:
        _list_update(
            station_pk, state=State.UNSUPPORTED, station_version=version, last_status="no list", last_checked_at=now
        )
        return State.UNSUPPORTED
    mismatch = version != row.version
    if mismatch:
        logger.info("%s: local list version %s, ours %s: sending it whole", station.identity, version, row.version)
    _list_update(
        station_pk,
        station_version=version,
        last_checked_at=now,
        **(
            {"full_wanted": True, "last_status": f"version mismatch: station {version}, ours {row.version}"}
            if mismatch
            else {}
        ),
    )
    return local_list_sync(station_pk=station_pk, actor=actor)


def local_lists_due() -> list[int]:
    """Stations to sync after tokens changed: online, their list not unsupported or disabled."""
    return list(
        LocalAuthList.objects.filter(station__online=True, dirty=True)
        .exclude(state__in=(State.UNSUPPORTED, State.DISABLED))
        .values_list("station_id", flat=True)
    )


def local_lists_mark_dirty() -> int:
    """Tokens changed: every list may differ from what its station should hold now."""
    return LocalAuthList.objects.filter(dirty=False).update(dirty=True)
