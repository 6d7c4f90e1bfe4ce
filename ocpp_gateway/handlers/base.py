"""What all OCPP versions share: framing, routing a CALL to its handler, the registration gate, error codes, and
CSMS-initiated calls.

Built on the `ocpp` library's public parts only: its message classes and exceptions, its payload dataclasses and
key-case helpers, and its schemas (handlers.validation). The library's ChargePoint is not used: we route, answer
and call ourselves, so nothing of the library is patched or reached into.
"""

import asyncio
import functools
import inspect
import json
import logging
import re
import types
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import (
    FormatViolationError,
    InternalError,
    NotImplementedError,
    NotSupportedError,
    OCPPError,
    PropertyConstraintViolationError,
    SecurityError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call, CallError, CallResult, MessageType

from ocpp_gateway import metrics
from ocpp_gateway.authorization import RealtimeCheck, realtime_check_run_async
from ocpp_gateway.handlers.validation import payload_validate
from ocpp_gateway.limits import boot_pending_interval
from ocpp_gateway.requests import CertificateSigned
from ocpp_gateway.selectors import station_registration_status
from ocpp_gateway.services.certificates import (
    CertificateAuthorityError,
    station_certificate_answered,
    station_certificate_sign,
)
from ocpp_gateway.services.clock import charger_time_check

logger = logging.getLogger(__name__)

# Messages a station may send before it is Accepted (the rest get a CALLERROR SecurityError).
ALLOWED_BEFORE_ACCEPTED = {"BootNotification", "Heartbeat"}


_db_executor: ThreadPoolExecutor | None = None
_db_wrappers: dict = {}


def db(func):
    """Run a synchronous service from the consumer's event loop (one wrapper, see STYLE.md rule 6).

    Services run on a pool of OCPP_DB_THREADS threads (each with its own database connection), not Channels'
    single shared thread: with thousands of chargers that one thread is the ceiling (bench/RESULTS.md). Each
    charger's frames are still handled one at a time, so its own messages keep their order. The wrapper of a plain
    function is built once and reused: building it on every call was the gateway's top function (bench/RESULTS.md).
    """
    global _db_executor
    wrapper = _db_wrappers.get(func)
    if wrapper is None:
        if _db_executor is None:
            _db_executor = ThreadPoolExecutor(max_workers=settings.OCPP_DB_THREADS, thread_name_prefix="ocpp-db")
        wrapper = database_sync_to_async(_reconnecting(func), thread_sensitive=False, executor=_db_executor)
        if isinstance(func, types.FunctionType) and len(_db_wrappers) < 1024:  # services: module functions
            _db_wrappers[func] = wrapper
    return wrapper


def _reconnecting(func):
    """`func`, run once more on a new connection when the thread's kept connection (CONN_MAX_AGE) turns out dead.

    After a database restart each database thread holds a connection that looks fine until used; Django closes it
    only after an error, so the first frame each thread carried failed (CALLERROR InternalError), and chargers retry
    transaction messages only. Running the service again is what the charger's retransmission would do, and services
    are idempotent to retransmissions (natural keys, STYLE.md rule 7). A new connection that fails (the database is
    still away) raises as before, in milliseconds."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        kept = connection.connection is not None
        try:
            return func(*args, **kwargs)
        except (OperationalError, InterfaceError):
            if not kept or connection.in_atomic_block:
                raise
            logger.warning(
                "database connection found dead; running %s again on a new one", getattr(func, "__name__", func)
            )
            connection.close()
            return func(*args, **kwargs)

    return run


def db_authorizing(func):
    """`db(func)` for a service that may need a real-time authorization before it writes: the service returns the
    authorizer's RealtimeCheck instead, the check runs from the event loop on a pool of its own (never on a database
    thread), and the service is called again with the result as `auth`."""
    in_db = db(func)

    async def run(**kwargs):
        result = await in_db(**kwargs)
        if isinstance(result, RealtimeCheck):
            result = await in_db(**kwargs, auth=await realtime_check_run_async(result))
        return result

    return run


def utc_now_iso() -> str:
    """Now in UTC, to the millisecond, with Z (what chargers parse most reliably)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def parse_ocpp_datetime(value: str | None, *, field: str = "timestamp") -> datetime:
    """OCPP timestamps are RFC 3339; a missing offset is read as UTC (many chargers omit it)."""
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise TypeConstraintViolationError(details={"cause": f"{field} is not an RFC 3339 date-time: {value!r}"})
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@functools.lru_cache(maxsize=4096)
def _snake_key(key: str) -> str:
    return next(iter(camel_to_snake_case({key: None})))


