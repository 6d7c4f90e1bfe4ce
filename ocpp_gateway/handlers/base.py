"""What both OCPP versions share: framing errors, the registration gate, and CSMS-initiated calls."""

import functools
import json
from concurrent.futures import ThreadPoolExecutor
import logging
from datetime import UTC, datetime

import fastjsonschema
from channels.db import database_sync_to_async
from django.conf import settings
from django.utils.dateparse import parse_datetime
from ocpp.charge_point import ChargePoint, camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import (
    FormatViolationError,
    NotImplementedError,
    NotSupportedError,
    OCPPError,
    PropertyConstraintViolationError,
    SecurityError,
    TypeConstraintViolationError,
)
from ocpp import charge_point as ocpp_charge_point
from ocpp import messages as ocpp_messages
from ocpp.messages import Call, CallError, CallResult, MessageType

from ocpp_gateway import services

logger = logging.getLogger(__name__)

# Validate payloads on the event loop: a frame is at most OCPP_MAX_FRAME_BYTES and its validation takes less time
# than the library's default hop to a thread pool and back.
ocpp_messages.ASYNC_VALIDATION = False


@functools.lru_cache(maxsize=None)
def compiled_schema(message_type_id: int, action: str, ocpp_version: str):
    """The official schema the library would use for this message, compiled by fastjsonschema (~20x faster than
    the library's jsonschema validator); None when the version has no such message."""
    try:
        schema = ocpp_messages.get_validator(message_type_id, action, ocpp_version).schema
    except (OSError, ValueError):
        return None
    return fastjsonschema.compile(schema)


async def validate_payload_fast(message, ocpp_version: str) -> None:
    """The library's validate_payload with a compiled fast path. Only a payload the fast path refuses (or cannot
    judge) goes through the library's own validation, which then raises the error code the spec defines, or
    accepts it (the compiled validator also checks `format`, which the library's does not)."""
    validator = compiled_schema(message.message_type_id, message.action, ocpp_version)
    if validator is not None:
        try:
            validator(message.payload)
            return
        except fastjsonschema.JsonSchemaException:
            pass
    await library_validate_payload(message, ocpp_version)


library_validate_payload = ocpp_messages.validate_payload
ocpp_charge_point.validate_payload = validate_payload_fast

# Messages a station may send before it is Accepted (the rest get a CALLERROR SecurityError).
ALLOWED_BEFORE_ACCEPTED = {"BootNotification", "Heartbeat"}


_db_executor: ThreadPoolExecutor | None = None


def db(func):
    """Run a synchronous service from the consumer's event loop (one wrapper, see STYLE.md rule 6).

    Services run on a pool of OCPP_DB_THREADS threads (each with its own database connection), not Channels'
    single shared thread: with thousands of chargers that one thread is the ceiling (bench/RESULTS.md). Each
    charger's frames are still handled one at a time, so its own messages keep their order.
    """
    global _db_executor
    if _db_executor is None:
        _db_executor = ThreadPoolExecutor(max_workers=settings.OCPP_DB_THREADS, thread_name_prefix="ocpp-db")
    return database_sync_to_async(func, thread_sensitive=False, executor=_db_executor)


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


class GatewayChargePoint(ChargePoint):
    """Our side of one charger's connection. The consumer feeds it frames with `route_frame`; replies go out
    through `connection.send`. `call()` (CSMS -> charger) runs in its own task, never in the dispatch path."""

    ocpp_subprotocol = ""

    def __init__(self, identity: str, connection, *, station_pk: int, registration_status: str, response_timeout):
        super().__init__(identity, connection, response_timeout=response_timeout)
        self.station_pk = station_pk
        self.registration_status = registration_status

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
        """NotImplemented for an action of this version we have no handler for, NotSupported for one it lacks."""
        if hasattr(self._call_result, action):
            return NotImplementedError(details={"cause": f"no handler for {action}"})
        return NotSupportedError(details={"cause": f"{action} is not an OCPP {self._ocpp_version} action"})

    def rpc_error(self, cause: str) -> OCPPError:
        """A frame that is not an OCPP-J RPC message at all (1.6 has no better code than FormationViolation)."""
        return FormatViolationError(details={"cause": cause})

    # -- framing ---------------------------------------------------------------------------------------------------
    def unpack(self, raw: str) -> Call | CallResult | CallError:
        """Parse a frame, raising FrameError with the unique id when it can be read ("-1" otherwise)."""
        try:
            frame = json.loads(raw)
        except ValueError:
            raise FrameError("-1", self.rpc_error("Message is not valid JSON"))
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

    async def route_frame(self, msg) -> None:
        """Answer a CALL, or hand a CALLRESULT/CALLERROR to the waiting `call()`."""
        if msg.message_type_id != MessageType.Call:
            self._response_queue.put_nowait(msg)
            return
        try:
            await self.check_registration(msg.action)
            if msg.action not in self.route_map:
                raise self.unknown_action(msg.action)
            await self._handle_call(msg)
        except OCPPError as error:
            await self._send(self.call_error(msg.unique_id, error))

    async def check_registration(self, action: str) -> None:
        """Until staff accept a station, it may only boot and heartbeat (2.0.1 B02/B03; 1.6 Pending/Rejected)."""
        if self.registration_status == "Accepted" or action in ALLOWED_BEFORE_ACCEPTED:
            return
        self.registration_status = await db(services.station_registration_status)(station_pk=self.station_pk)
        if self.registration_status != "Accepted":
            raise SecurityError(details={"cause": f"station is {self.registration_status}, not Accepted"})

    # -- CSMS-initiated calls --------------------------------------------------------------------------------------
    async def call_action(self, action: str, payload: dict) -> dict:
        """Send `action` with a camelCase payload and return the charger's camelCase answer.

        Raises OCPPError for the charger's CALLERROR (or our own validation of the request), asyncio.TimeoutError
        when it does not answer, ValueError for an action this version does not have.
        """
        request_cls = getattr(self._call, action, None)
        if request_cls is None or not isinstance(request_cls, type):
            raise ValueError(f"OCPP {self._ocpp_version} has no action {action!r}")
        try:
            request = request_cls(**camel_to_snake_case(payload))
        except TypeError as exc:
            raise ValueError(f"bad fields for {action}: {exc}") from exc
        try:  # our own request must fit the schema before it goes out; a charger's CALLERROR is another matter
            camel = remove_nones(snake_to_camel_case(serialize_as_dict(request)))
            await validate_payload_fast(Call("check", action, camel), self._ocpp_version)
        except OCPPError as exc:
            cause = exc.details.get("cause", "") if isinstance(exc.details, dict) else ""
            raise ValueError(f"invalid {action} request: {cause or exc.description}") from exc
        response = await self.call(request, suppress=False)
        return snake_to_camel_case(remove_nones(serialize_as_dict(response)))
