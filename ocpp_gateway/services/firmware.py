"""Firmware (2.0.1 block L; 1.6 Firmware Management and the security extension's signed firmware): updates of one
station or campaigns over many, the signed expiring links stations download images from, and what stations report.

An image staff uploaded is served at OCPP_UPLOAD_BASE_URL + `/ocpp-firmware/<signed token>/<file name>`: the token
names the image and the station, is signed with the SECRET_KEY and expires after OCPP_FIRMWARE_LINK_HOURS (an image
referenced by URL is given as it is). A campaign sends UpdateFirmware to `rate` stations per minute (beat advances
it), offline ones when they are back, failed ones again up to `max_attempts`; each station's
FirmwareStatusNotification moves its update along (2.0.1 and signed 1.6 by requestId, our update's pk; 1.6 unsigned
has none: the station's latest open update)."""

import logging
from datetime import timedelta
from pathlib import PurePosixPath

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from cpo.alerts import alert_raise, alert_resolve
from cpo.models import AlertKind, ChargingStation, Location, RegistrationStatus
from ocpp_gateway.commands import CommandError
from ocpp_gateway.models import FirmwareCampaign, FirmwareImage, FirmwareUpdate
from ocpp_gateway.requests import UpdateFirmware
from ocpp_gateway.services.command_audit import command_send_audited

logger = logging.getLogger(__name__)

Status = FirmwareUpdate.Status
# FirmwareStatusNotification statuses that end an update unsuccessfully (1.6 FirmwareStatus, 2.0.1
# FirmwareStatusEnumType), and the one that ends it well.
FIRMWARE_FAILED = {"DownloadFailed", "InstallationFailed", "InstallVerificationFailed", "InvalidSignature"}
FIRMWARE_INSTALLED = "Installed"
DOWNLOADING = {"Downloading", "DownloadScheduled", "DownloadPaused", "Downloaded", "SignatureVerified"}
INSTALLING = {"Installing", "InstallRebooting", "InstallScheduled"}
OPEN = (Status.SENT, Status.DOWNLOADING, Status.INSTALLING)
RETRIED = (Status.FAILED, Status.REJECTED, Status.NO_ANSWER)
LINK_SALT = "ocpp_gateway.firmware.link"
DOWNLOAD_PATH = "/ocpp-firmware/"


class FirmwareLinkRefused(Exception):
    """An unknown, tampered or expired download link (HTTP 404)."""


# --- Links -----------------------------------------------------------------------------------------------------------


def firmware_url(*, image: FirmwareImage, station_pk: int) -> str:
    """Where the station fetches the image: a signed link of its own that expires, or the image's own URL."""
    if image.location:
        return image.location
    token = signing.dumps({"i": image.pk, "s": station_pk}, salt=LINK_SALT)
    return (
        f"{settings.OCPP_UPLOAD_BASE_URL}{DOWNLOAD_PATH}{token}/{PurePosixPath(image.file.name or 'firmware.bin').name}"
    )


def firmware_image_for_link(*, token: str) -> FirmwareImage:
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=timedelta(hours=settings.OCPP_FIRMWARE_LINK_HOURS))
    except signing.BadSignature as exc:  # SignatureExpired is one
        raise FirmwareLinkRefused(str(exc)) from exc
    image = FirmwareImage.objects.filter(pk=data.get("i")).first()
    if image is None or not image.file:
        raise FirmwareLinkRefused("no such image")
    return image


# --- Sending ---------------------------------------------------------------------------------------------------------


def _send(*, update: FirmwareUpdate, actor: str) -> FirmwareUpdate:
    """Send one update (its attempt already counted) and record the station's answer."""
    station, image = update.station, update.image
    request = UpdateFirmware(
        location=firmware_url(image=image, station_pk=station.pk),
        request_id=update.pk,
        retrieve_date=timezone.now(),
        signing_certificate=image.signing_certificate,
        signature=image.signature,
    )
    _, payload = request.for_version(station.ocpp_version)
    shown = {**payload, "image": str(image)}  # the signed link is a credential: the audit log names the image
    shown.pop("location", None)
    if "firmware" in shown:
        shown["firmware"] = {k: v for k, v in shown["firmware"].items() if k in ("retrieveDateTime",)}
    answered = command_send_audited(station=station, request=request, actor=actor, audit_payload=shown)
    if answered.error is not None:
        status = {CommandError.OFFLINE: Status.PENDING, CommandError.TIMEOUT: Status.NO_ANSWER}.get(
            answered.error.reason, Status.REJECTED
        )
        answer = answered.status
    else:
        answer = UpdateFirmware.status(answered.answer or {})
        status = Status.SENT if answer in ("Accepted", "AcceptedCanceled") else Status.REJECTED
    # A status notification may have overtaken the answer: its status wins.
    FirmwareUpdate.objects.filter(pk=update.pk).update(answer=answer[:100])
    FirmwareUpdate.objects.filter(pk=update.pk, status=update.status).update(status=status)
    update.refresh_from_db()
    return update


def _claim(update: FirmwareUpdate) -> bool:
    """Count an attempt, unless another process took this update first."""
    return bool(
        FirmwareUpdate.objects.filter(pk=update.pk, status=update.status, attempts=update.attempts).update(
            attempts=F("attempts") + 1, sent_at=timezone.now()
        )
    )


