"""What ocpi_api announces for billing's events, and when it is delivered: a credit CDR is POSTed like any CDR, and
in the embedded default the pushes to a slow EMSP are made after the charger's answers, never before them."""

import asyncio
import datetime as dt
import time

import pytest
from ocpp.v16 import call as call16

from billing.models import Cdr
from billing.selectors import cdr_as_ocpi
from billing.services import cdr_credit, transaction_bill
from ocpi_api.models import PartnerToken
from tests.e2e.emsp import partner_for
from tests.ocpi_api.factories import EMSP_TOKEN, T0, as_json, deliver_all, start, stop
from tests.ocpp_gateway.chargers import connected
from tests.support import start_daphne, wait_until
from tests.support import stop as stop_daphne


@pytest.mark.django_db
def test_a_credit_cdr_is_posted_to_the_same_emsp_once(
    receiving_emsp, session_station, session_partners, emsp_token, no_throttle
):
    tx = start(session_station)
    stop(session_station, tx, 20, 6000)
    session = transaction_bill(transaction_pk=tx.pk)
    original = Cdr.objects.get(session=session)
    credit = cdr_credit(cdr=original, reason="wrong tariff")
    assert cdr_credit(cdr=original).pk == credit.pk  # again: the same credit, announced once
    deliver_all()
    posted = receiving_emsp.cdr_posts
    assert [c["id"] for c in posted] == [original.id, credit.id]
    assert posted[1] == as_json(cdr_as_ocpi(cdr=credit))
    assert posted[1]["credit"] is True and posted[1]["credit_reference_id"] == original.id


@pytest.fixture
def embedded_daphne(django_db_setup, django_db_blocker):
    """A daphne as `make run` starts it on a bare machine: Celery tasks in-process (on its background thread)."""
    server = start_daphne("pipeline-embedded", REDIS_URL="", CELERY_TASK_ALWAYS_EAGER="1")
    yield server
    stop_daphne(server)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_slow_emsp_never_holds_up_a_chargers_answer(embedded_daphne, station_factory, receiving_emsp):
    """Embedded default: the session PUT, PATCH and CDR POST to an EMSP that takes 3 s per call are made after the
    charger's answers, not before them (DESIGN.md: nothing remote in the charger's reply path)."""
    _, secret = station_factory("CP-SLOW-EMSP", evses=1)
    partner = partner_for(receiving_emsp)
    PartnerToken.objects.create(
        partner=partner,
        country_code="NL",
        party_id="EXM",
        uid=EMSP_TOKEN,
        type="RFID",
        contract_id="NL-EXM-C00000001-X",
        issuer="Example EMSP",
        valid=True,
        whitelist="ALWAYS",
        last_updated=T0,
    )
    receiving_emsp.delay = 3.0
    answered_in = []

    async def charge():
        async with connected(embedded_daphne.ocpp_url("CP-SLOW-EMSP"), "CP-SLOW-EMSP", secret) as cp:

            async def timed(message):
                clock = time.monotonic()
                answer = await cp.call(message)
                answered_in.append((message.__class__.__name__, time.monotonic() - clock))
                return answer

            started = await timed(
                call16.StartTransaction(connector_id=1, id_tag=EMSP_TOKEN, meter_start=0, timestamp=T0.isoformat())
            )
            assert started.id_tag_info["status"] == "Accepted"
            await timed(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=started.transaction_id,
                    meter_value=[
                        {
                            "timestamp": (T0 + dt.timedelta(minutes=10)).isoformat(),
                            "sampledValue": [{"value": "2000", "unit": "Wh"}],
                        }
                    ],
                )
            )
            await timed(
                call16.StopTransaction(
                    meter_stop=4000,
                    transaction_id=started.transaction_id,
                    timestamp=(T0 + dt.timedelta(minutes=20)).isoformat(),
                )
            )

    asyncio.run(charge())
    assert all(seconds < 2.0 for _, seconds in answered_in), answered_in
    wait_until(lambda: receiving_emsp.cdr_posts, timeout=30)
    assert receiving_emsp.cdr_posts[0]["total_energy"] == 4
