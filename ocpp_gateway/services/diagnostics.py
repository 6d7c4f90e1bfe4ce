"""Diagnostics and logs (1.6 GetDiagnostics + DiagnosticsStatusNotification; GetLog + LogStatusNotification in 2.0.1
N01 and the 1.6 security extension): a station uploads a file to our own endpoint and staff download it.

Each request gets an upload link of its own: settings.OCPP_UPLOAD_BASE_URL + `/ocpp-uploads/<token>/`, the token
random and only its hash stored, valid OCPP_DIAGNOSTICS_LINK_HOURS for at most OCPP_DIAGNOSTICS_MAX_BYTES. Chargers
differ in how they upload over HTTP: a PUT or a POST of the raw file, a multipart POST, the file name appended to
the link or not; each is accepted (ocpp_gateway.views). Files live under OCPP_UPLOADS_DIR and are deleted after
OCPP_DIAGNOSTICS_RETENTION_DAYS (`diagnostics_prune`, daily by beat)."""

import hashlib
import logging
import re
import secrets
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from cpo.models import ChargingStation
from ocpp_gateway.commands import CommandError
from ocpp_gateway.models import DiagnosticsUpload
from ocpp_gateway.requests import GetDiagnostics, is_ocpp16
from ocpp_gateway.services.command_audit import command_send_audited

logger = logging.getLogger(__name__)

Status = DiagnosticsUpload.Status
UPLOAD_PATH = "/ocpp-uploads/"
# A notification of one of these means the station is done without a file (1.6 DiagnosticsStatus, 2.0.1
# UploadLogStatusEnumType).
UPLOAD_FAILED = {"UploadFailed", "UploadFailure", "BadMessage", "NotSupportedOperation", "PermissionDenied"}
OPEN = (Status.REQUESTED, Status.ACCEPTED, Status.UPLOADING)


class UploadRefused(Exception):
    """Why an upload is not taken: `http_status` 404 (unknown or expired link), 413 (too large)."""

    def __init__(self, message: str, *, http_status: int):
        super().__init__(message)
        self.http_status = http_status


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def upload_url(token: str) -> str:
    return f"{settings.OCPP_UPLOAD_BASE_URL}{UPLOAD_PATH}{token}/"


def uploads_dir() -> Path:
    return Path(settings.OCPP_UPLOADS_DIR)


def _request_id_next(station_pk: int) -> int:
    last = DiagnosticsUpload.objects.filter(station_id=station_pk).aggregate(last=Max("request_id"))["last"]
    return (last or 0) + 1


def diagnostics_request(
    *, station_pk: int, actor: str, log_type: str = "DiagnosticsLog", hours_back: int | None = None
) -> DiagnosticsUpload:
    """Ask the station to upload its diagnostics (1.6) or a log (2.0.1, or 1.6 SecurityLog) of the last `hours_back`
    hours (None: what it has), and record its answer. Waits for the charger: call it from a view or a task."""
    station = ChargingStation.objects.get(pk=station_pk)
    token = secrets.token_urlsafe(24)
    with transaction.atomic():
        ChargingStation.objects.select_for_update().filter(pk=station_pk).first()  # one request id at a time
        upload = DiagnosticsUpload.objects.create(
            station=station,
            kind=DiagnosticsUpload.Kind.DIAGNOSTICS
            if is_ocpp16(station.ocpp_version) and log_type == "DiagnosticsLog"
            else log_type,
            request_id=_request_id_next(station_pk),
            token_hash=token_hash(token),
            expires_at=timezone.now() + timedelta(hours=settings.OCPP_DIAGNOSTICS_LINK_HOURS),
            max_bytes=settings.OCPP_DIAGNOSTICS_MAX_BYTES,
            requested_by=actor[:150],
        )
    now = timezone.now()
    request = GetDiagnostics(
        location=upload_url(token),
        request_id=upload.request_id,
        log_type=log_type,
        start_time=now - timedelta(hours=hours_back) if hours_back else None,
        stop_time=now if hours_back else None,
    )
    call = request.for_version(station.ocpp_version)
    audit_payload = {**call.payload}
    audit_payload.pop("location", None)  # the link is a credential: the log keeps where, not the token
    if "log" in audit_payload:
        audit_payload["log"] = {k: v for k, v in audit_payload["log"].items() if k != "remoteLocation"}
    answered = command_send_audited(station=station, request=request, actor=actor, audit_payload=audit_payload)
    if answered.error is not None:
        status = Status.NO_ANSWER if answered.error.reason != CommandError.CALL_ERROR else Status.REJECTED
        fields = {"status": status, "answer": answered.status[:100]}
    else:
        accepted, name = GetDiagnostics.accepted(answered.answer or {})
        fields = {
            "status": Status.ACCEPTED if accepted else Status.REJECTED,
            "answer": (str((answered.answer or {}).get("status") or "") or ("file " + name if name else "no file"))[
                :100
            ],
            "file_name": name[:255],
        }
    # A status notification (or the file) may have come before the answer was recorded: its status wins.
    answer_status = fields.pop("status")
    name = fields.pop("file_name", "")
    DiagnosticsUpload.objects.filter(pk=upload.pk).update(**fields)
    DiagnosticsUpload.objects.filter(pk=upload.pk, status=Status.REQUESTED).update(status=answer_status)
    if name:
        DiagnosticsUpload.objects.filter(pk=upload.pk, file_name="").update(file_name=name)
    upload.refresh_from_db()
    return upload


