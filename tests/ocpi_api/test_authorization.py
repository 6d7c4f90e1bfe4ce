"""Tokens EMSPs pushed decide who may charge: whitelist types, and real-time authorization at a real loopback EMSP."""

import asyncio
import time
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.utils import timezone
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from ocpi_api.authorization import partner_token_authorize
from ocpi_api.models import PartnerStatus, PartnerToken
from ocpp_gateway.authorization import AuthorizationRequest, id_tag_authorize
from ocpp_gateway.models import Transaction
from tests.ocpi_api.emsp_commands import CommandsEmsp
from tests.ocpi_api.factories import make_partner
from tests.ocpp_gateway.chargers import connected
from tests.support import start_daphne, stop


@pytest.fixture
def emsp():
    server = CommandsEmsp().start()
    yield server
    server.stop()


@pytest.fixture
def emsp_partner(db, emsp):
    return make_partner(token="emsp-calls-us", endpoints=emsp.endpoints(), outgoing_token=emsp.token_b)


def push_token(partner, uid, *, whitelist, valid=True, token_type="RFID"):
    return PartnerToken.objects.create(
        partner=partner,
        country_code=partner.country_code,
        party_id=partner.party_id,
        uid=uid,
        type=token_type,
        contract_id=f"NL-EXM-C{uid}"[:36],
        issuer="Example",
        valid=valid,
        whitelist=whitelist,
        group_id="GROUP-1",
        last_updated=datetime(2026, 1, 1, tzinfo=UTC),
    )


def ask(uid, *, station="CP-AUTH", location_id="LOC-1", evse_uid="CP-AUTH-1", id_token_type=""):
    return partner_token_authorize(
        AuthorizationRequest(
            id_tag=uid,
            id_token_type=id_token_type,
            station_identity=station,
            location_id=location_id,
            evse_uid=evse_uid,
        )
    )


def authorize_calls(emsp):
    return [r for r in emsp.requests if r["path"].split("?")[0].endswith("/authorize")]


