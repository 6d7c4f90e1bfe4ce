"""Payloads are checked against the official schemas without patching the `ocpp` library: the compiled fast path,
and the library's public `validate_payload` for the error code the specification names."""

import asyncio
import threading

import ocpp.charge_point
import ocpp.messages
import pytest
from ocpp.exceptions import FormatViolationError, ProtocolError, TypeConstraintViolationError
from ocpp.messages import Call, CallResult

from ocpp_gateway import event_loop
from ocpp_gateway.handlers import HANDLERS
from ocpp_gateway.handlers.validation import payload_validate


def test_the_ocpp_library_is_used_as_shipped():
    """Nothing of the library is replaced at import (it was: validate_payload and ASYNC_VALIDATION)."""
    assert HANDLERS  # the gateway's handlers are imported
    assert ocpp.charge_point.validate_payload is ocpp.messages.validate_payload
    assert ocpp.messages.ASYNC_VALIDATION is True


@pytest.mark.parametrize(
    "message,version,error",
    [
        (Call("1", "Authorize", {}), "1.6", ProtocolError),
        (Call("1", "Heartbeat", {"surprise": True}), "2.0.1", FormatViolationError),
        (
            Call(
                "1",
                "StartTransaction",
                {"connectorId": "one", "idTag": "X", "meterStart": 0, "timestamp": "2026-11-22T10:00:00Z"},
            ),
            "1.6",
            TypeConstraintViolationError,
        ),
        (CallResult("1", {"status": "Maybe"}, "Reset"), "1.6", FormatViolationError),
    ],
)
def test_a_payload_that_does_not_fit_raises_the_error_the_spec_names(message, version, error):
    with pytest.raises(error):
        asyncio.run(payload_validate(message, version))


def test_a_fitting_payload_passes():
    asyncio.run(payload_validate(Call("1", "Heartbeat", {}), "1.6"))
    asyncio.run(payload_validate(CallResult("1", {"status": "Accepted"}, "Reset"), "2.0.1"))


def test_each_version_routes_its_calls_to_its_handlers():
    assert HANDLERS["ocpp1.6"].call_handlers["StartTransaction"] == "on_start_transaction"
    assert "StartTransaction" not in HANDLERS["ocpp2.0.1"].call_handlers
    assert HANDLERS["ocpp2.1"].call_handlers["TransactionEvent"] == "on_transaction_event"  # inherited


def test_threads_of_the_asgi_server_find_its_event_loop():
    """The server's loop, as asyncio gives it to the application, for threads that hand work back to it."""
    seen = {}

    async def app(scope, receive, send):
        seen["from a thread"] = await asyncio.to_thread(event_loop.server_loop)
        seen["running"] = asyncio.get_running_loop()

    asyncio.run(event_loop.server_loop_remember(app)({"type": "http"}, None, None))
    assert seen["from a thread"] is seen["running"]
    assert event_loop.server_loop() is None  # that loop has stopped
    other = {}
    thread = threading.Thread(target=lambda: other.setdefault("loop", event_loop.server_loop()))
    thread.start()
    thread.join()
    assert other["loop"] is None
