"""Frames a broken charger might send: each gets the CALLERROR the spec defines, and the connection lives on."""

import asyncio
import json

import pytest
import websockets

from ocpp_gateway.models import MessageLog
from tests.ocpp_gateway.chargers import basic_auth, raw_exchange
from tests.support import wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

HEARTBEAT = '[2,"hb-after","Heartbeat",{}]'


def exchange_all(url, identity, secret, subprotocol, frames):
    """Send each frame on one socket, collect the answers, then prove the socket still works with a Heartbeat."""

    async def run():
        async with websockets.connect(
            url, subprotocols=[subprotocol], additional_headers=basic_auth(identity, secret)
        ) as ws:
            answers = [await raw_exchange(ws, frame) for frame in frames]
            answers.append(await raw_exchange(ws, HEARTBEAT))
            return answers

    return asyncio.run(run())


@pytest.mark.parametrize(
    "subprotocol,format_code", [("ocpp1.6", "FormationViolation"), ("ocpp2.0.1", "FormatViolation")]
)
def test_each_broken_frame_gets_its_callerror_and_the_connection_lives_on(
    live_daphne, station_factory, subprotocol, format_code
):
    identity = "CP-BAD-" + subprotocol[-3:].replace(".", "")
    _, secret = station_factory(identity)
    v16 = subprotocol == "ocpp1.6"
    frames = {
        "invalid json": '[2,"a1","Heartbeat",{',
        "not an array": '{"hello": 1}',
        "wrong message type": '[7,"a2","Heartbeat",{}]',
        "unknown action": '[2,"a3","MakeCoffee",{}]',
        "known action we do not handle": '[2,"a9","Reset",{"type":"Soft"}]',
        "missing required field": '[2,"a4","Authorize",{}]' if v16 else '[2,"a4","Authorize",{}]',
        "wrong type": (
            '[2,"a5","StartTransaction",{"connectorId":"one","idTag":"X","meterStart":0,'
            '"timestamp":"2026-11-22T10:00:00Z"}]'
        )
        if v16
        else '[2,"a5","Heartbeat",{"customData":5}]',
        "unexpected property": '[2,"a6","Heartbeat",{"surprise":true}]',
        "oversized frame": '[2,"a7","DataTransfer",{"vendorId":"x","data":"' + "x" * 70000 + '"}]',
        "bad timestamp": (
            '[2,"a8","StartTransaction",{"connectorId":1,"idTag":"X","meterStart":0,"timestamp":"yesterday"}]'
        )
        if v16
        else '[2,"a8","StatusNotification",{"timestamp":"yesterday","connectorStatus":"Available",'
        '"evseId":1,"connectorId":1}]',
    }
    answers = dict(
        zip(
            list(frames) + ["heartbeat"],
            exchange_all(live_daphne.ocpp_url(identity), identity, secret, subprotocol, list(frames.values())),
            strict=False,
        )
    )

    def code(name):
        answer = answers[name]
        assert answer[0] == 4, f"{name}: expected a CALLERROR, got {answer}"
        return answer[1], answer[2]

    rpc_code = "FormationViolation" if v16 else "RpcFrameworkError"
    assert code("invalid json") == ("-1", rpc_code)
    assert code("not an array") == ("-1", rpc_code)
    assert code("wrong message type") == ("a2", "PropertyConstraintViolation" if v16 else "MessageTypeNotSupported")
    # OCPP-J 1.6 section 4.2.3 / 2.0.1 RPC framework: NotImplemented = "Requested Action is not known by receiver",
    # NotSupported = "Requested Action is recognized but not supported by the receiver".
    assert code("unknown action") == ("a3", "NotImplemented")
    assert code("known action we do not handle") == ("a9", "NotSupported")
    assert code("missing required field") == ("a4", "ProtocolError" if v16 else "OccurrenceConstraintViolation")
    assert code("wrong type") == ("a5", "TypeConstraintViolation")
    assert code("unexpected property") == ("a6", format_code)
    assert code("oversized frame")[1] == rpc_code
    assert code("bad timestamp") == ("a8", "TypeConstraintViolation")
    assert answers["heartbeat"][0] == 3 and answers["heartbeat"][1] == "hb-after"


