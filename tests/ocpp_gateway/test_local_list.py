"""Local authorization lists on a live daphne: a station gets the tokens it may accept offline (our cards, partners'
tokens whose whitelist allows it) as a Full SendLocalList, then Differential updates when a partner changes a token,
the whole list again when its version is not ours, never more than it can hold nor more per message than it takes
(entries and bytes); refusals and silence are shown."""

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from cpo.dashboard.models import AuditLog
from cpo.models import Token
from ocpi_api.models import PartnerToken
from ocpp_gateway.models import LocalAuthList, LocalAuthListEntry, StationVariable
from ocpp_gateway.services.device_model import report_data_reported, station_variables_record
from ocpp_gateway.services.local_list import Limits, local_list_limits
from tests.ocpi_api.factories import make_partner
from tests.ocpp_gateway.chargers import connected
from tests.ocpp_gateway.local_list_chargers import ListCharger16, ListCharger201, SmallMessagesCharger201, limit
from tests.support import await_until, in_thread, start_daphne, stop

PARTNER_TOKEN = "partner-token-local-lists"


@pytest.fixture(scope="module")
def list_daphne(django_db_setup, django_db_blocker):
    """Tasks in-process (also on Redis, where no Celery worker runs in these tests), a short debounce and call
    timeout."""
    server = start_daphne(
        "local-list",
        CELERY_TASK_ALWAYS_EAGER="1",
        OCPP_LOCAL_LIST_DEBOUNCE_SECONDS="0.3",
        OCPP_CALL_TIMEOUT="2",
    )
    yield server
    stop(server)


pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def tokens(db):
    """Two cards of ours (one blocked, one with a uid too long for 1.6) and NL*EXM's tokens, one of each whitelist."""
    Token.objects.create(uid="OWN-OK")
    Token.objects.create(uid="OWN-BLOCKED", valid=False)
    Token.objects.create(uid="OWN-WITH-A-VERY-LONG-UID-0001")
    partner = make_partner(token=PARTNER_TOKEN)
    for age, (uid, whitelist) in enumerate(
        [("P-ALWAYS", "ALWAYS"), ("P-ALLOWED", "ALLOWED"), ("P-OFFLINE", "ALLOWED_OFFLINE"), ("P-NEVER", "NEVER")]
    ):
        PartnerToken.objects.create(
            partner=partner,
            country_code="NL",
            party_id="EXM",
            uid=uid,
            type="RFID",
            contract_id=f"NL-EXM-{uid}",
            issuer="EXM",
            valid=True,
            whitelist=whitelist,
            last_updated=datetime(2026, 11, 1, tzinfo=UTC) - timedelta(days=age),
        )
    return partner


def partner_call(server, method: str, uid: str, body: dict) -> None:
    """NL*EXM changes one of its tokens through OCPI (on the live server, which then updates the lists)."""
    response = httpx.request(
        method,
        f"{server.http_url}/ocpi/2.2.1/tokens/NL/EXM/{uid}",
        json={"last_updated": now_iso(), **body},
        headers={"Authorization": "Token " + base64.b64encode(PARTNER_TOKEN.encode()).decode()},
        timeout=10,
    )
    assert response.status_code in (200, 201), response.text
    assert response.json()["status_code"] == 1000, response.text


def local_list(identity: str) -> LocalAuthList:
    return LocalAuthList.objects.get(station__identity=identity)


def state(identity: str) -> str:
    return LocalAuthList.objects.filter(station__identity=identity).values_list("state", flat=True).first() or ""


def held(identity: str) -> dict[str, str]:
    return dict(LocalAuthListEntry.objects.filter(station__identity=identity).values_list("id_tag", "status"))


EXPECTED = {
    "OWN-OK": "Accepted",
    "P-ALWAYS": "Accepted",
    "P-ALLOWED": "Accepted",
    "P-OFFLINE": "Accepted",
    "OWN-BLOCKED": "Blocked",
}


