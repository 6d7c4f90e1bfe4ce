"""Sockets live for days, channel-layer group members do not: channels forgets a member `group_expiry` seconds after
it joined (24 h by default). These tests shorten the expiry to two seconds (CHANNEL_GROUP_EXPIRY) and show that what
a charger or a browser connected "for more than a day" must still get reaches it."""

import asyncio
import json
import os
import time

import pytest
import websockets
from django.contrib.auth.models import Group, User
from django.test import Client

from ocpp_gateway.commands import command_send
from tests.ocpp_gateway.chargers import basic_auth, connected
from tests.support import in_thread, start_daphne, stop

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

GROUP_EXPIRY = 2


@pytest.fixture
def short_expiry_daphne(transactional_db):
    server = start_daphne("short-group-expiry", CHANNEL_GROUP_EXPIRY=str(GROUP_EXPIRY))
    yield server
    stop(server)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="commands across processes need REDIS_URL")
def test_commands_reach_a_charger_connected_for_longer_than_the_group_expiry(short_expiry_daphne, station_factory):
    _, secret = station_factory("CP-LONG-LIVED")
    _, secret201 = station_factory("CS-LONG-LIVED")
    server = short_expiry_daphne

    async def scenario():
        async with (
            connected(server.ocpp_url("CP-LONG-LIVED"), "CP-LONG-LIVED", secret) as cp16,
            connected(server.ocpp_url("CS-LONG-LIVED"), "CS-LONG-LIVED", secret201, version="2.0.1") as cp201,
        ):
            await asyncio.sleep(GROUP_EXPIRY + 1.5)  # "a day and a half" later
            reset = await in_thread(
                command_send, identity="CP-LONG-LIVED", action="Reset", payload={"type": "Soft"}, timeout=3
            )
            reset201 = await in_thread(
                command_send, identity="CS-LONG-LIVED", action="Reset", payload={"type": "Immediate"}, timeout=3
            )
            return reset, reset201, cp16.received, cp201.received

    reset, reset201, received16, received201 = asyncio.run(scenario())
    assert reset == {"status": "Accepted"} and ("Reset", {"type": "Soft"}) in received16
    assert reset201 == {"status": "Accepted"} and ("Reset", {"type": "Immediate"}) in received201


def test_a_connection_older_than_the_group_expiry_is_still_replaced_by_a_new_one(short_expiry_daphne, station_factory):
    _, secret = station_factory("CP-OLD-TWICE")
    url, headers = short_expiry_daphne.ocpp_url("CP-OLD-TWICE"), basic_auth("CP-OLD-TWICE", secret)

    async def run():
        async with websockets.connect(url, subprotocols=["ocpp1.6"], additional_headers=headers) as first:
            await asyncio.sleep(GROUP_EXPIRY + 1.5)
            async with websockets.connect(url, subprotocols=["ocpp1.6"], additional_headers=headers):
                await asyncio.wait_for(first.wait_closed(), 5)
                return first.close_code

    assert asyncio.run(run()) == 4000


def test_a_dashboard_open_for_longer_than_the_group_expiry_keeps_receiving_live_events(
    short_expiry_daphne, station_factory
):
    """A browser tab left open on the network overview: after the expiry it still sees a charger come online."""
    user = User.objects.create_user(username="watcher", password="x")
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    _, secret = station_factory("CP-WATCHED")
    server = short_expiry_daphne
    dashboard_url = f"ws://{server.host}:{server.port}/ws/dashboard/"

    async def scenario():
        headers = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{server.port}"}
        async with websockets.connect(dashboard_url, additional_headers=headers) as browser:
            await asyncio.sleep(GROUP_EXPIRY + 1.5)
            async with connected(server.ocpp_url("CP-WATCHED"), "CP-WATCHED", secret):
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    event = json.loads(await asyncio.wait_for(browser.recv(), deadline - time.monotonic()))
                    if event.get("kind") == "station" and event.get("station") == "CP-WATCHED":
                        return event
        return None

    event = asyncio.run(scenario())
    assert event is not None and event["online"] is True


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="two processes share a channel layer only on Redis")
def test_a_charger_that_reconnects_to_another_process_is_replaced_there_and_commands_follow_it(
    live_daphne, station_factory
):
    """Behind a load balancer a charger's new connection may land on another daphne: the old one is closed (4000)
    and commands reach the new one."""
    _, secret = station_factory("CP-MOVING")
    other = start_daphne("second-process")
    try:

        async def scenario():
            async with connected(live_daphne.ocpp_url("CP-MOVING"), "CP-MOVING", secret) as first:
                async with connected(other.ocpp_url("CP-MOVING"), "CP-MOVING", secret) as second:
                    await asyncio.wait_for(first._connection.wait_closed(), 5)
                    reset = await in_thread(
                        command_send, identity="CP-MOVING", action="Reset", payload={"type": "Soft"}, timeout=3
                    )
                    return first._connection.close_code, reset, first.received, second.received

        close_code, reset, received_first, received_second = asyncio.run(scenario())
    finally:
        stop(other)
    assert close_code == 4000
    assert reset == {"status": "Accepted"}
    assert received_first == [] and received_second == [("Reset", {"type": "Soft"})]
