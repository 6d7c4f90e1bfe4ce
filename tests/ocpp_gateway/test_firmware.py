"""Firmware on a live daphne: an operator starts a campaign over the stations of one model, two per minute; the
stations get UpdateFirmware with a signed link of their own, a 1.6 charger downloads and installs the image, a 2.0.1
station fails to download it (an alert), the third waits for the next minute; the Firmware page shows the progress.
Links that are tampered with or expired are refused. A campaign keeps at most `max_concurrent` stations updating at
once, pauses itself (with an alert) when too many fail, and operators pause, resume and retry its failed stations."""

import asyncio
import re
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from cpo.dashboard.models import AuditLog
from cpo.models import Alert, ChargingStation
from ocpp_gateway.models import FirmwareCampaign, FirmwareImage, FirmwareUpdate
from ocpp_gateway.services.firmware import (
    firmware_campaign_failures,
    firmware_campaign_start,
    firmware_update_booted,
    firmware_updates_expire,
    firmware_url,
    station_firmware_status_record,
)
from tests.ocpp_gateway.chargers import Charger16, connected
from tests.ocpp_gateway.firmware_chargers import (
    FailingFirmwareCharger201,
    FirmwareCharger16,
    HoldingFirmwareCharger16,
)
from tests.support import StaffBrowser, await_until, in_thread, start_daphne_with_uploads, stop

IMAGE = b"\x7fFIRMWARE-2.1.0" + bytes(range(256)) * 40


@pytest.fixture(scope="module")
def fw_daphne(django_db_setup, django_db_blocker, uploads_dir):
    server = start_daphne_with_uploads("firmware", uploads_dir, OCPP_CALL_TIMEOUT="2")
    yield server
    stop(server)


@pytest.fixture
def image(settings, uploads_dir):
    settings.OCPP_UPLOADS_DIR = uploads_dir  # the same directory as the server's
    image = FirmwareImage(name="W1 firmware", version="2.1.0")
    image.file.save("w1-2.1.0.bin", ContentFile(IMAGE))
    return image


