"""Per-charger limits as plain functions: JSON depth without parsing, the frame rate limiter."""

import json

import pytest

from ocpp_gateway.handlers.base import json_depth_exceeds


@pytest.mark.parametrize(
    "text,depth",
    [
        ('[2,"a","Heartbeat",{}]', 2),
        ('[2,"a","DataTransfer",{"vendorId":"x","data":"' + "[" * 500 + '"}]', 2),  # brackets in a string
        ('[2,"a\\"[[[[","DataTransfer",{"data":"\\\\"}]', 2),  # escaped quotes and backslashes
        ("[" * 64 + "]" * 64, 64),
        ("[" * 65 + "]" * 65, 65),
        ('{"a":' * 70 + "1" + "}" * 70, 70),
    ],
)
def test_json_depth_is_measured_outside_strings(text, depth):
    json.loads(text)  # every case is valid JSON
    assert not json_depth_exceeds(text, depth)
    assert json_depth_exceeds(text, depth - 1)