def diagnostics_status_record(*, station_pk: int, status: str, request_id: int | None = None) -> int:
    """A DiagnosticsStatusNotification (1.6, no request id: the station's latest open request) or a
    LogStatusNotification (its requestId). Idle answers a TriggerMessage and changes nothing. Returns rows changed."""
    if status == "Idle":
        return 0
    uploads = DiagnosticsUpload.objects.filter(station_id=station_pk)
    if request_id is not None:
        upload = uploads.filter(request_id=request_id).first()
    else:
        upload = uploads.filter(kind=DiagnosticsUpload.Kind.DIAGNOSTICS).order_by("-created_at", "-id").first()
    if upload is None:
        return 0
    fields: dict = {"charger_status": status[:30]}
    if upload.status != Status.RECEIVED:  # the file is here: what the station says after that changes nothing
        if status == "Uploading":
            fields["status"] = Status.UPLOADING
        elif status in UPLOAD_FAILED:
            fields["status"] = Status.UPLOAD_FAILED
    return DiagnosticsUpload.objects.filter(pk=upload.pk).update(**fields)


def diagnostics_upload_for(*, token: str) -> DiagnosticsUpload:
    """The request a link belongs to; 404 when unknown or expired."""
    upload = DiagnosticsUpload.objects.select_related("station").filter(token_hash=token_hash(token)).first()
    if upload is None or upload.expires_at <= timezone.now():
        raise UploadRefused("unknown or expired upload link", http_status=404)
    return upload


SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_name(name: str) -> str:
    name = SAFE_NAME.sub("_", Path(name).name).strip("._")[:100]
    return name or "upload.bin"


def diagnostics_upload_store(
    *, token: str, file_name: str, chunks: Iterable[bytes], declared_size: int | None = None
) -> DiagnosticsUpload:
    """Write the uploaded file under OCPP_UPLOADS_DIR (a repeat replaces it), at most the request's max_bytes."""
    upload = diagnostics_upload_for(token=token)
    if declared_size is not None and declared_size > upload.max_bytes:
        raise UploadRefused(f"larger than {upload.max_bytes} bytes", http_status=413)
    name = _safe_name(file_name or upload.file_name or f"{upload.kind}-{upload.request_id}")
    relative = Path("diagnostics") / _safe_name(upload.station.identity) / f"{upload.pk}-{name}"
    target = uploads_dir() / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    size = 0
    try:
        with open(partial, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > upload.max_bytes:
                    raise UploadRefused(f"larger than {upload.max_bytes} bytes", http_status=413)
                out.write(chunk)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    DiagnosticsUpload.objects.filter(pk=upload.pk).update(
        status=Status.RECEIVED,
        file_path=str(relative),
        size=size,
        received_at=timezone.now(),
        file_name=(file_name or upload.file_name or name)[:255],
    )
    upload.refresh_from_db()
    logger.info("%s: %s %s received (%s bytes)", upload.station.identity, upload.kind, upload.request_id, size)
    return upload


def diagnostics_file_path(*, upload: DiagnosticsUpload) -> Path | None:
    """The stored file, when there is one (None after retention deleted it)."""
    if not upload.file_path:
        return None
    path = (uploads_dir() / upload.file_path).resolve()
    if uploads_dir().resolve() not in path.parents or not path.is_file():
        return None
    return path


def diagnostics_prune(*, now=None) -> int:
    """Retention: delete files (and their rows) older than OCPP_DIAGNOSTICS_RETENTION_DAYS; mark requests whose
    link expired without a file EXPIRED. Returns how many were deleted."""
    now = now or timezone.now()
    DiagnosticsUpload.objects.filter(status__in=OPEN, expires_at__lte=now).update(status=Status.EXPIRED)
    old = DiagnosticsUpload.objects.filter(
        created_at__lt=now - timedelta(days=settings.OCPP_DIAGNOSTICS_RETENTION_DAYS)
    )
    deleted = 0
    for upload in old.iterator():
        path = diagnostics_file_path(upload=upload)
        if path is not None:
            path.unlink(missing_ok=True)
        upload.delete()
        deleted += 1
    return deleted