def statuses() -> dict[str, str]:
    return dict(FirmwareUpdate.objects.values_list("station__identity", "status"))


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_campaign_updates_the_stations_of_one_model_at_its_rate_and_tracks_what_each_reports(
    fw_daphne, station_factory, image
):
    secrets = {identity: station_factory(identity, evses=1)[1] for identity in ("FW-A", "FW-B", "FW-C", "FW-OTHER")}
    staff = StaffBrowser(fw_daphne)

    async def scenario():
        async with (
            connected(fw_daphne.ocpp_url("FW-A"), "FW-A", secrets["FW-A"], cls=FirmwareCharger16) as a,
            connected(
                fw_daphne.ocpp_url("FW-B"), "FW-B", secrets["FW-B"], version="2.0.1", cls=FailingFirmwareCharger201
            ) as b,
            connected(fw_daphne.ocpp_url("FW-C"), "FW-C", secrets["FW-C"], cls=FirmwareCharger16) as c,
            connected(fw_daphne.ocpp_url("FW-OTHER"), "FW-OTHER", secrets["FW-OTHER"], cls=Charger16) as other,
        ):
            await a.call(call16.BootNotification(charge_point_model="W1", charge_point_vendor="ACME"))
            await b.call(
                call201.BootNotification(charging_station={"model": "W1", "vendor_name": "ACME"}, reason="PowerUp")
            )
            await other.call(call16.BootNotification(charge_point_model="X9", charge_point_vendor="ACME"))
            await c.call(call16.BootNotification(charge_point_model="W1", charge_point_vendor="ACME"))
            await in_thread(ChargingStation.objects.filter(identity="FW-C").update, last_seen=None)
            page = await asyncio.to_thread(
                staff.post,
                reverse("dashboard:firmware-campaign-start"),
                {"image": image.pk, "name": "W1 to 2.1.0", "model": "W1", "rate": "2"},
            )
            await await_until(lambda: statuses().get("FW-A") == "installed", timeout=10, what="FW-A did not install")
            await await_until(
                lambda: statuses().get("FW-B") == "failed", timeout=10, what="FW-B's failure was not recorded"
            )
            progress = await asyncio.to_thread(staff.page, reverse("dashboard:firmware"))
            return page, a, b, c, progress

    page, a, b, c, progress = asyncio.run(scenario())
    assert "Campaign W1 to 2.1.0 started: 3 stations, 2 per minute" in page
    # Two per minute: the first two stations (by id) got it, the third waits for the next minute.
    assert statuses() == {"FW-A": "installed", "FW-B": "failed", "FW-C": "pending"}
    assert c.updates == [] and a.downloaded == [IMAGE]
    [sent_a] = a.updates
    assert sent_a["location"].startswith(f"{fw_daphne.http_url}/ocpp-firmware/")
    assert re.search(r"/ocpp-firmware/[^/]+/w1-2[^/]*\.bin$", sent_a["location"])  # the image's file name
    [sent_b] = b.updates
    assert sent_b["request_id"] == FirmwareUpdate.objects.get(station__identity="FW-B").pk
    assert sent_b["firmware"]["location"] != sent_a["location"]  # a link of its own per station
    assert FirmwareUpdate.objects.get(station__identity="FW-B").charger_status == "DownloadFailed"
    assert Alert.objects.filter(kind="firmware_failed", subject="FW-B", resolved_at__isnull=True).exists()
    shown = re.sub(r"<[^>]+>", "", progress)
    assert "1 installed · 1 pending · 0 under way · 1 failed · 0 rejected · 0 no answer" in shown
    campaign = FirmwareCampaign.objects.get()
    assert campaign.status == "running"
    audited = set(AuditLog.objects.values_list("username", "action"))
    assert {
        ("staff-operator", "FirmwareCampaignStart"),
        (f"platform: firmware campaign {campaign.pk}", "UpdateFirmware"),
    } <= audited
    assert not any("ocpp-firmware" in str(p) for p in AuditLog.objects.values_list("payload", flat=True))


@pytest.mark.django_db
def test_a_firmware_link_that_was_tampered_with_or_expired_is_refused(client, station_factory, image, settings):
    station, _ = station_factory("FW-LINK", evses=0)
    url = firmware_url(image=image, station_pk=station.pk).removeprefix(settings.OCPP_UPLOAD_BASE_URL)
    answer = client.get(url)
    assert answer.status_code == 200 and b"".join(answer.streaming_content) == IMAGE
    token = url.split("/")[2]
    assert client.get(url.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))).status_code == 404
    settings.OCPP_FIRMWARE_LINK_HOURS = -1
    assert client.get(url).status_code == 404


def campaign_url(campaign: FirmwareCampaign, operation: str = "") -> str:
    if operation:
        return reverse("dashboard:firmware-campaign-control", args=[campaign.pk, operation])
    return reverse("dashboard:firmware-campaign", args=[campaign.pk])


