"""Every frame in and out, kept in batches (see batching.py)."""

import json

from django.conf import settings
from django.utils import timezone

from ocpp_gateway import services
from ocpp_gateway.batching import BatchWriter

writer = BatchWriter(
    "message log",
    lambda entries: services.message_log_write(entries=entries),
    interval=lambda: settings.OCPP_MESSAGE_LOG_FLUSH_SECONDS,
)


def frame_summary(raw: str) -> tuple[int | None, str, str]:
    """(message type, unique id, action) of a frame, as far as it can be read."""
    try:
        frame = json.loads(raw)
    except ValueError:
        return None, "", ""
    if not isinstance(frame, list) or len(frame) < 2:
        return None, "", ""
    message_type = frame[0] if isinstance(frame[0], int) and frame[0] in (2, 3, 4) else None
    unique_id = str(frame[1])[:64]
    action = frame[2][:64] if message_type == 2 and len(frame) > 2 and isinstance(frame[2], str) else ""
    return message_type, unique_id, action


def record(consumer, direction: str, raw: str) -> None:
    """Queue one frame of `consumer`'s connection; answers inherit the action of the CALL they answer."""
    if not settings.OCPP_MESSAGE_LOG_ENABLED:
        return
    message_type, unique_id, action = frame_summary(raw)
    calls = consumer.__dict__.setdefault("_log_calls", {})
    if message_type == 2:
        calls[(direction, unique_id)] = action
        if len(calls) > 100:
            calls.pop(next(iter(calls)))
    elif message_type in (3, 4):
        action = calls.pop(("OUT" if direction == "IN" else "IN", unique_id), "")
    writer.add(
        dict(
            station_id=consumer.station_pk,
            identity=consumer.identity[:48],
            direction=direction,
            message_type=message_type,
            unique_id=unique_id,
            action=action,
            payload=raw,
            created_at=timezone.now(),
        )
    )
