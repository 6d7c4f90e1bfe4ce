"""`manage.py ocpp_call` (commands that reach chargers in other processes: tests/ocpp_gateway/test_commands.py)."""

import time

import pytest
from django.core.management import CommandError, call_command


@pytest.mark.django_db
def test_without_redis_it_says_at_once_that_the_in_memory_layer_cannot_reach_the_charger(settings, station_factory):
    """The in-memory channel layer does not cross processes: waiting for the charger's answer could only time out
    and blame the charger."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    station_factory("CP-CALL-NO-REDIS")
    started = time.monotonic()
    with pytest.raises(CommandError, match="without REDIS_URL .* in-memory: it does not cross processes"):
        call_command("ocpp_call", "CP-CALL-NO-REDIS", "Reset", '{"type": "Soft"}', "--timeout", "30")
    assert time.monotonic() - started < 5
