"""Security (2.0.1 block A): brute-force protection of the charger handshake, and the cool-down of a charger closed
for flooding.

Failed authentications are counted per identity and per client address in the Django cache (Redis when REDIS_URL
is set, so every daphne process sees the same counts). Reaching the limit locks the identity or the address out for
OCPP_AUTH_LOCKOUT_SECONDS: its handshakes are then refused before any password is checked, with one WARNING alert
when the lockout starts and an audit row (StationAuthFailure) for every failure counted. While locked, nothing is
written to the database, so a brute-force run costs a bounded number of rows and one cache read per attempt.

While the cache (Redis) is unreachable, handshakes go on: the lockout is decided from the audit rows of the last
OCPP_AUTH_LOCKOUT_SECONDS instead (one query per handshake, only then), and failures are still recorded as rows.

A charger closed for flooding (ocpp_gateway.limits) is refused for OCPP_FLOOD_COOLDOWN_SECONDS after, before any
password is checked: a key in the same cache says until when. Without the cache (Redis down) it is not refused: the
frame limiter closes it again if it floods again.

The counts use one cache client per process (`_cache()`), not `django.core.cache.cache`: Django keeps that one per
asyncio context, and every handshake reaches these functions on the gateway's database threads in a context of its
own, so each handshake built a new Redis connection pool and left its connection open (a 2,000-charger reconnect
storm held 7,500 Redis connections, towards Redis's maxclients).
"""

import logging
import math
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.db.models import Count, Q
from django.utils import timezone
from redis.exceptions import RedisError

from cpo.alerts import alert_raise
from cpo.models import AlertKind, ChargingStation
from ocpp_gateway.models import StationAuthFailure

logger = logging.getLogger(__name__)

KEY_PREFIX = "ocpp-auth"
CACHE_WARNING_EVERY_SECONDS = 10.0
_cache_warned_at = -CACHE_WARNING_EVERY_SECONDS
_shared_cache: tuple[dict, BaseCache] | None = None


def _cache() -> BaseCache:
    """The default cache, one client (and connection pool, thread-safe) for the whole process; made anew when the
    CACHES setting is replaced (tests)."""
    global _shared_cache
    if _shared_cache is None or _shared_cache[0] is not settings.CACHES:
        _shared_cache = (settings.CACHES, caches.create_connection("default"))
    return _shared_cache[1]


def _key(what: str, kind: str, value: str) -> str:
    return f"{KEY_PREFIX}:{what}:{kind}:{value}"


def _limits() -> dict[str, int]:
    return {"identity": settings.OCPP_AUTH_FAILURE_LIMIT, "address": settings.OCPP_AUTH_ADDRESS_FAILURE_LIMIT}


def station_auth_lockout(*, identity: str, address: str) -> str:
    """Why handshakes of `identity` or from `address` are refused unchecked right now; empty when they are not."""
    keys = {_key("lock", "identity", identity): "identity", _key("lock", "address", address): "address"}
    try:
        locked = _cache().get_many(list(keys))
    except RedisError as exc:
        _cache_unavailable(exc)
        return _lockout_from_database(identity=identity, address=address)
    if not locked:
        return ""
    return " and ".join(f"{keys[key]} locked out" for key in keys if key in locked)


def _lockout_from_database(*, identity: str, address: str) -> str:
    """The lockout as the failures recorded in the last lockout window say (the cache's counts are out of reach)."""
    since = timezone.now() - timedelta(seconds=settings.OCPP_AUTH_LOCKOUT_SECONDS)
    counts = (
        StationAuthFailure.objects.filter(created_at__gte=since)
        .exclude(reason=StationAuthFailure.Reason.LOCKED_OUT)
        .aggregate(identity=Count("pk", filter=Q(identity=identity)), address=Count("pk", filter=Q(address=address)))
    )
    values = {"identity": identity, "address": address}
    return " and ".join(
        f"{kind} locked out" for kind, limit in _limits().items() if values[kind] and counts[kind] >= limit
    )