@pytest.mark.django_db
class TestRealTimeAuthorization:
    def test_an_allowed_answer_accepts_with_the_emsp_reference(self, emsp, emsp_partner, settings):
        push_token(emsp_partner, "RT-ALLOWED", whitelist="NEVER")
        emsp.authorize_answers["RT-ALLOWED"] = "ALLOWED"
        emsp.authorization_references["RT-ALLOWED"] = "REF-12345"
        result = ask("rt-allowed")  # uid is a CiString: the charger's case does not matter
        assert (result.status, result.auth_method, result.authorization_reference) == (
            "Accepted",
            "AUTH_REQUEST",
            "REF-12345",
        )
        assert (
            result.source,
            result.contract_id,
            result.token_type,
            result.country_code,
            result.party_id,
            result.group_id,
        ) == (f"partner:{emsp_partner.pk}", "NL-EXM-CRT-ALLOWED", "RFID", "NL", "EXM", "GROUP-1")
        [request] = authorize_calls(emsp)
        assert request["path"] == "/ocpi/emsp/2.2.1/tokens/RT-ALLOWED/authorize?type=RFID"
        assert request["body"] == {"location_id": "LOC-1", "evse_uids": ["CP-AUTH-1"]}
        assert request["headers"]["OCPI-to-party-id"] == "EXM"

    def test_a_blocked_answer_blocks(self, emsp, emsp_partner):
        push_token(emsp_partner, "RT-BLOCKED", whitelist="NEVER")
        emsp.authorize_answers["RT-BLOCKED"] = "BLOCKED"
        result = ask("RT-BLOCKED")
        assert (result.status, result.auth_method) == ("Blocked", "AUTH_REQUEST")

    def test_an_emsp_that_never_answers_is_given_up_within_the_timeout_and_never_means_invalid(
        self, emsp, emsp_partner, settings
    ):
        settings.OCPI_REALTIME_AUTHORIZATION_TIMEOUT = 0.5
        push_token(emsp_partner, "RT-SILENT", whitelist="NEVER")
        emsp.authorize_answers["RT-SILENT"] = "SILENT"
        began = time.monotonic()
        result = ask("RT-SILENT")
        assert time.monotonic() - began < 2.0
        assert result.status == "Invalid" and result.source == f"partner:{emsp_partner.pk}"

    def test_allowed_offline_falls_back_to_the_whitelist_when_the_emsp_is_silent(self, emsp, emsp_partner, settings):
        settings.OCPI_REALTIME_AUTHORIZATION_TIMEOUT = 0.5
        push_token(emsp_partner, "RT-OFFLINE-OK", whitelist="ALLOWED_OFFLINE")
        push_token(emsp_partner, "RT-OFFLINE-BAD", whitelist="ALLOWED_OFFLINE", valid=False)
        emsp.authorize_answers.update({"RT-OFFLINE-OK": "SILENT", "RT-OFFLINE-BAD": "SILENT"})
        ok, bad = ask("RT-OFFLINE-OK"), ask("RT-OFFLINE-BAD")
        assert (ok.status, ok.auth_method) == ("Accepted", "WHITELIST")
        assert (bad.status, bad.auth_method) == ("Blocked", "WHITELIST")
        assert len(authorize_calls(emsp)) == 2  # it was asked first

    def test_allowed_offline_uses_the_answer_when_there_is_one(self, emsp, emsp_partner):
        push_token(emsp_partner, "RT-OFF-ANSWER", whitelist="ALLOWED_OFFLINE")
        emsp.authorize_answers["RT-OFF-ANSWER"] = "EXPIRED"
        assert ask("RT-OFF-ANSWER").status == "Expired"

    def test_always_never_asks(self, emsp, emsp_partner):
        push_token(emsp_partner, "WL-ALWAYS", whitelist="ALWAYS")
        push_token(emsp_partner, "WL-ALWAYS-OFF", whitelist="ALWAYS", valid=False)
        emsp.authorize_answers.update({"WL-ALWAYS": "BLOCKED", "WL-ALWAYS-OFF": "ALLOWED"})
        assert (ask("WL-ALWAYS").status, ask("WL-ALWAYS").auth_method) == ("Accepted", "WHITELIST")
        assert ask("WL-ALWAYS-OFF").status == "Blocked"
        assert authorize_calls(emsp) == []

    def test_allowed_whitelists_a_valid_token_and_asks_about_an_invalid_one(self, emsp, emsp_partner):
        push_token(emsp_partner, "WL-ALLOWED", whitelist="ALLOWED")
        push_token(emsp_partner, "WL-ALLOWED-OFF", whitelist="ALLOWED", valid=False)
        emsp.authorize_answers["WL-ALLOWED-OFF"] = "ALLOWED"  # unblocked at the EMSP since the last push
        assert ask("WL-ALLOWED").auth_method == "WHITELIST"
        result = ask("WL-ALLOWED-OFF")
        assert (result.status, result.auth_method) == ("Accepted", "AUTH_REQUEST")
        assert len(authorize_calls(emsp)) == 1

    def test_a_token_the_emsp_does_not_know_is_invalid(self, emsp, emsp_partner):
        push_token(emsp_partner, "RT-GONE", whitelist="NEVER")
        assert ask("RT-GONE").status == "Invalid"

    def test_an_evse_the_emsp_left_out_is_not_allowed(self, emsp, emsp_partner):
        push_token(emsp_partner, "RT-EVSE", whitelist="NEVER")
        emsp.authorize_answers["RT-EVSE"] = "ALLOWED"
        emsp.evse_restrictions["RT-EVSE"] = ["CP-AUTH-2"]
        assert ask("RT-EVSE", evse_uid="CP-AUTH-1").status == "Invalid"
        assert ask("RT-EVSE", evse_uid="CP-AUTH-2").status == "Accepted"

    def test_no_credit_and_not_allowed_are_precise_for_201_chargers(self, emsp, emsp_partner, station_factory):
        station, _ = station_factory("CS-AUTH-201")
        station.ocpp_version = "2.0.1"
        station.save()
        push_token(emsp_partner, "RT-CREDIT", whitelist="NEVER")
        emsp.authorize_answers["RT-CREDIT"] = "NO_CREDIT"
        assert ask("RT-CREDIT", station="CS-AUTH-201").status == "NoCredit"
        assert ask("RT-CREDIT", station="CP-UNKNOWN-16").status == "Invalid"

    def test_tokens_of_unregistered_partners_and_unknown_tokens_are_not_ours_to_decide(self, emsp, emsp_partner):
        push_token(emsp_partner, "RT-OLD", whitelist="ALWAYS")
        emsp_partner.status = PartnerStatus.UNREGISTERED
        emsp_partner.save()
        assert ask("RT-OLD") is None and ask("NOBODY-KNOWS") is None
        assert id_tag_authorize(AuthorizationRequest(id_tag="NOBODY-KNOWS")).status == "Invalid"

    def test_the_gateway_asks_partner_tokens_after_local_ones(self, emsp, emsp_partner, local_token):
        push_token(emsp_partner, local_token.uid, whitelist="ALWAYS", valid=False)
        assert id_tag_authorize(AuthorizationRequest(id_tag=local_token.uid)).source == "local"
        push_token(emsp_partner, "ROAMING-1", whitelist="ALWAYS")
        assert id_tag_authorize(AuthorizationRequest(id_tag="ROAMING-1")).source == f"partner:{emsp_partner.pk}"