def firmware_update_start(*, station: ChargingStation, image: FirmwareImage, actor: str) -> FirmwareUpdate:
    """Update one station now (staff, the station page). Waits for the charger's answer."""
    update = FirmwareUpdate.objects.create(station=station, image=image)
    _claim(update)
    update.refresh_from_db()
    return _send(update=update, actor=actor)


def firmware_campaign_stations(
    *, vendor: str = "", model: str = "", firmware_version: str = "", location: Location | None = None
):
    """The accepted stations a campaign with these filters covers."""
    stations = ChargingStation.objects.filter(registration_status=RegistrationStatus.ACCEPTED)
    if vendor:
        stations = stations.filter(vendor__iexact=vendor)
    if model:
        stations = stations.filter(model__iexact=model)
    if firmware_version:
        stations = stations.filter(firmware_version=firmware_version)
    if location is not None:
        stations = stations.filter(location=location)
    return stations


def firmware_campaign_start(
    *,
    image: FirmwareImage,
    name: str,
    actor: str,
    rate: int,
    vendor: str = "",
    model: str = "",
    firmware_version: str = "",
    location: Location | None = None,
    max_attempts: int = 3,
) -> FirmwareCampaign:
    """A campaign and one pending update per station it covers; beat (and the caller, at once) advances it."""
    with transaction.atomic():
        campaign = FirmwareCampaign.objects.create(
            image=image,
            name=name[:100],
            vendor=vendor,
            model=model,
            firmware_version=firmware_version,
            location=location,
            rate=max(rate, 1),
            max_attempts=max(max_attempts, 1),
            created_by=actor[:150],
        )
        stations = firmware_campaign_stations(
            vendor=vendor, model=model, firmware_version=firmware_version, location=location
        )
        FirmwareUpdate.objects.bulk_create(
            [
                FirmwareUpdate(station_id=pk, image=image, campaign=campaign)
                for pk in stations.values_list("pk", flat=True)
            ]
        )
    return campaign


def firmware_campaign_advance(*, campaign_pk: int) -> int:
    """One step of a running campaign: up to `rate` updates sent (pending ones first, then failed ones with attempts
    left), to online stations only; the campaign is done when nothing is left to send or wait for. Returns how many
    were sent."""
    campaign = FirmwareCampaign.objects.get(pk=campaign_pk)
    if campaign.status != FirmwareCampaign.Status.RUNNING:
        return 0
    due = (
        FirmwareUpdate.objects.select_related("station", "image")
        .filter(campaign=campaign, station__online=True)
        .filter(Q(status=Status.PENDING) | Q(status__in=RETRIED, attempts__lt=campaign.max_attempts))
        .order_by("attempts", "id")[: campaign.rate]
    )
    sent = 0
    actor = f"platform: firmware campaign {campaign.pk}"
    for update in list(due):
        if _claim(update):
            update.refresh_from_db()
            _send(update=update, actor=actor)
            sent += 1
    left = FirmwareUpdate.objects.filter(campaign=campaign).filter(
        Q(status=Status.PENDING) | Q(status__in=OPEN) | Q(status__in=RETRIED, attempts__lt=campaign.max_attempts)
    )
    if not left.exists():
        FirmwareCampaign.objects.filter(pk=campaign.pk, status=FirmwareCampaign.Status.RUNNING).update(
            status=FirmwareCampaign.Status.DONE
        )
    return sent


def firmware_campaigns_running() -> list[int]:
    return list(FirmwareCampaign.objects.filter(status=FirmwareCampaign.Status.RUNNING).values_list("pk", flat=True))


def firmware_campaign_progress(*, campaign: FirmwareCampaign) -> dict[str, int]:
    """How many of the campaign's stations are at each status."""
    counts = dict(
        FirmwareUpdate.objects.filter(campaign=campaign).values_list("status").annotate(n=Count("id")).order_by()
    )
    return {status: counts.get(status, 0) for status in Status.values}


# --- What stations report --------------------------------------------------------------------------------------------


def station_firmware_status_record(*, station_pk: int, status: str, request_id: int | None = None) -> None:
    """A FirmwareStatusNotification: the update it is about moves along; a failed update raises a firmware_failed
    alert for the station, a later successful install resolves it."""
    updates = FirmwareUpdate.objects.filter(station_id=station_pk)
    if request_id is not None:
        update = updates.filter(pk=request_id).first()
    else:
        update = updates.filter(status__in=OPEN).order_by("-sent_at", "-id").first()
    if update is not None and status != "Idle":
        fields: dict = {"charger_status": status[:30]}
        if status == FIRMWARE_INSTALLED:
            fields["status"] = Status.INSTALLED
        elif status in FIRMWARE_FAILED:
            fields["status"] = Status.FAILED
        elif status in INSTALLING:
            fields["status"] = Status.INSTALLING
        elif status in DOWNLOADING:
            fields["status"] = Status.DOWNLOADING
        FirmwareUpdate.objects.filter(pk=update.pk).update(**fields)
    if status not in FIRMWARE_FAILED and status != FIRMWARE_INSTALLED:
        return
    identity = ChargingStation.objects.filter(pk=station_pk).values_list("identity", flat=True).get()
    if status == FIRMWARE_INSTALLED:
        alert_resolve(kind=AlertKind.FIRMWARE_FAILED, subject=identity)
        return
    alert_raise(kind=AlertKind.FIRMWARE_FAILED, subject=identity, message=f"station {identity}: firmware {status}")
