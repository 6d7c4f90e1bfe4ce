"""Firmware (2.0.1 block L; 1.6 Firmware Management): what a station reports about an update it was asked to do."""

from cpo.alerts import alert_raise, alert_resolve
from cpo.models import AlertKind, ChargingStation

# FirmwareStatusNotification statuses that end an update unsuccessfully (1.6 FirmwareStatus, 2.0.1
# FirmwareStatusEnumType), and the one that ends it well.
FIRMWARE_FAILED = {"DownloadFailed", "InstallationFailed", "InstallVerificationFailed", "InvalidSignature"}
FIRMWARE_INSTALLED = "Installed"


def station_firmware_status_record(*, station_pk: int, status: str) -> None:
    """A failed update raises a firmware_failed alert for the station; a later successful install resolves it."""
    if status not in FIRMWARE_FAILED and status != FIRMWARE_INSTALLED:
        return
    identity = ChargingStation.objects.filter(pk=station_pk).values_list("identity", flat=True).get()
    if status == FIRMWARE_INSTALLED:
        alert_resolve(kind=AlertKind.FIRMWARE_FAILED, subject=identity)
        return
    alert_raise(kind=AlertKind.FIRMWARE_FAILED, subject=identity, message=f"station {identity}: firmware {status}")
