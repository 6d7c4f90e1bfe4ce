"""Firmware on a live daphne: an operator starts a campaign over the stations of one model, two per minute; the
stations get UpdateFirmware with a signed link of their own, a 1.6 charger downloads and installs the image, a 2.0.1
station fails to download it (an alert), the third waits for the next minute; the Firmware page shows the progress.
Links that are tampered with or expired are refused."""

import asyncio
import re
import time

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from cpo.dashboard.models import AuditLog
from cpo.models import Alert, ChargingStation
from ocpp_gateway.models import FirmwareCampaign, FirmwareImage, FirmwareUpdate
from ocpp_gateway.services.firmware import firmware_url
from tests.ocpp_gateway.chargers import Charger16, connected
from tests.ocpp_gateway.firmware_chargers import FailingFirmwareCharger201, FirmwareCharger16
from tests.support import StaffBrowser, in_thread, listening_socket, start_daphne, stop

IMAGE = b"\x7fFIRMWARE-2.1.0" + bytes(range(256)) * 40


@pytest.fixture(scope="module")
def uploads_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("firmware-uploads")


@pytest.fixture(scope="module")
def fw_daphne(django_db_setup, django_db_blocker, uploads_dir):
    listener = listening_socket()
    port = listener.getsockname()[1]
    server = start_daphne(
        "firmware",
        listener=listener,
        CELERY_TASK_ALWAYS_EAGER="1",
        OCPP_CALL_TIMEOUT="2",
        OCPP_UPLOADS_DIR=str(uploads_dir),
        OCPP_UPLOAD_BASE_URL=f"http://127.0.0.1:{port}",
    )
    yield server
    stop(server)


@pytest.fixture
def image(settings, uploads_dir):
    settings.OCPP_UPLOADS_DIR = uploads_dir  # the same directory as the server's
    image = FirmwareImage(name="W1 firmware", version="2.1.0")
    image.file.save("w1-2.1.0.bin", ContentFile(IMAGE))
    return image


def wait(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


async def await_for(predicate, what: str, timeout: float = 10.0) -> None:
    await in_thread(wait, predicate=predicate, what=what, timeout=timeout)


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
            await await_for(lambda: statuses().get("FW-A") == "installed", "FW-A did not install")
            await await_for(lambda: statuses().get("FW-B") == "failed", "FW-B's failure was not recorded")
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
