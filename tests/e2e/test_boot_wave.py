"""End to end: a wave of chargers booting at once (after a gateway restart or a network blip) is checked as a wave.
Each accepted boot asks the station for its configuration (first boot) and its local list version; one task per
boot and check filled the bulk queue for tens of minutes at 10,000 chargers (bench/RESULTS.md). Real PostgreSQL,
Redis, daphne and a Celery worker."""

import asyncio
import contextlib
import re

import pytest
from ocpp.v16 import call as call16

from cpo.models import Token
from ocpp_gateway.models import LocalAuthList, StationVariable
from tests.ocpp_gateway.chargers import connected
from tests.ocpp_gateway.local_list_chargers import ListCharger16
from tests.support import await_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

WAVE = 40


def test_a_wave_of_booting_chargers_gets_configuration_read_and_local_lists_in_a_few_tasks(
    daphne, worker, station_factory
):
    Token.objects.create(uid="FLEET-CARD-1", contract_id="NL-CPO-C00000001-X")
    stations = [station_factory(f"WAVE-{n:02}", evses=1) for n in range(WAVE)]
    chargers: list[ListCharger16] = []

    async def wave():
        async with contextlib.AsyncExitStack() as stack:
            for station, secret in stations:
                cp = await stack.enter_async_context(
                    connected(daphne.ocpp_url(station.identity), station.identity, secret, cls=ListCharger16)
                )
                chargers.append(cp)
            boots = [
                cp.call(call16.BootNotification(charge_point_model="AC-22", charge_point_vendor="ACME"))
                for cp in chargers
            ]
            answers = await asyncio.gather(*boots)
            assert {a.status for a in answers} == {"Accepted"}
            await await_until(
                lambda: (
                    all(cp.local_list.entries == {"FLEET-CARD-1": "Accepted"} for cp in chargers)
                    and LocalAuthList.objects.filter(version=1).count() == WAVE
                ),  # recorded once the charger accepted
                timeout=90,
            )

    asyncio.run(wave())

    assert StationVariable.objects.filter(variable="HeartbeatInterval").count() == WAVE  # every configuration read
    assert all(cp.version_asked == 1 for cp in chargers)  # every list version asked once
    received = re.findall(r"Task ocpp_gateway\.tasks\.(\w+)\[", worker.log())
    boot_tasks = [name for name in received if name == "stations_boot_checks_task"]
    assert 1 <= len(boot_tasks) <= WAVE // 4, received  # batched: one task per boot and check would be 80