def boot16(model: str):
    return call16.BootNotification(charge_point_model=model, charge_point_vendor="ACME")


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_campaign_keeps_at_most_max_concurrent_stations_updating_and_an_operator_pauses_and_resumes_it(
    fw_daphne, station_factory, image
):
    """Three stations, ten per minute but two at once: the third waits while two install; paused, nothing new goes
    out; resumed after one installed, the third is sent (and still no more than two update at once)."""
    secrets = {identity: station_factory(identity, evses=1)[1] for identity in ("CAP-1", "CAP-2", "CAP-3")}
    staff = StaffBrowser(fw_daphne)

    async def scenario():
        chargers = [
            connected(fw_daphne.ocpp_url(identity), identity, secret, cls=HoldingFirmwareCharger16)
            for identity, secret in secrets.items()
        ]
        async with chargers[0] as one, chargers[1] as two, chargers[2] as three:
            for charger in (one, two, three):
                await charger.call(boot16("CAP"))
            started = await asyncio.to_thread(
                staff.post,
                reverse("dashboard:firmware-campaign-start"),
                {"image": image.pk, "name": "CAP rollout", "model": "CAP", "rate": "10", "max_concurrent": "2"},
            )
            await await_until(
                lambda: [statuses().get(i) for i in ("CAP-1", "CAP-2")] == ["installing", "installing"],
                timeout=10,
                what="the first two did not start installing",
            )
            sent_while_two_installed = len(three.updates)
            campaign = await in_thread(FirmwareCampaign.objects.get)
            paused = await asyncio.to_thread(staff.post, campaign_url(campaign, "pause"), {})
            one.release.set()
            await await_until(lambda: statuses()["CAP-1"] == "installed", timeout=10, what="CAP-1 did not install")
            sent_while_paused = len(three.updates)
            resumed = await asyncio.to_thread(staff.post, campaign_url(campaign, "resume"), {})
            await await_until(
                lambda: statuses()["CAP-3"] == "installing", timeout=10, what="CAP-3 was not sent the update on resume"
            )
            updating_at_once = sorted((await in_thread(statuses)).values())
            for charger in (two, three):
                charger.release.set()
            await await_until(lambda: set(statuses().values()) == {"installed"}, timeout=10, what="not all installed")
            return campaign, started, sent_while_two_installed, paused, sent_while_paused, resumed, updating_at_once

    campaign, started, sent_while_two_installed, paused, sent_while_paused, resumed, updating_at_once = asyncio.run(
        scenario()
    )
    assert "Campaign CAP rollout started: 3 stations, 10 per minute" in started
    assert "at most 2 updating at once" in started  # the campaign's page
    assert sent_while_two_installed == 0 and sent_while_paused == 0
    assert "Campaign CAP rollout paused: updates under way go on, no new ones" in paused
    assert "paused by staff-operator" in paused
    assert "Campaign CAP rollout resumed" in resumed
    assert updating_at_once == ["installed", "installing", "installing"]
    assert FirmwareCampaign.objects.get().status_reason == ""
    audited = set(AuditLog.objects.filter(username="staff-operator").values_list("action", "ok"))
    assert {("FirmwareCampaignStart", True), ("FirmwareCampaignPause", True), ("FirmwareCampaignResume", True)} <= (
        audited
    )


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_campaign_whose_stations_fail_pauses_itself_with_an_alert_and_its_failed_stations_can_be_retried(
    fw_daphne, station_factory, image
):
    """Pause at two failures: the two stations of the first minute fail to download, the campaign pauses itself and
    raises firmware_failed; the good station waits. Resumed, the alert is resolved and the next minute goes out: the
    good station installs, a failed one fails again and the campaign pauses again. Retrying the failed stations makes
    them pending with their attempts reset; only operators may do any of it."""
    secrets = {identity: station_factory(identity, evses=1)[1] for identity in ("BAD-1", "BAD-2", "GOOD-1")}
    staff = StaffBrowser(fw_daphne)
    viewer = StaffBrowser(fw_daphne, role="viewer")

    async def scenario():
        async with (
            connected(
                fw_daphne.ocpp_url("BAD-1"), "BAD-1", secrets["BAD-1"], version="2.0.1", cls=FailingFirmwareCharger201
            ) as bad1,
            connected(
                fw_daphne.ocpp_url("BAD-2"), "BAD-2", secrets["BAD-2"], version="2.0.1", cls=FailingFirmwareCharger201
            ) as bad2,
            connected(fw_daphne.ocpp_url("GOOD-1"), "GOOD-1", secrets["GOOD-1"], cls=FirmwareCharger16) as good,
        ):
            for bad in (bad1, bad2):
                await bad.call(
                    call201.BootNotification(charging_station={"model": "W2", "vendor_name": "ACME"}, reason="PowerUp")
                )
            await good.call(boot16("W2"))
            await asyncio.to_thread(
                staff.post,
                reverse("dashboard:firmware-campaign-start"),
                {"image": image.pk, "name": "W2 rollout", "model": "W2", "rate": "2", "pause_failures": "2"},
            )
            campaign = await in_thread(FirmwareCampaign.objects.get)
            await await_until(
                lambda: FirmwareCampaign.objects.get().status == "paused",
                timeout=10,
                what="the campaign did not pause itself",
            )
            first_alert = await in_thread(
                Alert.objects.filter(kind="firmware_failed", subject__startswith="firmware").get
            )
            page = await asyncio.to_thread(staff.page, campaign_url(campaign))
            refused = await asyncio.to_thread(
                viewer.http.post, campaign_url(campaign, "resume"), data={"csrfmiddlewaretoken": viewer.csrf}
            )
            await asyncio.to_thread(staff.post, campaign_url(campaign, "resume"), {})
            await await_until(
                lambda: statuses()["GOOD-1"] == "installed", timeout=10, what="GOOD-1 was not updated after resume"
            )
            await await_until(
                lambda: FirmwareCampaign.objects.get().status == "paused",
                timeout=10,
                what="the campaign did not pause again",
            )
            await await_until(
                lambda: statuses()["BAD-1"] == "failed", timeout=10, what="BAD-1's second failure was not recorded"
            )
            attempts = await in_thread(
                lambda: dict(FirmwareUpdate.objects.values_list("station__identity", "attempts"))
            )
            retried = await asyncio.to_thread(staff.post, campaign_url(campaign, "retry"), {})
            return campaign, first_alert, page, refused, attempts, retried, bad1, bad2, good

    campaign, first_alert, page, refused, attempts, retried, bad1, bad2, good = asyncio.run(scenario())
    assert first_alert.subject == f"firmware campaign {campaign.pk}"
    assert "paused itself: 2 stations failed (at least 2)" in first_alert.message
    assert first_alert.message.startswith("firmware campaign W2 rollout")
    first_alert.refresh_from_db()
    assert first_alert.resolved_at is not None  # resolved on resume; the second pause opened a new one
    assert Alert.objects.filter(subject=first_alert.subject, resolved_at__isnull=True).count() == 1
    # The campaign's page: failures first, each with the charger's last status and its attempts.
    shown = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "paused itself: 2 stations failed (at least 2)" in shown
    assert re.findall(r'data-station="([^"]+)"', page) == ["BAD-1", "BAD-2", "GOOD-1"]
    assert "BAD-1 Failed DownloadFailed 1 of 3 Accepted" in shown
    assert "GOOD-1 Pending — 0 of 3" in shown
    assert refused.status_code == 403
    assert len(bad1.updates) == 2 and len(bad2.updates) == 1 and len(good.updates) == 1
    assert attempts == {"BAD-1": 2, "BAD-2": 1, "GOOD-1": 1}
    assert "Campaign W2 rollout: 2 failed stations will be sent the update again" in retried
    # Retried: pending with their attempts reset; the campaign stays paused until an operator resumes it.
    assert {(i, s) for i, s in statuses().items()} == {
        ("BAD-1", "pending"),
        ("BAD-2", "pending"),
        ("GOOD-1", "installed"),
    }
    assert set(FirmwareUpdate.objects.filter(status="pending").values_list("attempts", flat=True)) == {0}
    assert FirmwareCampaign.objects.get().status == "paused"
    audited = list(AuditLog.objects.filter(action__startswith="FirmwareCampaign").values_list("username", "action"))
    assert ("staff-operator", "FirmwareCampaignRetry") in audited and (
        "staff-operator",
        "FirmwareCampaignResume",
    ) in audited
    assert not any(user == "staff-viewer" for user, _ in audited)