def test_a_callerror_and_its_frame_are_kept_in_the_message_log(live_daphne, station_factory):
    _, secret = station_factory("CP-BAD-LOG")
    exchange_all(live_daphne.ocpp_url("CP-BAD-LOG"), "CP-BAD-LOG", secret, "ocpp1.6", ['[2,"z1","MakeCoffee",{}]'])
    wait_until(lambda: MessageLog.objects.filter(identity="CP-BAD-LOG", message_type=4, unique_id="z1").exists())
    entry = MessageLog.objects.get(identity="CP-BAD-LOG", message_type=4, unique_id="z1")
    assert entry.action == "MakeCoffee" and json.loads(entry.payload)[2] == "NotImplemented"


def test_a_frame_above_the_transport_limit_is_closed_with_1009_and_the_charger_reconnects(live_daphne, station_factory):
    """RFC 6455 close 1009 (message too big), never a dropped TCP connection (1006); the charger then reconnects.
    Below the transport limit but above OCPP_MAX_FRAME_BYTES the frame gets a CALLERROR instead (test above)."""
    _, secret = station_factory("CP-HUGE")
    url, headers = live_daphne.ocpp_url("CP-HUGE"), basic_auth("CP-HUGE", secret)
    huge = '[2,"big","DataTransfer",{"vendorId":"x","data":"' + "x" * 2_000_000 + '"}]'

    async def run():
        async with websockets.connect(url, subprotocols=["ocpp1.6"], additional_headers=headers, max_size=None) as ws:
            await ws.send(huge)
            await asyncio.wait_for(ws.wait_closed(), 10)
            closed_with = ws.close_code
        async with websockets.connect(url, subprotocols=["ocpp1.6"], additional_headers=headers) as ws:
            return closed_with, await raw_exchange(ws, HEARTBEAT)

    close_code, heartbeat = asyncio.run(run())
    assert close_code == 1009
    assert heartbeat[0] == 3


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


@pytest.mark.parametrize(
    "subprotocol,format_code", [("ocpp1.6", "FormationViolation"), ("ocpp2.0.1", "FormatViolation")]
)
def test_json_nested_too_deep_gets_a_format_callerror_and_the_connection_lives_on(
    live_daphne, station_factory, subprotocol, format_code
):
    """A frame nested deeper than OCPP_MAX_JSON_DEPTH (64) is a format violation answered with its MessageId, whether
    5,000 deep (Python's JSON parser gives up with a RecursionError there) or just over the limit, and also when it
    names a secret (the message log's redaction parses such frames)."""
    identity = "CP-DEEP-" + subprotocol[-3:].replace(".", "")
    _, secret = station_factory(identity)
    frames = [
        '[2,"d1","DataTransfer",{"vendorId":"x","data":' + nested(5000) + "}]",
        '[2,"d2","DataTransfer",{"vendorId":"x","data":' + nested(70) + "}]",
        '[2,"d3","DataTransfer",{"vendorId":"AuthorizationKey","data":' + nested(5000, '{"a":1}') + "}]",
        '[3,"d4",' + nested(5000) + "]",
    ]
    answers = exchange_all(live_daphne.ocpp_url(identity), identity, secret, subprotocol, frames)
    for unique_id, answer in zip(["d1", "d2", "d3", "d4"], answers, strict=False):
        assert answer[:3] == [4, unique_id, format_code], answer
        assert "nested deeper than 64" in answer[3] + json.dumps(answer[4]), answer
    assert answers[-1][:2] == [3, "hb-after"]
    assert "RecursionError" not in live_daphne.log()