def boot16(cp):
    return cp.call(call16.BootNotification(charge_point_model="W1", charge_point_vendor="ACME"))


def boot201(cp):
    return cp.call(call201.BootNotification(charging_station={"model": "W2", "vendor_name": "ACME"}, reason="PowerUp"))


def test_a_1_6_station_gets_the_whole_list_on_first_boot_then_differential_updates_as_a_partner_changes_tokens(
    list_daphne, station_factory, tokens
):
    _, secret = station_factory("LL16-A", evses=1)

    async def scenario():
        url = list_daphne.ocpp_url("LL16-A")
        async with connected(url, "LL16-A", secret, cls=ListCharger16) as cp:
            assert (await boot16(cp)).status == "Accepted"
            await await_until(lambda: cp.local_list.version == 1, timeout=10, what="no full list after the first boot")
            full = cp.local_list.updates[0]
            # The partner blocks one token and lets another be whitelisted: one differential update each.
            await asyncio.to_thread(partner_call, list_daphne, "PATCH", "P-OFFLINE", {"valid": False})
            await await_until(
                lambda: cp.local_list.version == 2, timeout=10, what="no differential update after the PATCH"
            )
            await asyncio.to_thread(
                partner_call,
                list_daphne,
                "PUT",
                "P-NEVER",
                {
                    "country_code": "NL",
                    "party_id": "EXM",
                    "uid": "P-NEVER",
                    "type": "RFID",
                    "contract_id": "NL-EXM-P-NEVER",
                    "issuer": "EXM",
                    "valid": True,
                    "whitelist": "ALLOWED_OFFLINE",
                },
            )
            await await_until(
                lambda: cp.local_list.version == 3, timeout=10, what="no differential update after the PUT"
            )
            # A PUT that changes nothing a list holds sends nothing.
            await asyncio.to_thread(
                partner_call,
                list_daphne,
                "PATCH",
                "P-ALWAYS",
                {"visual_number": "1234"},
            )
            await asyncio.sleep(1.0)
            return full, cp.local_list

    full, charger_list = asyncio.run(scenario())
    assert full == ("Full", 1, list(EXPECTED.items()))
    assert charger_list.updates[1:] == [
        ("Differential", 2, [("P-OFFLINE", "Blocked")]),
        ("Differential", 3, [("P-NEVER", "Accepted")]),
    ]
    expected = {**EXPECTED, "P-OFFLINE": "Blocked", "P-NEVER": "Accepted"}
    assert charger_list.entries == expected
    assert held("LL16-A") == expected
    row = local_list("LL16-A")
    assert (row.version, row.state, row.entries_count) == (3, "in_sync", 6)
    sent = list(
        AuditLog.objects.filter(identity="LL16-A", action__in=["SendLocalList", "GetLocalListVersion"])
        .order_by("id")
        .values_list("username", "action", "ok")
    )
    assert sent == [
        ("platform: local list", "GetLocalListVersion", True),
        ("platform: local list", "SendLocalList", True),
        ("platform: local list", "SendLocalList", True),
        ("platform: local list", "SendLocalList", True),
    ]


class LimitedCharger16(ListCharger16):
    keys = {"LocalAuthListMaxLength": "3", "SendLocalListMaxLength": "2", "LocalAuthListEnabled": "true"}


