"""Per-charger limits that keep one charger from degrading the others (docs/architecture.md, "Limits").

The frame rate limiter is a token bucket per connection. A frame beyond it is refused without touching the database
(a CALL gets CALLERROR GenericError). Refusals have a budget of their own, at the same rate: beyond it the consumer
pauses before the next refusal, so its queue fills, the server stops reading the socket (cpo.server) and the
charger's frames wait in its own TCP buffers instead of our CPU. A charger refused without a pause for
OCPP_FLOOD_CLOSE_SECONDS is flooding: it is closed with 1008 (policy violation).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from ocpp.exceptions import GenericError

# Refusals further apart than this end a flood.
FLOOD_GAP_SECONDS = 1.0


@dataclass(frozen=True)
class FrameCheck:
    admitted: bool
    pause: float = 0.0  # seconds to wait before answering a refused frame
    flooding: bool = False  # refused without a pause for the flood period: close the connection


ADMITTED = FrameCheck(admitted=True)


class FrameRateLimiter:
    """`burst` frames at once, `rate` frames per second on average; see the module docstring."""

    def __init__(
        self, *, rate: float, burst: int, flood_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.flood_seconds = flood_seconds
        self.clock = clock
        self.tokens = float(self.burst)
        self.refusals = float(self.burst)
        self.updated = clock()
        self.flood_started: float | None = None
        self.last_refused: float | None = None
        self.refused = 0  # frames refused on this connection

    def check(self) -> FrameCheck:
        """Take a token for one frame from the charger."""
        now = self.clock()
        refill = (now - self.updated) * self.rate
        self.updated = now
        self.tokens = min(self.burst, self.tokens + refill)
        self.refusals = min(self.burst, self.refusals + refill)
        if self.tokens >= 1:
            self.tokens -= 1
            return ADMITTED
        self.refused += 1
        if self.last_refused is None or now - self.last_refused > FLOOD_GAP_SECONDS:
            self.flood_started = now
        self.last_refused = now
        assert self.flood_started is not None
        if now - self.flood_started >= self.flood_seconds:
            return FrameCheck(admitted=False, flooding=True)
        self.refusals -= 1
        return FrameCheck(admitted=False, pause=-self.refusals / self.rate if self.refusals < 0 else 0.0)

    def flood_duration(self) -> float:
        """Seconds the current flood has lasted (0 when none)."""
        if self.flood_started is None or self.last_refused is None:
            return 0.0
        return self.last_refused - self.flood_started


def rate_limit_error(rate: float) -> GenericError:
    """The CALLERROR for a CALL over the rate: GenericError, the code OCPP-J 1.6 and 2.0.1 both have for an error no
    other code covers (neither has one for "too many requests"), with a description a person reading the charger's
    log understands."""
    return GenericError(
        description=f"Rate limit: more than {rate:g} frames per second from this charger; send again later",
        details={"cause": "rate limit"},
    )
