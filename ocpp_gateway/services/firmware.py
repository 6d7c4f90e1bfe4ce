"""Firmware (2.0.1 block L; 1.6 Firmware Management and the security extension's signed firmware): updates of one
station or campaigns over many, the signed expiring links stations download images from, and what stations report.

An image staff uploaded is served at OCPP_UPLOAD_BASE_URL + `/ocpp-firmware/<signed token>/<file name>`: the token
names the image and the station, is signed with the SECRET_KEY and expires after OCPP_FIRMWARE_LINK_HOURS (an image
referenced by URL is given as it is). A campaign sends UpdateFirmware to `rate` stations per minute (beat advances
it), offline ones when they are back, failed ones again up to `max_attempts`; each station's
FirmwareStatusNotification moves its update along (2.0.1 and signed 1.6 by requestId, our update's pk; 1.6 unsigned
has none: the station's latest open update).

A bad image must not reach the whole fleet: a campaign keeps at most `max_concurrent` stations updating at once
(sent and not yet installed or failed), and pauses itself, with a firmware_failed alert, once `pause_failures`
stations failed or `pause_failure_percent` of the finished ones did. Staff pause, resume, and retry the failed
stations (their attempts start again)."""

import logging
from datetime import datetime, timedelta
from pathlib import PurePosixPath

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Case, Count, F, Q, Value, When
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
# What counts against a campaign's failure threshold: the image failed on the station, or the station refused it
# (2.0.1 InvalidCertificate, RevokedCertificate). An unanswered UpdateFirmware says nothing about the image.
FAILURES = (Status.FAILED, Status.REJECTED)
# The progress page lists failures first, then what is under way, then the rest.
ROW_ORDER = [Status.FAILED, Status.REJECTED, Status.NO_ANSWER, *OPEN, Status.PENDING, Status.INSTALLED]
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
    """Count an attempt, unless another process took this update first. A retried update is pending again, so that a
    status notification overtaking the answer to this attempt is told from the last attempt's failure."""
    return bool(
        FirmwareUpdate.objects.filter(pk=update.pk, status=update.status, attempts=update.attempts).update(
            attempts=F("attempts") + 1, sent_at=timezone.now(), status=Status.PENDING, charger_status=""
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
    max_concurrent: int | None = None,
    pause_failures: int | None = None,
    pause_failure_percent: int | None = None,
) -> FirmwareCampaign:
    """A campaign and one pending update per station it covers; beat (and the caller, at once) advances it. The
    guards (`max_concurrent`, `pause_failures`, `pause_failure_percent`) are off when None."""
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
            max_concurrent=max(max_concurrent, 1) if max_concurrent is not None else None,
            pause_failures=max(pause_failures, 1) if pause_failures is not None else None,
            pause_failure_percent=min(max(pause_failure_percent, 1), 100)
            if pause_failure_percent is not None
            else None,
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
    left), to online stations only, and no more than `max_concurrent` updating at once; the campaign is done when
    nothing is left to send or wait for. Returns how many were sent."""
    campaign = FirmwareCampaign.objects.get(pk=campaign_pk)
    if campaign.status != FirmwareCampaign.Status.RUNNING:
        return 0
    room = campaign.rate
    if campaign.max_concurrent is not None:
        updating = FirmwareUpdate.objects.filter(campaign=campaign, status__in=OPEN).count()
        room = min(room, max(campaign.max_concurrent - updating, 0))
    due = (
        FirmwareUpdate.objects.select_related("station", "image")
        .filter(campaign=campaign, station__online=True)
        .filter(Q(status=Status.PENDING) | Q(status__in=RETRIED, attempts__lt=campaign.max_attempts))
        .order_by("attempts", "id")[:room]
    )
    sent = 0
    actor = f"platform: firmware campaign {campaign.pk}"
    for update in list(due) if room else []:
        if not FirmwareCampaign.objects.filter(pk=campaign.pk, status=FirmwareCampaign.Status.RUNNING).exists():
            break  # paused meanwhile (by staff, or by failures the updates sent so far reported)
        if _claim(update):
            update.refresh_from_db()
            if _send(update=update, actor=actor).status == Status.REJECTED:
                firmware_campaign_failures_check(campaign_pk=campaign.pk)
            sent += 1
    left = FirmwareUpdate.objects.filter(campaign=campaign).filter(
        Q(status=Status.PENDING) | Q(status__in=OPEN) | Q(status__in=RETRIED, attempts__lt=campaign.max_attempts)
    )
    if not left.exists():
        FirmwareCampaign.objects.filter(pk=campaign.pk, status=FirmwareCampaign.Status.RUNNING).update(
            status=FirmwareCampaign.Status.DONE
        )
    return sent


def campaign_alert_subject(campaign: FirmwareCampaign) -> str:
    return f"firmware campaign {campaign.pk}"


def firmware_campaign_pause(*, campaign_pk: int, reason: str) -> bool:
    """Stop sending (updates under way go on); False when it was not running."""
    return bool(
        FirmwareCampaign.objects.filter(pk=campaign_pk, status=FirmwareCampaign.Status.RUNNING).update(
            status=FirmwareCampaign.Status.PAUSED, status_reason=reason[:200]
        )
    )


def firmware_campaign_resume(*, campaign_pk: int) -> bool:
    """Send again from the next step on; an alert the campaign raised when it paused itself is resolved. False when
    it was not paused. The threshold is checked on each new failure: a resumed campaign whose failures are still
    over it pauses again at the next one (retry the failed stations to start their count again)."""
    resumed = FirmwareCampaign.objects.filter(pk=campaign_pk, status=FirmwareCampaign.Status.PAUSED).update(
        status=FirmwareCampaign.Status.RUNNING, status_reason=""
    )
    if resumed:
        campaign = FirmwareCampaign.objects.get(pk=campaign_pk)
        alert_resolve(kind=AlertKind.FIRMWARE_FAILED, subject=campaign_alert_subject(campaign))
    return bool(resumed)


def firmware_campaign_retry_failed(*, campaign_pk: int) -> int:
    """The campaign's failed, rejected and unanswered stations are pending again with their attempts reset; a
    campaign that was done runs again (a paused one stays paused). Returns how many."""
    with transaction.atomic():
        campaign = FirmwareCampaign.objects.select_for_update().get(pk=campaign_pk)
        count = FirmwareUpdate.objects.filter(campaign=campaign, status__in=RETRIED).update(
            status=Status.PENDING, attempts=0, answer="", charger_status=""
        )
        if count and campaign.status == FirmwareCampaign.Status.DONE:
            FirmwareCampaign.objects.filter(pk=campaign.pk).update(status=FirmwareCampaign.Status.RUNNING)
    return count


def firmware_campaign_failures(*, campaign: FirmwareCampaign) -> tuple[int, int]:
    """(failed, finished): stations whose update failed or was refused, and those plus the installed ones."""
    counts = firmware_campaign_progress(campaign=campaign)
    failed = sum(counts[s] for s in FAILURES)
    return failed, failed + counts[Status.INSTALLED]


def firmware_campaign_failures_check(*, campaign_pk: int) -> bool:
    """On a new failure: pause a running campaign whose failures reached its threshold and raise a firmware_failed
    alert for it. Returns True when it paused it now."""
    campaign = FirmwareCampaign.objects.get(pk=campaign_pk)
    if campaign.status != FirmwareCampaign.Status.RUNNING:
        return False
    if campaign.pause_failures is None and campaign.pause_failure_percent is None:
        return False
    failed, finished = firmware_campaign_failures(campaign=campaign)
    crossed = []
    if campaign.pause_failures is not None and failed >= campaign.pause_failures:
        crossed.append(f"at least {campaign.pause_failures}")
    if (
        campaign.pause_failure_percent is not None
        and failed
        and failed * 100 >= campaign.pause_failure_percent * finished
    ):
        crossed.append(f"at least {campaign.pause_failure_percent}% of the {finished} finished")
    if not crossed:
        return False
    reason = f"paused itself: {failed} stations failed ({' and '.join(crossed)})"
    with transaction.atomic():  # the pause and its alert are seen together (staff, and a test, read both at once)
        if not firmware_campaign_pause(campaign_pk=campaign.pk, reason=reason):
            return False
        alert_raise(
            kind=AlertKind.FIRMWARE_FAILED,
            subject=campaign_alert_subject(campaign),
            message=f"firmware campaign {campaign.name} {reason}",
        )
    logger.warning("firmware campaign %s %s", campaign.pk, reason)
    return True


def firmware_campaign_updates(*, campaign: FirmwareCampaign) -> list[FirmwareUpdate]:
    """The campaign's stations, one row each: failures first, then those under way, pending, installed."""
    rank = Case(*[When(status=status, then=Value(n)) for n, status in enumerate(ROW_ORDER)], default=Value(99))
    return list(
        FirmwareUpdate.objects.filter(campaign=campaign)
        .select_related("station")
        .annotate(rank=rank)
        .order_by("rank", "station__identity")
    )


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
        # Its latest update under way, or being sent: the notification may overtake the answer to UpdateFirmware.
        under_way = Q(status__in=OPEN) | Q(status=Status.PENDING, sent_at__isnull=False)
        update = updates.filter(under_way).order_by("-sent_at", "-id").first()
    if update is not None and status != "Idle":
        fields: dict = {"charger_status": status[:30], "updated_at": timezone.now()}  # heard of: not silent
        if status == FIRMWARE_INSTALLED:
            fields["status"] = Status.INSTALLED
        elif status in FIRMWARE_FAILED:
            fields["status"] = Status.FAILED
        elif status in INSTALLING:
            fields["status"] = Status.INSTALLING
        elif status in DOWNLOADING:
            fields["status"] = Status.DOWNLOADING
        FirmwareUpdate.objects.filter(pk=update.pk).update(**fields)
        if update.campaign_id is not None and status in FIRMWARE_FAILED:
            firmware_campaign_failures_check(campaign_pk=update.campaign_id)
    if status not in FIRMWARE_FAILED and status != FIRMWARE_INSTALLED:
        return
    identity = ChargingStation.objects.filter(pk=station_pk).values_list("identity", flat=True).get()
    if status == FIRMWARE_INSTALLED:
        alert_resolve(kind=AlertKind.FIRMWARE_FAILED, subject=identity)
        return
    alert_raise(kind=AlertKind.FIRMWARE_FAILED, subject=identity, message=f"station {identity}: firmware {status}")


