"""Staff users of each role, logged-in clients, a network to look at, and a real browser."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User

from cpo.models import Location
from cpo.services import station_create
from ocpp_gateway.models import Transaction
from tests.dashboard.factories import PASSWORD, make_cdr, make_session, registered_partner


@pytest.fixture
def make_user(db):
    def make(username: str, role: str | None = None, **extra):
        user = User.objects.create_user(username=username, password=PASSWORD, **extra)
        if role:
            # The data migration creates the groups; transactional tests flush them, so make sure they exist.
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        return user

    return make


@pytest.fixture
def client_as(client, make_user):
    """client_as("operator") -> a Django test client logged in as a user with that role ("none": no role,
    "superuser": a superuser without groups)."""

    def login(role: str):
        if role == "superuser":
            user = make_user("root", is_superuser=True, is_staff=True)
        else:
            user = make_user(f"user-{role}", None if role == "none" else role)
        client.force_login(user)
        client.user = user
        return client

    return login


@pytest.fixture
def browser():
    """Debian's Chromium driven by Playwright (headless). Imported here rather than at the top so that, without
    Playwright, only the browser test modules are skipped (importing tests.dashboard.browser skips them)."""
    from tests.dashboard.browser import CHROMIUM, CHROMIUM_ARGS, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def analytics_network(station_factory, location):
    """Two locations, three stations, ~150 sessions over two weeks (some across midnight, some longer than a day, one
    never closed) and CDRs of two partners with a credit."""
    rng = random.Random(7)
    other = Location.objects.create(
        id="LOC-T2",
        name="Other",
        address="Weg 2",
        city="Gouda",
        postal_code="2801AA",
        country="NLD",
        latitude=Decimal("52.0"),
        longitude=Decimal("4.7"),
        time_zone="Europe/Amsterdam",
    )
    stations = [
        station_factory("CP-R1", evses=2)[0],
        station_factory("CP-R2", evses=3)[0],
        station_create(identity="CP-R3", location=other, evses=2)[0],
    ]
    number = 0
    start0 = datetime(2026, 3, 18, tzinfo=UTC)
    for station in stations:
        for evse in station.evses.all():
            moment = start0 + timedelta(minutes=rng.randrange(600))
            while moment < datetime(2026, 4, 4, tzinfo=UTC):
                number += 1
                hours = rng.choice([0.25, 0.5, 1, 2.5, 7, 13, 30])
                kwh = Decimal(rng.randrange(1, 60000)) / 1000
                Transaction.objects.create(
                    station=station,
                    evse=evse,
                    transaction_id=str(number),
                    ocpp_version="1.6",
                    ocpp_evse_id=evse.ocpp_evse_id,
                    connector_id=1,
                    id_tag="T",
                    started_at=moment,
                    ended_at=moment + timedelta(hours=hours),
                    meter_start=Decimal(500),
                    meter_stop=Decimal(500) + kwh * 1000,
                    status="ENDED",
                )
                moment += timedelta(hours=hours, minutes=rng.randrange(5, 900), seconds=rng.randrange(60))
    Transaction.objects.create(  # a charger that never closed its transaction
        station=stations[0],
        evse=stations[0].evses.first(),
        transaction_id="open",
        ocpp_version="1.6",
        ocpp_evse_id=1,
        connector_id=1,
        id_tag="T",
        started_at=datetime(2026, 3, 25, 6, 30, tzinfo=UTC),
        meter_start=Decimal(0),
        meter_last=Decimal(4200),
        status="ACTIVE",
    )
    registered_partner()
    registered_partner("DE", "ABC", "Abc Mobility")
    for i in range(40):
        start = datetime(2026, 3, 19, 12, tzinfo=UTC) + timedelta(hours=9 * i, minutes=7 * i)
        emsp = [("NL", "EXM"), ("DE", "ABC"), ("", "")][i % 3]
        cdr = make_cdr(
            make_session(
                station=stations[i % 3], number=10_000 + i, start=start, kwh=Decimal(i + 1), emsp=emsp, uid=f"U{i}"
            ),
            issued=start + timedelta(hours=1, minutes=30),
            energy=(Decimal(i) / 3, Decimal(i) / 2),
        )
        if i % 7 == 0:
            make_cdr(cdr.session, issued=start + timedelta(hours=20), credit_of=cdr)
    return stations