@functools.lru_cache(maxsize=4096)
def _camel_key(key: str) -> str:
    return next(iter(snake_to_camel_case({key: None})))


def keys_to_snake_case(data):
    """The `ocpp` library's camel_to_snake_case, with each key converted once per process: its two regular
    expressions per key of every frame were 5-10 % of the gateway's CPU (bench/RESULTS.md). The keys of a version
    are a small fixed set (bounded cache: a charger's made-up keys cannot grow it without end)."""
    if isinstance(data, dict):
        return {_snake_key(key): keys_to_snake_case(value) for key, value in data.items()}
    if isinstance(data, list):
        return [keys_to_snake_case(value) for value in data]
    return data


def keys_to_camel_case(data):
    """The `ocpp` library's snake_to_camel_case, with each key converted once per process."""
    if isinstance(data, dict):
        return {_camel_key(key): keys_to_camel_case(value) for key, value in data.items()}
    if isinstance(data, list):
        return [keys_to_camel_case(value) for value in data]
    return data


def on(action: str):
    """Mark a method as the handler of the CALL `action` (e.g. `Action.boot_notification`). It gets the payload's
    fields as snake_case keyword arguments (keep **kwargs: new optional fields must not break it) and returns the
    version's call_result dataclass."""

    def mark(method):
        method.ocpp_action = str(action.value if hasattr(action, "value") else action)
        return method

    return mark


class MessageTypeNotSupportedError(OCPPError):
    """OCPP-J 2.0.1 §4.3: a MessageTypeId this implementation does not support."""

    code = "MessageTypeNotSupported"
    default_description = "A message with a Message Type Number received that is not supported"


class RpcFrameworkError(OCPPError):
    """OCPP-J 2.0.1 §4.3: not a valid RPC request, e.g. the MessageId could not be read."""

    code = "RpcFrameworkError"
    default_description = "Content of the call is not a valid RPC Request"


class FrameError(Exception):
    """A frame that is not a valid OCPP-J message: answered with a CALLERROR built by the handler's version."""

    def __init__(self, unique_id: str, error: OCPPError):
        super().__init__(error.description)
        self.unique_id = unique_id
        self.error = error


# A JSON string literal, and the brackets that open or close a level (read outside strings only).
JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
JSON_BRACKETS = re.compile(r"[][{}]")
# The MessageId of a frame, read without parsing it: a frame too deep to parse is still answered with its id.
FRAME_ID = re.compile(r'\[\s*[234]\s*,\s*"((?:[^"\\]|\\.){1,36})"')


def json_depth_exceeds(raw: str, limit: int) -> bool:
    """Whether the JSON text `raw` nests arrays and objects deeper than `limit`, found without parsing it (Python's
    parser fails with RecursionError at about 1,000 levels, and whatever walks a parsed value recursively before).
    Cheap for ordinary frames: only a frame with more than `limit` brackets in all is scanned."""
    if raw.count("[") + raw.count("{") <= limit:
        return False
    depth = 0
    for bracket in JSON_BRACKETS.findall(JSON_STRING.sub("", raw)):
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False