# --- Through a live daphne with simulated chargers ------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_daphne(django_db_setup, django_db_blocker):
    server = start_daphne("ocpi-auth", OCPI_REALTIME_AUTHORIZATION_TIMEOUT="1")
    yield server
    stop(server)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_16_charger_is_answered_by_the_emsp_in_real_time(auth_daphne, emsp, station_factory):
    partner = make_partner(token="emsp-live", endpoints=emsp.endpoints(), outgoing_token=emsp.token_b)
    _, secret = station_factory("CP-RT-16")
    for uid, answer in (("LIVE-OK", "ALLOWED"), ("LIVE-BLOCKED", "BLOCKED"), ("LIVE-SILENT", "SILENT")):
        push_token(partner, uid, whitelist="NEVER")
        emsp.authorize_answers[uid] = answer
    emsp.authorization_references["LIVE-OK"] = "AUTH-REF-LIVE"

    async def scenario():
        async with connected(auth_daphne.ocpp_url("CP-RT-16"), "CP-RT-16", secret) as cp:
            answers = {
                uid: (await cp.call(call16.Authorize(id_tag=uid))).id_tag_info["status"]
                for uid in ("LIVE-OK", "LIVE-BLOCKED", "LIVE-SILENT")
            }
            start = await cp.call(
                call16.StartTransaction(
                    connector_id=1, id_tag="LIVE-OK", meter_start=0, timestamp="2026-11-20T10:00:00Z"
                )
            )
            refused = await cp.call(
                call16.StartTransaction(
                    connector_id=2, id_tag="LIVE-BLOCKED", meter_start=0, timestamp="2026-11-20T10:00:00Z"
                )
            )
            return answers, start, refused

    answers, start, refused = asyncio.run(scenario())
    assert answers == {"LIVE-OK": "Accepted", "LIVE-BLOCKED": "Blocked", "LIVE-SILENT": "Invalid"}
    assert start.id_tag_info["status"] == "Accepted" and refused.id_tag_info["status"] == "Blocked"
    tx = Transaction.objects.get(transaction_id=str(start.transaction_id))
    assert (tx.auth_status, tx.auth_source, tx.authorization_reference) == (
        "Accepted",
        f"partner:{partner.pk}",
        "AUTH-REF-LIVE",
    )
    if hasattr(tx, "auth_method"):  # the gateway's new columns
        assert (tx.auth_method, tx.contract_id, tx.token_country_code, tx.token_party_id) == (
            "AUTH_REQUEST",
            "NL-EXM-CLIVE-OK",
            "NL",
            "EXM",
        )
    # the EMSP was asked about the EVSE of the start
    bodies = [r["body"] for r in authorize_calls(emsp) if "/LIVE-OK/" in r["path"]]
    assert {"location_id": "LOC-T1", "evse_uids": ["CP-RT-16-1"]} in bodies


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_201_charger_gets_the_precise_status(auth_daphne, emsp, station_factory):
    partner = make_partner(token="emsp-live-201", endpoints=emsp.endpoints(), outgoing_token=emsp.token_b)
    _, secret = station_factory("CS-RT-201")
    push_token(partner, "LIVE-NOCREDIT", whitelist="NEVER")
    emsp.authorize_answers["LIVE-NOCREDIT"] = "NO_CREDIT"
    push_token(partner, "LIVE-APP", whitelist="NEVER", token_type="APP_USER")
    emsp.authorize_answers["LIVE-APP"] = "ALLOWED"

    async def scenario():
        async with connected(auth_daphne.ocpp_url("CS-RT-201"), "CS-RT-201", secret, version="2.0.1") as cp:
            await cp.call(
                call201.BootNotification(charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp")
            )
            credit = await cp.call(call201.Authorize(id_token={"id_token": "LIVE-NOCREDIT", "type": "ISO14443"}))
            app = await cp.call(call201.Authorize(id_token={"id_token": "LIVE-APP", "type": "Central"}))
            return credit.id_token_info["status"], app.id_token_info["status"]

    assert asyncio.run(scenario()) == ("NoCredit", "Accepted")
    assert "type=APP_USER" in next(r["path"] for r in authorize_calls(emsp) if "/LIVE-APP/" in r["path"])


# --- Nothing slow or remote on the gateway's database threads; replays never call an EMSP ---------------------


@pytest.mark.django_db
def test_the_database_step_never_calls_the_emsp(emsp, emsp_partner):
    """The authorizer the gateway runs on its database threads only reads: the EMSP is called when (and where) the
    gateway runs the check it returns."""
    from ocpi_api.authorization import partner_token_authorize_step
    from ocpp_gateway.authorization import RealtimeCheck, id_tag_authorize_step, realtime_check_run

    push_token(emsp_partner, "RT-STEP", whitelist="NEVER")
    emsp.authorize_answers["RT-STEP"] = "ALLOWED"
    request = AuthorizationRequest(id_tag="RT-STEP", station_identity="CP-AUTH", location_id="LOC-1")
    for step in (partner_token_authorize_step(request), id_tag_authorize_step(request)):
        assert isinstance(step, RealtimeCheck)
    assert authorize_calls(emsp) == []
    assert realtime_check_run(step).status == "Accepted"
    assert len(authorize_calls(emsp)) == 1
    assert step.decide(None).status == "Invalid"  # no answer in time: what NEVER falls back to


@pytest.fixture(scope="module")
def one_db_thread_daphne(django_db_setup, django_db_blocker):
    """A daphne with a single database thread for the gateway: whatever holds it holds every charger."""
    server = start_daphne("ocpi-auth-one-thread", OCPP_DB_THREADS="1", OCPI_REALTIME_AUTHORIZATION_TIMEOUT="4")
    yield server
    stop(server)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_an_emsp_that_hangs_holds_none_of_the_gateway_database_threads(
    one_db_thread_daphne, emsp, station_factory, local_token
):
    partner = make_partner(token="emsp-hangs", endpoints=emsp.endpoints(), outgoing_token=emsp.token_b)
    push_token(partner, "HANGS-1", whitelist="NEVER")
    emsp.authorize_answers["HANGS-1"] = "SILENT"  # answers after 8 s, long after our 4 s
    _, secret_a = station_factory("CP-HANG-A")
    _, secret_b = station_factory("CP-HANG-B")
    server = one_db_thread_daphne

    async def scenario():
        async with (
            connected(server.ocpp_url("CP-HANG-A"), "CP-HANG-A", secret_a) as waiting,
            connected(server.ocpp_url("CP-HANG-B"), "CP-HANG-B", secret_b) as other,
        ):
            asked = asyncio.create_task(waiting.call(call16.Authorize(id_tag="HANGS-1")))
            while not authorize_calls(emsp):  # the EMSP has the request and hangs on it
                await asyncio.sleep(0.02)
            began = time.monotonic()
            local = await other.call(call16.Authorize(id_tag=local_token.uid))  # needs the database thread
            start = await other.call(
                call16.StartTransaction(
                    connector_id=1, id_tag=local_token.uid, meter_start=0, timestamp="2026-11-20T10:00:00Z"
                )
            )
            took = time.monotonic() - began
            hung = await asked
            return local, start, took, hung, time.monotonic() - began

    local, start, took, hung, waited = asyncio.run(scenario())
    assert local.id_tag_info["status"] == "Accepted" and start.id_tag_info["status"] == "Accepted"
    assert took < 2.0, f"another charger waited {took:.1f} s for the database thread"
    assert hung.id_tag_info["status"] == "Invalid"  # NEVER: no answer in time
    assert waited < 6.0  # given up within OCPI_REALTIME_AUTHORIZATION_TIMEOUT (4 s), not the EMSP's 8 s


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_16_stop_and_its_retransmission_never_call_the_emsp(auth_daphne, emsp, station_factory):
    partner = make_partner(token="emsp-stops-16", endpoints=emsp.endpoints(), outgoing_token=emsp.token_b)
    _, secret = station_factory("CP-RT-STOP")
    for uid in ("STOP-16", "OTHER-16"):
        push_token(partner, uid, whitelist="NEVER")
        emsp.authorize_answers[uid] = "ALLOWED"
    stop = call16.StopTransaction(meter_stop=5000, timestamp="2026-11-20T11:00:00Z", transaction_id=0, id_tag="STOP-16")
    calls = []

    async def scenario():
        async with connected(auth_daphne.ocpp_url("CP-RT-STOP"), "CP-RT-STOP", secret) as cp:
            start = await cp.call(
                call16.StartTransaction(
                    connector_id=1, id_tag="STOP-16", meter_start=0, timestamp="2026-11-20T10:00:00Z"
                )
            )
            calls.append(len(authorize_calls(emsp)))
            stop.transaction_id = start.transaction_id
            answers = [await cp.call(stop)]  # the token that started it: its stored authorization
            calls.append(len(authorize_calls(emsp)))
            answers.append(await cp.call(stop))  # retransmitted
            answers.append(
                await cp.call(
                    call16.StopTransaction(  # another token, the transaction has ended
                        meter_stop=5000,
                        timestamp="2026-11-20T11:00:00Z",
                        transaction_id=start.transaction_id,
                        id_tag="OTHER-16",
                    )
                )
            )
            calls.append(len(authorize_calls(emsp)))
            return start, answers

    start, answers = asyncio.run(scenario())
    assert start.id_tag_info["status"] == "Accepted"
    assert calls == [1, 1, 1]
    assert [a.id_tag_info["status"] for a in answers[:2]] == ["Accepted", "Accepted"]
    assert answers[2].id_tag_info["status"] == "Invalid"  # what our database says of a NEVER token: no answer
    tx = Transaction.objects.get(transaction_id=str(start.transaction_id))
    assert (tx.status, tx.meter_stop, tx.auth_method) == ("ENDED", 5000, "AUTH_REQUEST")


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_201_events_of_a_transaction_ask_the_emsp_once_and_replays_never(auth_daphne, emsp, station_factory):
    partner = make_partner(token="emsp-events-201", endpoints=emsp.endpoints(), outgoing_token=emsp.token_b)
    _, secret = station_factory("CS-RT-EVENTS")
    for uid in ("EVENT-201", "LATE-201"):
        push_token(partner, uid, whitelist="NEVER")
        emsp.authorize_answers[uid] = "ALLOWED"

    def event(seq_no, event_type, minute, uid="EVENT-201", **extra):
        return call201.TransactionEvent(
            event_type=event_type,
            timestamp=f"2026-11-20T10:{minute:02d}:00Z",
            trigger_reason="Authorized",
            seq_no=seq_no,
            transaction_info={"transaction_id": "TX-RT-201"},
            evse={"id": 1, "connector_id": 1},
            id_token={"id_token": uid, "type": "ISO14443"},
            **extra,
        )

    async def scenario():
        async with connected(auth_daphne.ocpp_url("CS-RT-EVENTS"), "CS-RT-EVENTS", secret, version="2.0.1") as cp:
            await cp.call(
                call201.BootNotification(charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp")
            )
            answers = [await cp.call(event(0, "Started", 0))]
            calls = [len(authorize_calls(emsp))]
            answers.append(await cp.call(event(1, "Updated", 10)))
            ended = event(2, "Ended", 20)
            answers.append(await cp.call(ended))
            answers.append(await cp.call(ended))  # retransmitted
            answers.append(await cp.call(event(3, "Updated", 15, uid="LATE-201")))  # late, another token
            calls.append(len(authorize_calls(emsp)))
            return answers, calls

    answers, calls = asyncio.run(scenario())
    assert calls == [1, 1]
    assert [a.id_token_info["status"] for a in answers[:4]] == ["Accepted"] * 4
    assert answers[4].id_token_info["status"] == "Invalid"
    tx = Transaction.objects.get(transaction_id="TX-RT-201")
    assert (tx.status, tx.auth_status, tx.id_tag, tx.last_seq_no) == ("ENDED", "Accepted", "EVENT-201", 3)


@pytest.mark.django_db
def test_a_charger_token_among_twenty_thousand_pushed_ones_is_found_through_an_index():
    """A CPO holds every token its EMSPs pushed (hundreds of thousands); each Authorize and StartTransaction looks
    one up by uid, case-insensitively. PostgreSQL must read it through an index, not scan every token."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's plan (CI's second pass); SQLite is the embedded first-run default")
    partner = make_partner(token="tok-idx")
    now = timezone.now()
    PartnerToken.objects.bulk_create(
        PartnerToken(
            partner=partner,
            country_code="NL",
            party_id="EXM",
            uid=f"CARD{n:06d}",
            type="RFID",
            contract_id=f"NL-EXM-C{n:08d}",
            issuer="Example",
            valid=True,
            whitelist="ALWAYS",
            last_updated=now,
        )
        for n in range(20_000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ocpi_api_partnertoken")
    lookup = PartnerToken.objects.filter(uid__iexact="card000123", partner__status=PartnerStatus.REGISTERED)
    plan = lookup.explain()
    assert "partner_token_uid_upper" in plan, plan
    result = partner_token_authorize(AuthorizationRequest(id_tag="card000123"))
    assert result is not None and result.accepted and result.token_uid == "CARD000123"
