"""The gateway's Prometheus metrics, kept per process (each daphne process serves its own on /metrics, cpo/metrics.py).

Updated in the hot path only by what costs a few hundred nanoseconds: a gauge step per connection, a histogram
observation per CALL, a counter per refused handshake. Labels are bounded: an action the handler does not know is
counted as "other", so a charger cannot grow the label set."""

from prometheus_client import Counter, Gauge, Histogram

chargers_connected = Gauge("ocpp_chargers_connected", "Chargers with an open websocket on this process")
call_duration = Histogram(
    "ocpp_call_duration_seconds",
    "Time from a charger's CALL arriving to our answer being sent, by action",
    ["action"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
handshake_failures = Counter(
    "ocpp_handshake_failures", "Charger handshakes this process refused, by reason", ["reason"]
)
boots_pending = Counter(
    "ocpp_boots_pending", "BootNotifications this process answered Pending while handshakes waited (a reconnect storm)"
)
OTHER_ACTION = "other"


_call_duration_by_action: dict[str, Histogram] = {}  # labels() takes a lock and builds a key: once per action


def call_observe(*, action: str, known_actions, seconds: float) -> None:
    label = action if action in known_actions else OTHER_ACTION
    histogram = _call_duration_by_action.get(label)
    if histogram is None:
        histogram = _call_duration_by_action[label] = call_duration.labels(label)
    histogram.observe(seconds)


def handshake_failed(*, reason: str) -> None:
    handshake_failures.labels(reason or "unknown").inc()
