"""idTag / idToken authorization: who may charge.

Authorizers are tried in order; the first that knows the token decides. The gateway ships the local one (this CPO's
own cards, `cpo.Token`); other apps add theirs with `authorizer_register` from their AppConfig.ready (ocpi_api adds
the tokens EMSPs pushed, with real-time authorization where the whitelist type asks for it). A token nobody knows
is Invalid.

An authorizer reads our database only. When it must ask someone else first (an EMSP, in real time), it returns a
`RealtimeCheck` instead of a result: the remote call then runs on a small pool of its own, never on a gateway database
thread, bounded by the check's timeout (`realtime_check_run_async`), and `decide` turns its answer into the result.
"""

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from cpo.models import Token
from ocpp_gateway import sql

logger = logging.getLogger(__name__)


class AuthorizationStatus:
    """OCPP 1.6 AuthorizationStatus / 2.0.1 AuthorizationStatusEnumType values we answer with."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"
    UNKNOWN = "Unknown"  # 2.0.1 only


@dataclass(frozen=True)
class AuthorizationRequest:
    id_tag: str
    id_token_type: str = ""  # 2.0.1 IdTokenEnumType (ISO14443, eMAID, Central, ...); empty for 1.6
    station_identity: str = ""
    location_id: str = ""
    evse_uid: str = ""


@dataclass(frozen=True)
class AuthorizationResult:
    status: str
    source: str = ""  # "local", "partner:<pk>", ...
    expiry_date: datetime | None = None
    group_id: str = ""
    authorization_reference: str = ""
    token_uid: str = ""  # the OCPI Token.uid, when the charger's idTag is not it (e.g. a stand-in for a long uid)
    token_type: str = ""  # OCPI TokenType of the token that decided
    contract_id: str = ""
    auth_method: str = "WHITELIST"  # OCPI AuthMethod: AUTH_REQUEST (asked the EMSP in real time), COMMAND, WHITELIST
    country_code: str = ""  # the party that issued the token; empty for this CPO's own tokens
    party_id: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status == AuthorizationStatus.ACCEPTED


@dataclass(frozen=True)
class RealtimeCheck:
    """An authorizer's answer when it must ask someone outside our database before it can decide. `ask` makes that
    call (no database access: everything it needs is read before); `decide` turns its answer, or None when there
    was none within `timeout` seconds, into the result (no database access either)."""

    ask: Callable[[], object]
    decide: Callable[[object], AuthorizationResult]
    timeout: float


Authorizer = Callable[[AuthorizationRequest], AuthorizationResult | RealtimeCheck | None]
_authorizers: list[Authorizer] = []


def authorizer_register(authorizer: Authorizer, *, first: bool = False) -> None:
    """Add a source of tokens. Idempotent, so AppConfig.ready may call it more than once."""
    if authorizer in _authorizers:
        return
    if first:
        _authorizers.insert(0, authorizer)
    else:
        _authorizers.append(authorizer)


def authorize_local(request: AuthorizationRequest) -> AuthorizationResult | None:
    """This CPO's own tokens: Blocked when not valid, Expired past expiry_date, otherwise Accepted."""
    token = sql.fetch_one(_LOCAL_TOKEN, [request.id_tag])
    if token is None:
        return None
    valid, expiry_date, group_id, token_type, contract_id = token
    expiry_date = sql.from_db_datetime(expiry_date)
    if not valid:
        status = AuthorizationStatus.BLOCKED
    elif expiry_date is not None and expiry_date <= timezone.now():
        status = AuthorizationStatus.EXPIRED
    else:
        status = AuthorizationStatus.ACCEPTED
    return AuthorizationResult(
        status=status,
        source="local",
        expiry_date=expiry_date,
        group_id=group_id,
        token_type=token_type,
        contract_id=contract_id,
    )


# What `token_list_local(uid=...).first()` reads of a token, as plain SQL (ocpp_gateway.sql): every Authorize and
# StartTransaction asks.
_LOCAL_TOKEN = (
    f'SELECT "valid", "expiry_date", "group_id", "type", "contract_id" FROM "{Token._meta.db_table}" '  # noqa: S608
    'WHERE "uid" = %s ORDER BY "uid" LIMIT 1'
)


authorizer_register(authorize_local)


def id_tag_authorize_step(request: AuthorizationRequest) -> AuthorizationResult | RealtimeCheck:
    """Ask each source in turn, from our database: the result, or the real-time check that decides it. Invalid when
    no source knows the token."""
    if not request.id_tag:
        return AuthorizationResult(status=AuthorizationStatus.INVALID)
    for authorizer in _authorizers:
        result = authorizer(request)
        if result is not None:
            return result
    return AuthorizationResult(status=AuthorizationStatus.INVALID)


def realtime_check_run(check: RealtimeCheck) -> AuthorizationResult:
    """Run a real-time check in the caller's thread (the shell, tests, synchronous callers)."""
    try:
        answer = check.ask()
    except Exception:
        logger.exception("real-time authorization failed")
        answer = None
    return check.decide(answer)


_realtime_executor: ThreadPoolExecutor | None = None


async def realtime_check_run_async(check: RealtimeCheck) -> AuthorizationResult:
    """Run a real-time check from the event loop: the remote call on the OCPP_REALTIME_AUTHORIZATION_THREADS pool,
    given up after `check.timeout` seconds (a call still queued then is not made)."""
    global _realtime_executor
    if _realtime_executor is None:
        _realtime_executor = ThreadPoolExecutor(
            max_workers=settings.OCPP_REALTIME_AUTHORIZATION_THREADS, thread_name_prefix="ocpp-realtime"
        )
    future = asyncio.get_running_loop().run_in_executor(_realtime_executor, check.ask)
    try:
        answer = await asyncio.wait_for(future, check.timeout)
    except TimeoutError:
        logger.warning("real-time authorization: no answer within %ss", check.timeout)
        answer = None
    except Exception:
        logger.exception("real-time authorization failed")
        answer = None
    return check.decide(answer)


def id_tag_authorize(request: AuthorizationRequest) -> AuthorizationResult:
    """The whole decision in the caller's thread, real-time checks included (not for the charger's reply path: the
    gateway runs `id_tag_authorize_step` on a database thread and the check on the event loop)."""
    step = id_tag_authorize_step(request)
    return realtime_check_run(step) if isinstance(step, RealtimeCheck) else step
