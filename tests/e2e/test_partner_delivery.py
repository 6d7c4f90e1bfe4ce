"""End to end: what an EMSP that misbehaves receives of one charge (issue 9, "order and duplicates at the partner").

For one session the EMSP receives the Session PUT, its PATCHes, the COMPLETED state and then the CDR POST, in that
order, whatever it answers meanwhile: 500s, answers slower than our timeout, or none at all. A call is never repeated
while an earlier one of the same message is still running at the EMSP (as far as our timeouts can tell), a slow CDR
answer within the CDR timeout is not taken for a failure, and a worker killed mid-POST has the CDR sent again by
another within a minute. Real PostgreSQL, Redis, daphne, Celery worker processes and the EMSP on loopback.

The workers run with the production lease and polling settings (sending lease 20 s, beat every 15 s, dispatch lease
30 s); push timeouts are 2 s for sessions and 6 s for CDRs (production: 15 s and 30 s)."""

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from billing.models import Cdr, Session
from ocpi_api.models import OutboxAttempt, OutboxMessage
from tests.e2e.conftest import CeleryWorker
from tests.e2e.scenario import cdr_of
from tests.e2e.test_charging_roaming import charge_16
from tests.support import wait_until

logger = logging.getLogger(__name__)

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

SESSION_TIMEOUT, CDR_TIMEOUT = 2.0, 6.0
PRODUCTION_LEASES = ("OCPI_OUTBOX_POLL_SECONDS", "OCPI_OUTBOX_DISPATCH_LEASE", "OCPI_OUTBOX_SENDING_LEASE")


def worker_env(e2e: dict) -> dict:
    env = {k: v for k, v in e2e.items() if k not in PRODUCTION_LEASES}
    return {**env, "OCPI_SESSION_PUSH_TIMEOUT": str(SESSION_TIMEOUT), "OCPI_CDR_PUSH_TIMEOUT": str(CDR_TIMEOUT)}


@pytest.fixture
def worker(e2e, daphne):
    worker = CeleryWorker(worker_env(e2e)).start()
    yield worker
    worker.stop()


class Misbehaviour:
    """The EMSP's answers to its next receiver calls of each module once `armed`: "500", or a number of seconds to hang
    before handling the call as usual (storing what it got even when we stopped waiting). Then it behaves. Every
    receiver call is logged with when it arrived and when the EMSP was done with it, and what the EMSP had stored of
    the session when a CDR arrived."""

    def __init__(self, emsp, **plans: list):
        self.emsp = emsp
        self.plans = plans
        self.armed = threading.Event()
        self.lock = threading.Lock()
        self.calls: list[dict] = []
        emsp.answer = self.answer

    def answer(self, method, path, body):
        module = path.split("/ocpi/emsp/2.2.1/", 1)[-1].split("/", 1)[0]
        call = {"module": module, "method": method, "status": (body or {}).get("status"), "start": time.monotonic()}
        if module == "cdrs" and method == "POST":
            call["session_stored"] = {k: dict(v) for k, v in self.emsp.sessions.items()}
        with self.lock:
            plan = self.plans.get(module) if self.armed.is_set() else None
            behaviour = plan.pop(0) if plan else None
            call["behaviour"] = behaviour
            self.calls.append(call)
        try:
            if behaviour == "500":
                return 500, {"status_code": 3000, "status_message": "internal error"}
            if behaviour is not None:
                time.sleep(behaviour)
            return None
        finally:
            call["end"] = time.monotonic()

    def of(self, module: str) -> list[dict]:
        return [c for c in self.calls if c["module"] == module]

    def assert_one_at_a_time(self, module: str) -> None:
        calls = sorted(self.of(module), key=lambda c: c["start"])
        for before, after in zip(calls, calls[1:], strict=False):
            ended = before.get("end", float("inf"))  # none yet: the EMSP is still busy with it
            assert after["start"] >= ended, f"{module} calls overlapped at the EMSP: {before} {after}"


def assert_session_then_cdr(misbehaviour: Misbehaviour, session_id: str) -> None:
    """PUT first, every session call before the first CDR POST arrives, and the EMSP held the COMPLETED session by
    then."""
    calls = sorted(misbehaviour.calls, key=lambda c: c["start"])
    sessions = [c for c in calls if c["module"] == "sessions"]
    first_cdr = next(c for c in calls if c["module"] == "cdrs")
    assert sessions[0]["method"] == "PUT" and sessions[0]["status"] == "ACTIVE"
    assert all(c["start"] < first_cdr["start"] for c in sessions), "a session call came after the CDR"
    assert first_cdr["session_stored"][f"NL/CPO/{session_id}"]["status"] == "COMPLETED"


def charge(daphne, network, *, on_stop=None):
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    url, secret = daphne.ocpp_url("E2E-1.6"), network["1.6"][1]
    asyncio.run(charge_16(url, secret, start=start, readings=[0, 2000, 4000], pause=1.2, stop_hook=on_stop))
    return wait_until(lambda: Session.objects.filter(status="COMPLETED").first(), timeout=30)


