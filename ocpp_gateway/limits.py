"""Per-charger limits that keep one charger from degrading the others (docs/architecture.md, "Limits").

The frame rate limiter is a token bucket per connection. A frame beyond it is refused without touching the database
(a CALL gets CALLERROR GenericError). Refusals have a budget of their own, at the same rate: beyond it the consumer
pauses before the next refusal, so its queue fills, the server stops reading the socket (cpo.server) and the
charger's frames wait in its own TCP buffers instead of our CPU. A charger refused without a pause for
OCPP_FLOOD_CLOSE_SECONDS is flooding: it is closed with 1008 (policy violation).
"""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from django.conf import settings
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


def retry_after_seconds() -> int:
    """How long a charger we cannot take now should wait (a 503's Retry-After, a Pending BootNotification's interval):
    random between WEBSOCKET_RETRY_AFTER_MIN_SECONDS and _MAX_SECONDS, so that those sent away do not come back
    together."""
    return random.randint(settings.WEBSOCKET_RETRY_AFTER_MIN_SECONDS, settings.WEBSOCKET_RETRY_AFTER_MAX_SECONDS)


class HandshakeBacklog:
    """How many websocket handshakes of this process wait for their turn with the application (cpo.server counts
    them). While any wait, a reconnect storm is on and a BootNotification is answered Pending (`boot_pending_interval`):
    the process's time goes to the handshakes first, which have a deadline (the charger's connect timeout), and a
    charger told Pending sends nothing else until it boots again after the interval (OCPP 1.6 4.2, 2.0.1 B02)."""

    waiting: ClassVar[int] = 0


def boot_pending_interval() -> int | None:
    """The interval of a BootNotification answered Pending because handshakes wait, None when it can be accepted."""
    return retry_after_seconds() if HandshakeBacklog.waiting else None
