"""Per-charger limits as plain functions: JSON depth without parsing, the frame rate limiter."""

import json

import pytest

from ocpp_gateway.handlers.base import json_depth_exceeds
from ocpp_gateway.limits import FrameRateLimiter


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


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_burst_is_admitted_then_frames_at_the_rate():
    clock = Clock()
    limiter = FrameRateLimiter(rate=10, burst=5, flood_seconds=10, clock=clock)
    assert [limiter.check().admitted for _ in range(6)] == [True] * 5 + [False]
    clock.now += 0.1  # one token
    assert limiter.check().admitted and not limiter.check().admitted


def test_refusals_beyond_their_own_budget_pause_the_charger():
    """A flooder gets at most `rate` refusals per second answered at once; the next waits for the bucket."""
    clock = Clock()
    limiter = FrameRateLimiter(rate=10, burst=5, flood_seconds=10, clock=clock)
    checks = [limiter.check() for _ in range(12)]
    assert [c.pause for c in checks[5:10]] == [0.0] * 5
    assert checks[10].pause == pytest.approx(0.1) and checks[11].pause == pytest.approx(0.2)


def test_refusals_without_a_pause_for_the_flood_period_are_flooding():
    clock = Clock()
    limiter = FrameRateLimiter(rate=10, burst=5, flood_seconds=3, clock=clock)
    flooding = []
    for _ in range(400):  # 100 frames a second for 4 seconds
        flooding.append(limiter.check().flooding)
        clock.now += 0.01
    assert not any(flooding[:300]) and flooding[310]


def test_a_charger_that_pauses_between_bursts_is_not_flooding():
    clock = Clock()
    limiter = FrameRateLimiter(rate=10, burst=5, flood_seconds=3, clock=clock)
    for _ in range(10):
        assert not any(limiter.check().flooding for _ in range(20))
        clock.now += 1.5