@pytest.mark.django_db
def test_a_campaign_pauses_itself_when_its_share_of_failures_reaches_the_threshold(station_factory, image):
    """Pause at 50 %: one failure among three installed is 25 %, a second one is 40 %, a third 50 %."""
    stations = [station_factory(f"PCT-{n}", evses=0)[0] for n in range(6)]
    ChargingStation.objects.update(model="P1")
    campaign = firmware_campaign_start(image=image, name="P1", actor="t", rate=10, model="P1", pause_failure_percent=50)
    updates = {u.station_id: u for u in FirmwareUpdate.objects.filter(campaign=campaign)}
    FirmwareUpdate.objects.filter(station__in=stations[:3]).update(status="installed")
    FirmwareUpdate.objects.filter(station__in=stations[3:]).update(status="installing")
    for n, expected in ((3, "running"), (4, "running"), (5, "paused")):
        station_firmware_status_record(
            station_pk=stations[n].pk, status="InstallationFailed", request_id=updates[stations[n].pk].pk
        )
        campaign.refresh_from_db()
        assert campaign.status == expected, n
    assert campaign.status_reason == "paused itself: 3 stations failed (at least 50% of the 6 finished)"
    assert Alert.objects.filter(kind="firmware_failed", subject=f"firmware campaign {campaign.pk}").exists()


