"""Every frame in and out, kept in batches (see batching.py), up to a volume per station: beyond
OCPP_MESSAGE_LOG_MAX_FRAMES frames in OCPP_MESSAGE_LOG_WINDOW_SECONDS, frames are left out and one row says how many
(a flooding charger wrote 92 MB of log in 15 s before)."""

import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from ocpp_gateway.batching import BatchWriter
from ocpp_gateway.redaction import redact_frame
from ocpp_gateway.services.message_log import message_log_write

writer = BatchWriter(
    "message log",
    lambda entries: message_log_write(entries=entries),
    interval=lambda: settings.OCPP_MESSAGE_LOG_FLUSH_SECONDS,
)


# The head of an OCPP-J frame: [type, "id"(, "action")...; read without parsing the payload (every frame passes).
FRAME_HEAD = re.compile(r'\[\s*([234])\s*,\s*"((?:[^"\\]|\\.){0,64})"\s*(?:,\s*"((?:[^"\\]|\\.){0,64})")?')


def frame_summary(raw: str) -> tuple[int | None, str, str]:
    """(message type, unique id, action) of a frame, as far as it can be read."""
    match = FRAME_HEAD.match(raw)
    if match is None:
        return None, "", ""
    message_type = int(match.group(1))
    action = (match.group(3) or "") if message_type == 2 else ""
    return message_type, match.group(2), action


@dataclass
class LogBudget:
    """One station's frames logged and left out in the current window (per process; a station's connection lives in
    one process)."""

    window_start: float
    logged: int = 0
    left_out: int = 0
    first_left_out: object = None  # datetime of the first frame left out in the window


budgets: dict[int, LogBudget] = {}


def budget_take(consumer) -> bool:
    """Whether one more frame of `consumer`'s station may be logged now; when not, it is counted as left out. The
    row counting the frames left out in a window is queued when the next window starts."""
    now = time.monotonic()
    budget = budgets.get(consumer.station_pk)
    if budget is None or now - budget.window_start >= settings.OCPP_MESSAGE_LOG_WINDOW_SECONDS:
        if budget is not None:
            left_out_record(consumer, budget)
        budget = budgets[consumer.station_pk] = LogBudget(window_start=now)
    if budget.logged < settings.OCPP_MESSAGE_LOG_MAX_FRAMES:
        budget.logged += 1
        return True
    left_out_count(consumer, 1)
    return False


def left_out_count(consumer, frames: int) -> None:
    """`frames` frames of `consumer`'s station not logged (over the volume limit, or refused by a limit)."""
    budget = budgets.get(consumer.station_pk)
    if budget is None:
        budget = budgets[consumer.station_pk] = LogBudget(window_start=time.monotonic())
    if not budget.left_out:
        budget.first_left_out = timezone.now()
    budget.left_out += frames


def station_closed(consumer) -> None:
    """The station's connection closed: queue the row counting what was left out, and forget its budget."""
    budget = budgets.pop(consumer.station_pk, None)
    if budget is not None:
        left_out_record(consumer, budget)


def left_out_record(consumer, budget: LogBudget) -> None:
    if not budget.left_out or not settings.OCPP_MESSAGE_LOG_ENABLED:
        return
    limit, window = settings.OCPP_MESSAGE_LOG_MAX_FRAMES, settings.OCPP_MESSAGE_LOG_WINDOW_SECONDS
    writer.add(
        dict(
            station_id=consumer.station_pk,
            identity=consumer.identity[:48],
            direction="IN",
            message_type=None,
            unique_id="",
            action="",
            payload=(
                f"{budget.left_out} frames not logged since {budget.first_left_out:%Y-%m-%d %H:%M:%S} UTC: over the "
                f"message log limit of {limit} frames per {window:g} s, or refused by a per-charger limit"
            ),
            created_at=timezone.now(),
            frames_left_out=budget.left_out,
        )
    )
    budget.left_out = 0


def record(consumer, direction: str, raw: str) -> None:
    """Queue one frame of `consumer`'s connection; answers inherit the action of the CALL they answer."""
    entry = log_entry(consumer, direction, raw)
    if entry is not None:
        writer.add(entry)


def log_entry(consumer, direction: str, raw: str) -> dict | None:
    """One frame's log row, stamped now, for queueing later with `writer.add` (a frame from the charger is queued once
    handled, flagged when its clock was off); None when the log is off."""
    if not settings.OCPP_MESSAGE_LOG_ENABLED or not budget_take(consumer):
        return None
    message_type, unique_id, action = frame_summary(raw)
    calls = consumer.__dict__.setdefault("_log_calls", {})
    if message_type == 2:
        calls[(direction, unique_id)] = action
        if len(calls) > 100:
            calls.pop(next(iter(calls)))
    elif message_type in (3, 4):
        action = calls.pop(("OUT" if direction == "IN" else "IN", unique_id), "")
    return dict(
        station_id=consumer.station_pk,
        identity=consumer.identity[:48],
        direction=direction,
        message_type=message_type,
        unique_id=unique_id,
        action=action,
        payload=redact_frame(raw),
        created_at=timezone.now(),
    )