def test_an_emsp_rejecting_session_pushes_for_a_while_gets_put_patches_completed_and_only_then_the_cdr(
    daphne, roaming, emsp, network, worker
):
    """Issue 9: in 4 of 12 sessions the CDR was POSTed before the session's first PUT."""
    misbehaviour = Misbehaviour(emsp, sessions=["500"] * 6)
    misbehaviour.armed.set()
    session = charge(daphne, network)
    wait_until(lambda: Cdr.objects.filter(session=session).exists(), timeout=30)
    wait_until(lambda: cdr_of(emsp, session.id), timeout=60)
    worker.drain()
    assert_session_then_cdr(misbehaviour, session.id)
    assert len(cdr_of(emsp, session.id)) == 1 and len(misbehaviour.of("cdrs")) == 1
    assert emsp.sessions[f"NL/CPO/{session.id}"]["status"] == "COMPLETED"
    assert [c["behaviour"] for c in misbehaviour.of("sessions")][:6] == ["500"] * 6


def test_an_emsp_answering_500_then_slower_than_the_session_timeout_gets_the_cdr_once_after_the_completed_session(
    daphne, roaming, emsp, network, worker
):
    """Issue 9: with the EMSP answering 500 and then slowly, it received the CDR POST three times (answers that came
    after our timeout) and the CDR before the COMPLETED session. A CDR POST waits longer for its answer."""
    misbehaviour = Misbehaviour(emsp, sessions=["500", 1.0], cdrs=["500", CDR_TIMEOUT - 2.5])

    async def stopping():
        misbehaviour.armed.set()

    session = charge(daphne, network, on_stop=stopping)
    wait_until(lambda: OutboxMessage.objects.filter(module="cdrs", status="SENT").exists(), timeout=60)
    worker.drain()
    assert_session_then_cdr(misbehaviour, session.id)
    assert [c["behaviour"] for c in misbehaviour.of("cdrs")] == ["500", CDR_TIMEOUT - 2.5]
    assert len(cdr_of(emsp, session.id)) == 1  # stored once: the slow answer was waited for
    misbehaviour.assert_one_at_a_time("cdrs")
    misbehaviour.assert_one_at_a_time("sessions")
    assert emsp.sessions[f"NL/CPO/{session.id}"]["status"] == "COMPLETED"


def test_an_emsp_answering_500_then_hanging_past_the_cdr_timeout_then_recovering_is_never_sent_the_cdr_concurrently(
    daphne, roaming, emsp, network, worker
):
    """The CDR POST the EMSP sat on longer than our CDR timeout is sent again (at least once), but only after the
    EMSP had as long again to finish the one it held, and after the COMPLETED session."""
    hang = CDR_TIMEOUT + 2.0
    misbehaviour = Misbehaviour(emsp, sessions=["500"], cdrs=["500", hang])

    async def stopping():
        misbehaviour.armed.set()

    session = charge(daphne, network, on_stop=stopping)
    wait_until(lambda: OutboxMessage.objects.filter(module="cdrs", status="SENT").exists(), timeout=90)
    worker.drain()
    assert_session_then_cdr(misbehaviour, session.id)
    cdrs = misbehaviour.of("cdrs")
    assert [c["behaviour"] for c in cdrs] == ["500", hang, None]
    misbehaviour.assert_one_at_a_time("cdrs")
    # the EMSP stored the one it held (we had stopped waiting) and the retry: twice, one after the other
    assert len(cdr_of(emsp, session.id)) == 2
    attempts = list(OutboxAttempt.objects.filter(message__module="cdrs").order_by("id"))
    assert [a.http_status for a in attempts] == [500, None, 201] and "Timeout" in attempts[1].error


def test_a_worker_killed_during_a_cdr_post_has_it_sent_again_within_a_minute(daphne, roaming, emsp, network, worker):
    """Issue 9: a worker killed during a CDR POST re-sent it 4 min 47 s later. The worker is SIGKILLed while the EMSP
    holds the POST; another worker sends it again once the dead one's lease ran out: within a minute, and not while
    the EMSP was still busy with the first."""
    misbehaviour = Misbehaviour(emsp, cdrs=[3.0])
    misbehaviour.armed.set()
    session = charge(daphne, network)
    wait_until(lambda: misbehaviour.of("cdrs"), timeout=30)
    worker.kill()
    killed = time.monotonic()
    replacement = CeleryWorker(worker_env(worker.env)).start()
    try:
        wait_until(lambda: len(misbehaviour.of("cdrs")) == 2, timeout=90)
        resent_after = misbehaviour.of("cdrs")[1]["start"] - killed
        logger.warning("CDR POST sent again %.1f s after the worker was killed", resent_after)
        assert resent_after < 60, f"sent again {resent_after:.1f} s after the worker was killed"
        misbehaviour.assert_one_at_a_time("cdrs")
        replacement.drain()
        message = OutboxMessage.objects.get(module="cdrs")
        assert message.status == "SENT" and message.sending_until is None
        assert cdr_of(emsp, session.id)[-1]["id"] == Cdr.objects.get(session=session).id
    finally:
        replacement.stop()