def test_a_station_that_holds_three_tokens_two_per_message_gets_the_first_three_in_two_messages(
    list_daphne, station_factory, tokens
):
    _, secret = station_factory("LL16-LIMIT", evses=1)

    async def scenario():
        url = list_daphne.ocpp_url("LL16-LIMIT")
        async with connected(url, "LL16-LIMIT", secret, cls=LimitedCharger16) as cp:
            await boot16(cp)
            await await_until(
                lambda: cp.local_list.version == 2, timeout=10, what="the list was not sent in two messages"
            )
            await await_until(lambda: state("LL16-LIMIT") == "in_sync", timeout=10, what="the sync was not recorded")
            return cp.local_list

    charger_list = asyncio.run(scenario())
    assert [(kind, version, len(items)) for kind, version, items in charger_list.updates] == [
        ("Full", 1, 2),
        ("Differential", 2, 1),
    ]
    assert charger_list.entries == {"OWN-OK": "Accepted", "P-ALWAYS": "Accepted", "P-ALLOWED": "Accepted"}
    row = local_list("LL16-LIMIT")
    assert (row.version, row.entries_count, row.wanted_count, row.max_entries) == (2, 3, 5, 3)


def test_a_2_0_1_station_that_lost_its_list_gets_it_whole_again_when_it_boots(list_daphne, station_factory, tokens):
    _, secret = station_factory("LL201-A", evses=1)

    async def scenario():
        url = list_daphne.ocpp_url("LL201-A")
        async with connected(url, "LL201-A", secret, version="2.0.1", cls=ListCharger201) as cp:
            assert (await boot201(cp)).status == "Accepted"
            await await_until(lambda: cp.local_list.version == 1, timeout=10, what="no full list after the first boot")
            await asyncio.to_thread(partner_call, list_daphne, "PATCH", "P-ALWAYS", {"valid": False})
            await await_until(
                lambda: cp.local_list.version == 2, timeout=10, what="no differential update after the PATCH"
            )
            # The station is reset to its factory settings: no list, version 0. It boots again.
            cp.local_list.version, cp.local_list.entries = 0, {}
            await boot201(cp)
            await await_until(
                lambda: cp.local_list.version == 3, timeout=10, what="the list was not sent again after the mismatch"
            )
            await await_until(lambda: state("LL201-A") == "in_sync", timeout=10, what="the repair was not recorded")
            return cp.local_list, cp.types

    charger_list, types = asyncio.run(scenario())
    assert [(kind, version) for kind, version, _ in charger_list.updates] == [
        ("Full", 1),
        ("Differential", 2),
        ("Full", 3),
    ]
    expected = {**EXPECTED, "P-ALWAYS": "Blocked", "OWN-WITH-A-VERY-LONG-UID-0001": "Accepted"}
    assert charger_list.entries == expected  # 2.0.1 idTokens may be 36 characters long
    assert set(types.values()) == {"ISO14443"}
    assert (local_list("LL201-A").version, local_list("LL201-A").state) == (3, "in_sync")


def test_a_station_that_refuses_or_never_answers_shows_it_and_gets_the_whole_list_when_it_boots_again(
    list_daphne, station_factory, tokens
):
    _, secret = station_factory("LL16-NO", evses=1)

    async def scenario():
        url = list_daphne.ocpp_url("LL16-NO")
        async with connected(url, "LL16-NO", secret, cls=ListCharger16) as cp:
            cp.local_list.answer = "Failed"
            await boot16(cp)
            await await_until(lambda: state("LL16-NO") == "failed", timeout=10, what="a refusal was not recorded")
            failed = await in_thread(local_list, identity="LL16-NO")
            cp.local_list.answer, cp.local_list.silent = "Accepted", True
            await boot16(cp)
            await await_until(lambda: state("LL16-NO") == "no_answer", timeout=15, what="silence was not recorded")
            silent = await in_thread(local_list, identity="LL16-NO")
            cp.local_list.silent = False
            await boot16(cp)
            await await_until(lambda: state("LL16-NO") == "in_sync", timeout=15, what="not repaired on the next boot")
            return failed, silent, cp.local_list

    failed, silent, charger_list = asyncio.run(scenario())
    assert (failed.version, failed.last_status) == (0, "Failed")
    assert (silent.version, silent.last_status) == (0, "timeout")
    assert charger_list.entries == EXPECTED
    assert charger_list.updates[-1][:2] == ("Full", 1)
    errors = list(
        AuditLog.objects.filter(identity="LL16-NO", action="SendLocalList", ok=False).values_list("error", flat=True)
    )
    assert len(errors) == 1 and errors[0].startswith("timeout")


