"""Every frame in and out, kept in batches (see batching.py)."""

import re

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


def record(consumer, direction: str, raw: str) -> None:
    """Queue one frame of `consumer`'s connection; answers inherit the action of the CALL they answer."""
    entry = log_entry(consumer, direction, raw)
    if entry is not None:
        writer.add(entry)


def log_entry(consumer, direction: str, raw: str) -> dict | None:
    """One frame's log row, stamped now, for queueing later with `writer.add` (a frame from the charger is queued once
    handled, flagged when its clock was off); None when the log is off."""
    if not settings.OCPP_MESSAGE_LOG_ENABLED:
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