def station_flood_cooldown_start(*, identity: str) -> int:
    """The charger was closed for flooding: refuse its handshakes for OCPP_FLOOD_COOLDOWN_SECONDS, in every process
    sharing the cache. Returns the seconds."""
    seconds = settings.OCPP_FLOOD_COOLDOWN_SECONDS
    if seconds > 0:
        try:
            _cache().set(_key("flood", "identity", identity), time.time() + seconds, timeout=seconds)
        except RedisError as exc:
            _cache_unavailable(exc)
    return seconds


def station_flood_cooldown(*, identity: str) -> int:
    """Seconds (rounded up) until a charger closed for flooding may connect again; 0 when it may now."""
    try:
        until = _cache().get(_key("flood", "identity", identity))
    except RedisError as exc:
        _cache_unavailable(exc)
        return 0
    return max(0, math.ceil(until - time.time())) if until is not None else 0


def _cache_unavailable(exc: Exception) -> None:
    global _cache_warned_at
    now = time.monotonic()
    if now - _cache_warned_at >= CACHE_WARNING_EVERY_SECONDS:
        _cache_warned_at = now
        logger.warning("failed-login counts: cache unavailable (%r), the database decides lockouts meanwhile", exc)


def _failure_count(*, kind: str, value: str) -> int:
    """Failures of this identity/address in the current window (which starts with the first failure)."""
    key = _key("failures", kind, value)
    window = settings.OCPP_AUTH_LOCKOUT_SECONDS
    _cache().add(key, 0, timeout=window)
    try:
        return _cache().incr(key)
    except ValueError:  # expired between add and incr
        _cache().set(key, 1, timeout=window)
        return 1


def station_auth_failure_record(*, identity: str, address: str, station_pk: int | None, reason: str) -> None:
    """Count a failed authentication, keep it for staff, and lock the identity or the address out at its limit."""
    now = timezone.now()
    rows = [
        StationAuthFailure(station_id=station_pk, identity=identity, address=address, reason=reason, created_at=now)
    ]
    for kind, value in (("identity", identity), ("address", address)):
        if not value:
            continue
        limit = _limits()[kind]
        try:
            count = _failure_count(kind=kind, value=value)
            if count >= limit:
                _cache().set(_key("lock", kind, value), True, timeout=settings.OCPP_AUTH_LOCKOUT_SECONDS)
                _cache().delete(_key("failures", kind, value))
        except RedisError as exc:  # the row below is counted instead (_lockout_from_database)
            _cache_unavailable(exc)
            continue
        if count >= limit:
            logger.warning(
                "ALERT: OCPP %s %s locked out for %s s after %s failed authentications (last: identity %s from %s)",
                kind,
                value,
                settings.OCPP_AUTH_LOCKOUT_SECONDS,
                count,
                identity,
                address or "?",
            )
            alert_raise(
                kind=AlertKind.AUTH_LOCKOUT,
                subject=f"{kind} {value}",
                message=f"{kind} {value} locked out for {settings.OCPP_AUTH_LOCKOUT_SECONDS} s after {count} failed "
                f"authentications (last: identity {identity} from {address or '?'})",
            )
            rows.append(
                StationAuthFailure(
                    station_id=station_pk,
                    identity=identity,
                    address=address,
                    reason=StationAuthFailure.Reason.LOCKED_OUT,
                    created_at=now,
                )
            )
    StationAuthFailure.objects.bulk_create(rows)


def station_security_event_record(*, station_pk: int, type: str, timestamp: str, tech_info: str = "") -> None:
    """A SecurityEventNotification (1.6 security whitepaper, 2.0.1 A04) raises an alert for staff, one per station and
    event type, unless the type is in ALERT_SECURITY_EVENTS_IGNORED (routine ones such as StartupOfTheDevice)."""
    if type in settings.ALERT_SECURITY_EVENTS_IGNORED:
        return
    identity = ChargingStation.objects.filter(pk=station_pk).values_list("identity", flat=True).get()
    details = f": {tech_info}" if tech_info else ""
    alert_raise(
        kind=AlertKind.SECURITY_EVENT,
        subject=f"{identity} {type}",
        message=f"station {identity} reported security event {type} at {timestamp}{details}",
    )
