"""End to end: a 1.6 charger reboots mid-transaction and never stops it; its queued StopTransaction comes after the
boot. The EMSP gets the session's PUT, then the COMPLETED session and exactly one CDR, at the last reading we had;
the late stop, with more energy, corrects that CDR: a credit CDR for it, then the corrected CDR (never a second
plain CDR), and the same stop again sends nothing more. Real PostgreSQL, Redis, daphne, a Celery worker and the
EMSP on loopback."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from ocpp.v16 import call as call16

from billing.models import Cdr, Session
from ocpi_api.models import OutboxMessage
from ocpp_gateway.models import Transaction
from tests.e2e.scenario import TOKEN_16, cdr_of, emsp_told, energy_16, iso
from tests.ocpp_gateway.chargers import connected
from tests.support import wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def test_a_charger_rebooting_mid_transaction_gives_one_cdr_at_the_partner_which_its_late_stop_credits_and_reissues(
    daphne, roaming, emsp, network, worker
):
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    url, secret = daphne.ocpp_url("E2E-1.6"), network["1.6"][1]
    boot = call16.BootNotification(charge_point_model="AC-22", charge_point_vendor="ACME")

    async def charge_and_reboot():
        async with connected(url, "E2E-1.6", secret) as cp:
            await cp.call(boot)
            started = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag=TOKEN_16, meter_start=1000, timestamp=iso(start))
            )
            await cp.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=started.transaction_id,
                    meter_value=[energy_16(start + timedelta(minutes=10), 5000)],
                )
            )
            await emsp_told(emsp, kwh=4.0)
        async with connected(url, "E2E-1.6", secret) as cp:  # power cut; back without having stopped anything
            await cp.call(boot)
        return started.transaction_id

    transaction_id = asyncio.run(charge_and_reboot())
    session = wait_until(lambda: Session.objects.filter(status="COMPLETED").first(), timeout=30)
    [cdr] = wait_until(lambda: cdr_of(emsp, session.id) or None, timeout=30)
    worker.drain()  # the COMPLETED PATCH too: pushes of different objects may arrive in any order
    assert cdr["total_energy"] == 4.0 and cdr["end_date_time"] == iso(start + timedelta(minutes=10))
    calls = emsp.session_calls(session.id)
    assert calls[0]["method"] == "PUT" and emsp.sessions[f"NL/CPO/{session.id}"]["status"] == "COMPLETED"

    async def late_stop():
        async with connected(url, "E2E-1.6", secret) as cp:
            return await cp.call(
                call16.StopTransaction(
                    meter_stop=5200,
                    transaction_id=transaction_id,
                    timestamp=iso(start + timedelta(minutes=12)),
                    reason="PowerLoss",
                    id_tag=TOKEN_16,
                )
            )

    assert asyncio.run(late_stop()).id_tag_info["status"] == "Accepted"
    worker.drain(gateway_events=True)  # whatever the late stop announced, and every push that queued, has been done
    tx = Transaction.objects.get(pk=session.transaction_id)
    assert (tx.ended_by, tx.stop_reason, tx.meter_stop) == ("reboot", "Reboot", 5200)  # corrected, not re-ended
    three = wait_until(lambda: len(cdr_of(emsp, session.id)) == 3 and cdr_of(emsp, session.id), timeout=30)
    original, credit, corrected = three
    assert [c["id"] for c in (original, credit, corrected)] == [session.id, f"{session.id}-C", f"{session.id}-R1"]
    assert credit["credit"] is True and credit["credit_reference_id"] == session.id
    assert credit["total_cost"] == {k: -v for k, v in original["total_cost"].items()}
    assert "credit" not in corrected and corrected["session_id"] == session.id
    assert corrected["total_energy"] == 4.2 and corrected["end_date_time"] == iso(start + timedelta(minutes=12))
    assert corrected["total_cost"]["excl_vat"] > original["total_cost"]["excl_vat"]
    assert emsp.sessions[f"NL/CPO/{session.id}"]["kwh"] == 4.2  # the session's final values too

    assert asyncio.run(late_stop()).id_tag_info["status"] == "Accepted"  # the same stop again: nothing new
    worker.drain(gateway_events=True)
    assert len(cdr_of(emsp, session.id)) == 3 and Cdr.objects.filter(session=session).count() == 3
    assert OutboxMessage.objects.filter(module="cdrs").count() == 3