def firmware_updates_expire(*, now: datetime | None = None) -> int:
    """Updates under way whose station has said nothing about them for OCPP_FIRMWARE_SILENT_MINUTES: the station
    rebooted without a FirmwareStatusNotification, lost the download, or went away. They become NO_ANSWER (retried
    by their campaign while attempts are left, never counted as the image's failure), so they no longer hold one of
    the campaign's `max_concurrent` places for ever nor show "downloading" for days. Returns how many."""
    now = now or timezone.now()
    silent_since = now - timedelta(minutes=settings.OCPP_FIRMWARE_SILENT_MINUTES)
    silent = FirmwareUpdate.objects.filter(status__in=OPEN, updated_at__lt=silent_since)
    return silent.update(
        status=Status.NO_ANSWER,
        answer=f"no status for {settings.OCPP_FIRMWARE_SILENT_MINUTES:g} min"[:100],
        updated_at=now,
    )


def firmware_update_booted(*, station_pk: int) -> int:
    """A station booted reporting the version an update under way installs: that update is installed (many 1.6
    chargers reboot into the new firmware without sending Installed). Returns how many updates it closed."""
    return FirmwareUpdate.objects.filter(
        station_id=station_pk, status__in=OPEN, image__version=F("station__firmware_version")
    ).update(status=Status.INSTALLED, charger_status="booted with it", updated_at=timezone.now())