@pytest.mark.django_db(transaction=True)
def test_blocking_one_of_our_cards_marks_every_list_for_a_differential_update(station_factory, eager):
    """A card blocked in the admin (any save of cpo.Token) makes every station's list due; the sync itself is the
    debounced task's (here in-process, for an offline station: it waits for the station's next boot)."""
    station, _ = station_factory("LL-OWN", evses=0)
    card = Token.objects.create(uid="OWN-CARD")
    LocalAuthList.objects.create(station=station, version=3, state="in_sync", dirty=False, full_wanted=False)
    card.valid = False
    card.save()
    row = LocalAuthList.objects.get(station=station)
    assert (row.dirty, row.state, row.version) == (True, "in_sync", 3)


@pytest.mark.django_db
def test_a_2_0_1_stations_limits_come_from_its_device_model_report(station_factory):
    """LocalAuthListCtrlr.Entries' maxLimit is how many it holds, ItemsPerMessage how many one message may carry."""
    station, _ = station_factory("LL201-LIMITS", evses=0)
    station.ocpp_version = "2.0.1"
    report = [
        {
            "component": {"name": "LocalAuthListCtrlr"},
            "variable": {"name": name},
            "variable_attribute": [{"type": "Actual", "value": value, "mutability": "ReadOnly"}],
            "variable_characteristics": {"data_type": "integer", "supports_monitoring": False, **extra},
        }
        for name, value, extra in [
            ("Entries", "0", {"max_limit": 250}),
            ("ItemsPerMessage", "40", {}),
            ("Enabled", "true", {}),
        ]
    ]
    station_variables_record(station_pk=station.pk, reported=report_data_reported(report))
    assert local_list_limits(station=station) == Limits(
        supported=True, enabled=True, max_entries=250, per_message=40, bytes_per_message=None
    )
    StationVariable.objects.filter(station=station, variable="Enabled").update(value="false")
    assert not local_list_limits(station=station).enabled


class SmallLocalListMessages201(SmallMessagesCharger201):
    limits = [
        limit("LocalAuthListCtrlr", "ItemsPerMessage", 5),
        limit("LocalAuthListCtrlr", "BytesPerMessage", 330),
    ]


def test_a_2_0_1_station_that_takes_small_messages_gets_a_full_update_then_differential_ones_each_within_its_limits(
    list_daphne, station_factory, tokens
):
    """Six entries, at most 330 bytes per SendLocalList (about two entries): a Full update, then Differential ones;
    every message fits (the station refuses one that does not) and the list ends whole, in sync."""
    _, secret = station_factory("LL201-SMALL", evses=1)

    async def scenario():
        url = list_daphne.ocpp_url("LL201-SMALL")
        async with connected(url, "LL201-SMALL", secret, version="2.0.1", cls=SmallLocalListMessages201) as cp:
            await boot201(cp)
            await await_until(lambda: state("LL201-SMALL") == "in_sync", timeout=15, what="the list was not sent")
            return cp

    cp = asyncio.run(scenario())
    sent = [frame for frame in cp.frames if frame[0] == "SendLocalList"]
    assert len(sent) >= 3 and cp.oversized == []
    assert all(size <= 330 and entries <= 5 for _, size, entries in sent), sent
    kinds = [(kind, version) for kind, version, _ in cp.local_list.updates]
    assert kinds == [("Full", 1)] + [("Differential", n) for n in range(2, len(sent) + 1)]
    assert cp.local_list.entries == {**EXPECTED, "OWN-WITH-A-VERY-LONG-UID-0001": "Accepted"}
    assert held("LL201-SMALL") == cp.local_list.entries
    assert local_list("LL201-SMALL").version == len(sent)