class GatewayChargePoint:
    """Our side of one charger's connection. The consumer feeds it frames with `route_frame`; replies go out through
    `send`. `call_action()` (CSMS -> charger) runs in its own task, never in the dispatch path. Subclasses name their
    version, its request and result dataclass modules, and mark handlers with `@on`."""

    ocpp_version = ""
    ocpp_subprotocol = ""
    call_module = None  # e.g. ocpp.v16.call: the requests of this version
    result_module: Any = None  # e.g. ocpp.v16.call_result: the answers of this version
    call_handlers: ClassVar[dict[str, str]] = {}  # action -> method name, collected from @on

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.call_handlers = {
            method.ocpp_action: name
            for name, method in inspect.getmembers(cls, inspect.isfunction)
            if hasattr(method, "ocpp_action")
        }

    def __init__(
        self,
        identity: str,
        *,
        send,
        station_pk: int,
        registration_status: str,
        response_timeout: float,
        registered_at: datetime | None = None,
    ):
        self.identity = identity
        self.send = send
        self.station_pk = station_pk
        self.registration_status = registration_status
        self.response_timeout = response_timeout
        self.registered_at = registered_at  # the station's creation: charger times long before it are not believed
        self.received_at = timezone.now()  # of the frame being handled
        self.frame_clock_skew: timedelta | None = None  # the largest skew among the frame's unbelieved timestamps
        self.call_lock = asyncio.Lock()  # OCPP-J: one CALL of ours outstanding at a time
        self.pending: dict[str, asyncio.Future] = {}
        self.deferred: list[Coroutine] = []  # to start once the CALL being handled is answered
        self.background: set[asyncio.Task] = set()
        self.unmatched_answers = 0  # answers to no call of ours, dropped
        self.known_transactions: dict[str, int] = {}  # transactionId -> pk, services.meter_values_receive's memo

    # -- errors, per version -------------------------------------------------------------------------------------
    def error_code(self, error: OCPPError) -> str:
        """The error code as this version spells it."""
        return error.code

    def call_error(self, unique_id: str, error: OCPPError) -> str:
        details = error.details if isinstance(error.details, dict) else {}
        details = {k: v for k, v in details.items() if k != "ocpp_message"}
        return json.dumps(
            [MessageType.CallError, unique_id, self.error_code(error), error.description or "", details],
            separators=(",", ":"),
            default=str,
        )

    def unsupported_message_type(self, unique_id: str, message_type) -> OCPPError:
        return PropertyConstraintViolationError(details={"cause": f"MessageTypeId {message_type!r} isn't valid"})

    def unknown_action(self, action: str) -> OCPPError:
        """OCPP-J 1.6 section 4.2.3 (and 2.0.1's RPC framework): NotSupported for an action of this version that we
        recognise but do not handle, NotImplemented for one the version does not know."""
        if isinstance(getattr(self.result_module, action, None), type):
            return NotSupportedError(details={"cause": f"{action} is not supported by this CSMS"})
        return NotImplementedError(details={"cause": f"{action} is not an OCPP {self.ocpp_version} action"})

    def rpc_error(self, cause: str) -> OCPPError:
        """A frame that is not an OCPP-J RPC message at all (1.6 has no better code than FormationViolation)."""
        return FormatViolationError(details={"cause": cause})

    # -- the charger's clock ---------------------------------------------------------------------------------------
    def charger_time(self, value: str | None, *, field: str = "timestamp") -> datetime:
        """A timestamp of the frame being handled, parsed and checked against our clock (services.clock): the
        charger's time when it is believed, else the time we received the frame, and the frame is flagged. Every
        handler reads every timestamp it records through here."""
        checked = charger_time_check(
            sent=parse_ocpp_datetime(value, field=field), received=self.received_at, registered_at=self.registered_at
        )
        if checked.skew is not None and (
            self.frame_clock_skew is None or abs(checked.skew) > abs(self.frame_clock_skew)
        ):
            self.frame_clock_skew = checked.skew
        return checked.at

    # -- framing ---------------------------------------------------------------------------------------------------
    def unpack(self, raw: str) -> Call | CallResult | CallError:
        """Parse a frame, raising FrameError with the unique id when it can be read ("-1" otherwise)."""
        limit = settings.OCPP_MAX_JSON_DEPTH
        if json_depth_exceeds(raw, limit):
            head = FRAME_ID.match(raw)
            cause = f"JSON nested deeper than {limit} levels"
            raise FrameError(head.group(1) if head else "-1", FormatViolationError(details={"cause": cause}))
        try:
            frame = json.loads(raw)
        except (ValueError, RecursionError):
            raise FrameError("-1", self.rpc_error("Message is not valid JSON")) from None
        if not isinstance(frame, list) or len(frame) < 3:
            raise FrameError("-1", self.rpc_error("Message is not a JSON array [MessageTypeId, MessageId, ...]"))
        message_type, unique_id = frame[0], frame[1]
        if not isinstance(unique_id, str) or not unique_id or len(unique_id) > 36:
            raise FrameError("-1", self.rpc_error("MessageId is not a string of 1 to 36 characters"))
        if message_type == MessageType.Call:
            if len(frame) != 4 or not isinstance(frame[2], str) or not isinstance(frame[3], dict):
                raise FrameError(
                    unique_id, FormatViolationError(details={"cause": "CALL is [2, id, action, {payload}]"})
                )
            return Call(unique_id, frame[2], frame[3])
        if message_type == MessageType.CallResult:
            return CallResult(unique_id, frame[2] if isinstance(frame[2], dict) else {})
        if message_type == MessageType.CallError:
            return CallError(unique_id, *(list(frame[2:5]) + [None] * (3 - len(frame[2:5]))))
        raise FrameError(unique_id, self.unsupported_message_type(unique_id, message_type))

    # -- CALLs from the charger ------------------------------------------------------------------------------------
    async def route_frame(self, msg) -> None:
        """Answer a CALL, or hand a CALLRESULT/CALLERROR to the waiting `call_action()`."""
        self.received_at, self.frame_clock_skew = timezone.now(), None
        if msg.message_type_id != MessageType.Call:
            waiting = self.pending.get(msg.unique_id)
            if waiting is None or waiting.done():
                self.unmatched_answer_drop(msg.unique_id)
            else:
                waiting.set_result(msg)
            return
        try:
            await self.check_registration(msg.action)
            handler = self.call_handlers.get(msg.action)
            if handler is None:
                raise self.unknown_action(msg.action)
            await payload_validate(msg, self.ocpp_version)
            await self.send(await self.answer(msg, getattr(self, handler)))
        except OCPPError as error:
            self.deferred_drop()
            await self.send(self.call_error(msg.unique_id, error))
        else:
            self.deferred_start()

    def awaits_answer(self, unique_id: str) -> bool:
        """Whether a call of ours with this MessageId waits for the charger's answer."""
        waiting = self.pending.get(unique_id)
        return waiting is not None and not waiting.done()

    def unmatched_answer_drop(self, unique_id: str) -> None:
        """A CALLRESULT/CALLERROR that answers no call of ours (late, repeated, or unsolicited) is dropped, never
        kept; the first of a connection is logged, the rest only counted (a charger may send thousands)."""
        self.unmatched_answers += 1
        if self.unmatched_answers == 1:
            logger.warning(
                "%s: dropping an answer to no call of ours (%s); further ones on this connection are only counted",
                self.identity,
                unique_id[:36],
            )

    # -- work after an answer --------------------------------------------------------------------------------------
    def after_reply(self, coroutine: Coroutine) -> None:
        """Run `coroutine` (typically a call of ours the answer announced, e.g. CertificateSigned after
        SignCertificate Accepted) as a task of this connection once the CALL being handled is answered: never in the
        dispatch path (STYLE.md rule 5), never before the answer. Dropped when the answer is a CALLERROR."""
        self.deferred.append(coroutine)

    def deferred_start(self) -> None:
        for coroutine in self.deferred:
            task = asyncio.create_task(coroutine)
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        self.deferred = []

    def deferred_drop(self) -> None:
        for coroutine in self.deferred:
            coroutine.close()
        self.deferred = []

    def background_cancel(self) -> None:
        """The connection closed: its background work ends with it (the station asks again when it is back)."""
        self.deferred_drop()
        for task in self.background:
            task.cancel()

    async def certificate_issue(self, *, csr: str, certificate_type: str = "") -> None:
        """Sign the station's CSR, send it CertificateSigned and record its answer (1.6 security extension, 2.0.1
        A02/A03). Runs after the SignCertificate answer (`after_reply`)."""
        try:
            signed = await db(station_certificate_sign)(
                station_pk=self.station_pk, csr=csr, certificate_type=certificate_type
            )
        except (CertificateAuthorityError, ValueError) as exc:
            logger.warning("%s: certificate not signed: %s", self.identity, exc)
            return
        except Exception:  # a task of the connection: log it here, nobody awaits it
            logger.exception("%s: error while signing a certificate", self.identity)
            return
        call = CertificateSigned(certificate_chain=signed.certificate_chain, certificate_type=certificate_type)
        action, payload = call.for_version(self.ocpp_version)
        try:
            answer = await self.call_action(action, payload)
        except TimeoutError:
            status, detail = "", "no answer to CertificateSigned in time"
        except (OCPPError, ValueError) as exc:
            status, detail = "", f"CertificateSigned failed: {exc!r}"[:255]
        else:
            status, detail = str(answer.get("status", "")), ""
        if status != "Accepted":
            logger.warning("%s: certificate not installed: %s", self.identity, detail or status)
        await db(station_certificate_answered)(certificate_pk=signed.certificate_pk, status=status, answer=detail)

    async def answer(self, msg: Call, handler) -> str:
        """The handler's answer to a valid CALL as a CALLRESULT frame (a CALLERROR when the handler refuses or
        fails). Raises OCPPError when our own answer does not fit the schema."""
        try:
            result = await handler(**keys_to_snake_case(msg.payload))
        except OCPPError as error:  # e.g. a timestamp that is not a date-time
            logger.info("%s: %s refused: %s %s", self.identity, msg.action, error.code, error.details)
            return self.call_error(msg.unique_id, error)
        except Exception:
            logger.exception("%s: error while handling %s", self.identity, msg.action)
            return self.call_error(msg.unique_id, InternalError(description="An unexpected error occurred."))
        response = msg.create_call_result(keys_to_camel_case(remove_nones(serialize_as_dict(result))))
        await payload_validate(response, self.ocpp_version)
        return response.to_json()

    def boot_pending(self):
        """The BootNotification answer Pending, with an interval after which the charger boots again, while handshakes
        of this process wait for their turn (a reconnect storm: ocpp_gateway.limits.HandshakeBacklog); None when the
        boot can be taken now. Nothing is written: the charger's next boot records it."""
        interval = boot_pending_interval()
        if interval is None:
            return None
        metrics.boots_pending.inc()
        return self.result_module.BootNotification(current_time=utc_now_iso(), interval=interval, status="Pending")

    async def check_registration(self, action: str) -> None:
        """Until staff accept a station, it may only boot and heartbeat (2.0.1 B02/B03; 1.6 Pending/Rejected)."""
        if self.registration_status == "Accepted" or action in ALLOWED_BEFORE_ACCEPTED:
            return
        self.registration_status = await db(station_registration_status)(station_pk=self.station_pk)
        if self.registration_status != "Accepted":
            raise SecurityError(details={"cause": f"station is {self.registration_status}, not Accepted"})

    # -- CSMS-initiated calls --------------------------------------------------------------------------------------
    async def call_action(self, action: str, payload: dict) -> dict:
        """Send `action` with a camelCase payload and return the charger's camelCase answer.

        Raises OCPPError for the charger's CALLERROR (or an answer that does not fit the schema), asyncio.TimeoutError
        when it does not answer, ValueError for an action this version does not have or a request that does not fit
        its schema (nothing is sent then).
        """
        if not isinstance(getattr(self.call_module, action, None), type):
            raise ValueError(f"OCPP {self.ocpp_version} has no action {action!r}")
        call = Call(str(uuid.uuid4()), action, remove_nones(payload))
        try:  # our own request must fit the schema before it goes out; a charger's CALLERROR is another matter
            await payload_validate(call, self.ocpp_version)
        except OCPPError as exc:
            cause = exc.details.get("cause", "") if isinstance(exc.details, dict) else ""
            raise ValueError(f"invalid {action} request: {cause or exc.description}") from exc
        async with self.call_lock:
            answer = asyncio.get_running_loop().create_future()
            self.pending[call.unique_id] = answer
            try:
                await self.send(call.to_json())
                response = await asyncio.wait_for(answer, self.response_timeout)
            finally:
                self.pending.pop(call.unique_id, None)
        if response.message_type_id == MessageType.CallError:
            raise response.to_exception()
        response.action = action
        await payload_validate(response, self.ocpp_version)
        return response.payload