@pytest.mark.django_db
def test_a_station_silent_about_its_update_frees_its_campaign_place_and_is_tried_again(
    station_factory, image, settings
):
    """A charger that took the update and then said nothing for OCPP_FIRMWARE_SILENT_MINUTES (lost the download,
    rebooted without a status) no longer counts as updating: the campaign's one place goes to the next station, and
    the silent one is tried again later, without counting as a failure of the image."""
    settings.OCPP_FIRMWARE_SILENT_MINUTES = 60
    stations = [station_factory(f"SIL-{n}", evses=0)[0] for n in range(2)]
    ChargingStation.objects.update(model="S1", online=True)
    campaign = firmware_campaign_start(image=image, name="S1", actor="t", rate=10, model="S1", max_concurrent=1)
    silent, waiting = (FirmwareUpdate.objects.get(campaign=campaign, station=s) for s in stations)
    FirmwareUpdate.objects.filter(pk=silent.pk).update(status="downloading", attempts=1, sent_at=timezone.now())
    station_firmware_status_record(station_pk=stations[0].pk, status="Downloading", request_id=silent.pk)

    assert firmware_updates_expire(now=timezone.now() + timedelta(minutes=59)) == 0  # still within the hour
    assert firmware_updates_expire(now=timezone.now() + timedelta(minutes=61)) == 1
    silent.refresh_from_db()
    assert silent.status == "no_answer" and silent.answer == "no status for 60 min"
    assert firmware_campaign_failures(campaign=campaign) == (0, 0)  # says nothing about the image
    room_for = FirmwareUpdate.objects.filter(campaign=campaign, status__in=("sent", "downloading", "installing"))
    assert not room_for.exists()  # the place is free for the waiting station


@pytest.mark.django_db
def test_a_station_that_boots_with_the_new_version_has_installed_it(station_factory, image):
    """Many 1.6 chargers reboot into the new firmware without a FirmwareStatusNotification Installed: the boot's
    firmwareVersion says it."""
    station, _ = station_factory("BOOTED-1", evses=0)
    update = FirmwareUpdate.objects.create(station=station, image=image, status="installing", attempts=1)
    ChargingStation.objects.filter(pk=station.pk).update(firmware_version="0.9")
    assert firmware_update_booted(station_pk=station.pk) == 0  # an older version: still under way
    ChargingStation.objects.filter(pk=station.pk).update(firmware_version=image.version)
    assert firmware_update_booted(station_pk=station.pk) == 1
    update.refresh_from_db()
    assert update.status == "installed" and update.charger_status == "booted with it"
