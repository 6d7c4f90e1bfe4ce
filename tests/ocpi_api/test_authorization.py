"""Tokens EMSPs pushed decide who may charge: whitelist types, and real-time authorization at a real loopback EMSP."""

import asyncio
import time
from datetime import UTC, datetime

import pytest
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
        partner=partner, country_code=partner.country_code, party_id=partner.party_id, uid=uid, type=token_type,
        contract_id=f"NL-EXM-C{uid}"[:36], issuer="Example", valid=valid, whitelist=whitelist,
        group_id="GROUP-1", last_updated=datetime(2026, 1, 1, tzinfo=UTC),
    )


def ask(uid, *, station="CP-AUTH", location_id="LOC-1", evse_uid="CP-AUTH-1", id_token_type=""):
    return partner_token_authorize(AuthorizationRequest(
        id_tag=uid, id_token_type=id_token_type, station_identity=station, location_id=location_id, evse_uid=evse_uid))


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
            "Accepted", "AUTH_REQUEST", "REF-12345")
        assert (result.source, result.contract_id, result.token_type, result.country_code, result.party_id,
                result.group_id) == (f"partner:{emsp_partner.pk}", "NL-EXM-CRT-ALLOWED", "RFID", "NL", "EXM", "GROUP-1")
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
            self, emsp, emsp_partner, settings):
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
            answers = {uid: (await cp.call(call16.Authorize(id_tag=uid))).id_tag_info["status"]
                       for uid in ("LIVE-OK", "LIVE-BLOCKED", "LIVE-SILENT")}
            start = await cp.call(call16.StartTransaction(connector_id=1, id_tag="LIVE-OK", meter_start=0,
                                                          timestamp="2026-11-20T10:00:00Z"))
            refused = await cp.call(call16.StartTransaction(connector_id=2, id_tag="LIVE-BLOCKED", meter_start=0,
                                                            timestamp="2026-11-20T10:00:00Z"))
            return answers, start, refused

    answers, start, refused = asyncio.run(scenario())
    assert answers == {"LIVE-OK": "Accepted", "LIVE-BLOCKED": "Blocked", "LIVE-SILENT": "Invalid"}
    assert start.id_tag_info["status"] == "Accepted" and refused.id_tag_info["status"] == "Blocked"
    tx = Transaction.objects.get(transaction_id=str(start.transaction_id))
    assert (tx.auth_status, tx.auth_source, tx.authorization_reference) == (
        "Accepted", f"partner:{partner.pk}", "AUTH-REF-LIVE")
    if hasattr(tx, "auth_method"):  # the gateway's new columns
        assert (tx.auth_method, tx.contract_id, tx.token_country_code, tx.token_party_id) == (
            "AUTH_REQUEST", "NL-EXM-CLIVE-OK", "NL", "EXM")
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
            await cp.call(call201.BootNotification(charging_station={"model": "M", "vendor_name": "V"},
                                                   reason="PowerUp"))
            credit = await cp.call(call201.Authorize(id_token={"id_token": "LIVE-NOCREDIT", "type": "ISO14443"}))
            app = await cp.call(call201.Authorize(id_token={"id_token": "LIVE-APP", "type": "Central"}))
            return credit.id_token_info["status"], app.id_token_info["status"]

    assert asyncio.run(scenario()) == ("NoCredit", "Accepted")
    assert "type=APP_USER" in next(r["path"] for r in authorize_calls(emsp) if "/LIVE-APP/" in r["path"])
