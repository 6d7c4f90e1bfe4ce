"""A wave of boots (a gateway restart: thousands of chargers within a minute) is checked in tasks that give their
worker process back after OCPP_BOOT_CHECKS_TASK_SECONDS: each check waits for a charger, and a task holding a process
for the whole wave kept billing's urgent tasks (CDRs) waiting for minutes in the 50 stops/s benchmark."""

import pytest

from ocpp_gateway.tasks import stations_boot_checks

pytestmark = pytest.mark.django_db(transaction=True)  # the checks run on worker threads with connections of their own


@pytest.fixture
def booted(station_factory, settings):
    settings.WORKER_THREADS = 2
    return [station_factory(f"BOOT-{n}", evses=1)[0].pk for n in range(5)]


def test_a_boot_checks_task_out_of_time_checks_one_round_of_stations_and_leaves_the_rest(booted):
    results, rest = stations_boot_checks(booted, budget_seconds=0)
    assert [pk for pk, _ in results] == booted[:2] and rest == booted[2:]


def test_a_boot_checks_task_with_time_checks_every_station(booted):
    results, rest = stations_boot_checks(booted, budget_seconds=60)
    assert [pk for pk, _ in results] == booted and rest == []
