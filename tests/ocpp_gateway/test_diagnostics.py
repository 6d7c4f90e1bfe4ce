"""Diagnostics and logs on a live daphne: an operator asks a 1.6 charger for its diagnostics and a 2.0.1 station for
its security log from the station page; each uploads to its own link on the platform (PUT of the raw file, multipart
POST), its status notifications are tracked, the file is listed and downloadable; refusals, silence, unknown or
expired links and oversize files get a clear answer; retention deletes old files."""

import asyncio
import re
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from cpo.dashboard.models import AuditLog
from ocpp_gateway.models import DiagnosticsUpload
from ocpp_gateway.services.diagnostics import diagnostics_prune, token_hash
from tests.ocpp_gateway.chargers import connected
from tests.ocpp_gateway.diagnostics_chargers import DIAGNOSTICS, DiagnosticsCharger16, LogCharger201
from tests.support import StaffBrowser, await_until, start_daphne_with_uploads, stop

PASSWORD = "correct horse battery staple"
MAX_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def diag_daphne(django_db_setup, django_db_blocker, uploads_dir):
    """Tasks in-process, uploads under a temporary directory, a small size limit and a short call timeout."""
    server = start_daphne_with_uploads(
        "diagnostics",
        uploads_dir,
        OCPP_CALL_TIMEOUT="2",
        OCPP_DIAGNOSTICS_MAX_BYTES=str(MAX_BYTES),
        DATA_UPLOAD_MAX_MEMORY_SIZE=str(MAX_BYTES // 4),  # uploads may be larger than any other body
    )
    yield server
    stop(server)


pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def upload(identity: str) -> DiagnosticsUpload:
    return DiagnosticsUpload.objects.filter(station__identity=identity).order_by("-id").first()


def test_an_operator_gets_a_1_6_chargers_diagnostics_uploaded_listed_and_downloadable(
    diag_daphne, station_factory, uploads_dir
):
    _, secret = station_factory("DIAG16", evses=1)
    staff = StaffBrowser(diag_daphne)

    async def scenario():
        async with connected(diag_daphne.ocpp_url("DIAG16"), "DIAG16", secret, cls=DiagnosticsCharger16) as cp:
            await cp.call(call16.BootNotification(charge_point_model="W1", charge_point_vendor="ACME"))
            page = await asyncio.to_thread(
                staff.post, "/stations/DIAG16/diagnostics/", {"log_type": "DiagnosticsLog", "hours": "24"}
            )
            await await_until(lambda: upload("DIAG16").status == "received", timeout=10, what="the file did not arrive")
            await await_until(
                lambda: upload("DIAG16").charger_status == "Uploaded", timeout=10, what="Uploaded was not recorded"
            )
            return page, cp.requests, cp.uploads

    page, requests, uploads = asyncio.run(scenario())
    shown = re.findall(r"Diagnostics requested: [^<]*", page)
    assert shown == ["Diagnostics requested: accepted (file diag-CP.zip)"], page[:3000]
    [request] = requests
    assert re.fullmatch(rf"{diag_daphne.http_url}/ocpp-uploads/[A-Za-z0-9_-]{{32}}/", request["location"])
    assert "start_time" in request and "stop_time" in request
    assert uploads == [201]
    row = upload("DIAG16")
    assert (row.kind, row.file_name, row.size) == ("diagnostics", "diag-CP.zip", len(DIAGNOSTICS))
    assert (uploads_dir / row.file_path).read_bytes() == DIAGNOSTICS
    page = staff.page("/stations/DIAG16/")
    assert "file received" in page and "diag-CP.zip" in page
    download = staff.http.get(f"/stations/DIAG16/diagnostics/{row.pk}/file/")
    assert download.status_code == 200 and download.content == DIAGNOSTICS
    assert 'filename="diag-CP.zip"' in download.headers["Content-Disposition"]
    audit = list(AuditLog.objects.filter(identity="DIAG16").order_by("id").values_list("username", "action", "ok"))
    assert ("staff-operator", "GetDiagnostics", True) in audit and (
        "staff-operator",
        "DiagnosticsDownload",
        True,
    ) in audit
    # The link is a credential: the audit log does not keep it.
    assert request["location"] not in str(list(AuditLog.objects.values_list("payload", flat=True)))
    # Viewers see the list but do not download.
    viewer = StaffBrowser(diag_daphne, role="viewer")
    assert viewer.http.get(f"/stations/DIAG16/diagnostics/{row.pk}/file/").status_code == 403


def test_a_2_0_1_station_posts_its_security_log_and_the_request_id_tracks_it(diag_daphne, station_factory):
    _, secret = station_factory("LOG201", evses=1)
    staff = StaffBrowser(diag_daphne)

    async def scenario():
        url = diag_daphne.ocpp_url("LOG201")
        async with connected(url, "LOG201", secret, version="2.0.1", cls=LogCharger201) as cp:
            await cp.call(
                call201.BootNotification(charging_station={"model": "W2", "vendor_name": "ACME"}, reason="PowerUp")
            )
            await asyncio.to_thread(staff.post, "/stations/LOG201/diagnostics/", {"log_type": "SecurityLog"})
            await await_until(
                lambda: upload("LOG201").charger_status == "Uploaded", timeout=10, what="the log did not arrive"
            )
            return cp.requests, cp.uploads

    requests, uploads = asyncio.run(scenario())
    row = upload("LOG201")
    assert requests == [
        {"log": {"remote_location": requests[0]["log"]["remote_location"]}, "log_type": "SecurityLog", "request_id": 1}
    ]
    assert uploads == [200]
    assert (row.kind, row.status, row.request_id, row.file_name, row.size) == (
        "SecurityLog",
        "received",
        1,
        "security.log",
        len(DIAGNOSTICS),
    )


class Rejecting201(LogCharger201):
    answer = "Rejected"


class NoDiagnostics16(DiagnosticsCharger16):
    has_diagnostics = False


class Silent16(DiagnosticsCharger16):
    async def route_message(self, raw_msg):
        if '"GetDiagnostics"' in raw_msg:
            return None
        return await super().route_message(raw_msg)


@pytest.mark.parametrize(
    ("identity", "cls", "version", "status", "shown"),
    [
        ("DIAG-REJ", Rejecting201, "2.0.1", "rejected", "Diagnostics requested: rejected by the station (Rejected)"),
        ("DIAG-NONE", NoDiagnostics16, "1.6", "rejected", "Diagnostics requested: rejected by the station (no file)"),
        ("DIAG-SILENT", Silent16, "1.6", "no_answer", "Diagnostics requested: the station did not answer (timeout)"),
    ],
)
def test_a_station_that_refuses_or_never_answers_gets_a_clear_state(
    diag_daphne, station_factory, identity, cls, version, status, shown
):
    _, secret = station_factory(identity, evses=1)
    staff = StaffBrowser(diag_daphne)

    async def scenario():
        async with connected(diag_daphne.ocpp_url(identity), identity, secret, version=version, cls=cls) as cp:
            if version == "1.6":
                await cp.call(call16.BootNotification(charge_point_model="W1", charge_point_vendor="ACME"))
            else:
                await cp.call(
                    call201.BootNotification(charging_station={"model": "W2", "vendor_name": "A"}, reason="PowerUp")
                )
            return await asyncio.to_thread(
                staff.post, f"/stations/{identity}/diagnostics/", {"log_type": "DiagnosticsLog"}
            )

    page = asyncio.run(scenario())
    assert shown in page
    assert upload(identity).status == status


def test_the_upload_link_refuses_unknown_expired_and_oversize_uploads(diag_daphne, station_factory):
    station, _ = station_factory("DIAG-LINK", evses=1)

    def link(token: str, **fields) -> str:
        DiagnosticsUpload.objects.create(
            station=station,
            kind="diagnostics",
            request_id=DiagnosticsUpload.objects.filter(station=station).count() + 1,
            token_hash=token_hash(token),
            expires_at=fields.pop("expires_at", timezone.now() + timedelta(hours=1)),
            max_bytes=MAX_BYTES,
            status="accepted",
        )
        return f"{diag_daphne.http_url}/ocpp-uploads/{token}/"

    assert httpx.put(f"{diag_daphne.http_url}/ocpp-uploads/nobody-knows-this/", content=b"x").status_code == 404
    expired = link("expired-token-0000000000", expires_at=timezone.now() - timedelta(seconds=1))
    assert httpx.put(expired, content=b"x").status_code == 404
    good = link("good-token-0000000000000")
    too_large = httpx.put(good + "big.bin", content=b"x" * (MAX_BYTES + 1))
    assert too_large.status_code == 413
    assert DiagnosticsUpload.objects.get(token_hash=token_hash("good-token-0000000000000")).status == "accepted"
    assert httpx.post(good + "log.txt", content=b"x" * (MAX_BYTES // 2)).status_code == 200
    assert DiagnosticsUpload.objects.get(token_hash=token_hash("good-token-0000000000000")).size == MAX_BYTES // 2


def test_retention_deletes_old_files_and_expires_links_that_got_none(station_factory, settings, tmp_path):
    settings.OCPP_UPLOADS_DIR = tmp_path
    settings.OCPP_DIAGNOSTICS_RETENTION_DAYS = 30
    station, _ = station_factory("DIAG-OLD", evses=0)
    now = timezone.now()
    (tmp_path / "diagnostics").mkdir()
    (tmp_path / "diagnostics" / "old.zip").write_bytes(b"old")
    (tmp_path / "diagnostics" / "new.zip").write_bytes(b"new")
    common = {"station": station, "kind": "diagnostics", "max_bytes": 10}
    old = DiagnosticsUpload.objects.create(
        **common, request_id=1, token_hash="a", expires_at=now, status="received", file_path="diagnostics/old.zip"
    )
    new = DiagnosticsUpload.objects.create(
        **common, request_id=2, token_hash="b", expires_at=now, status="received", file_path="diagnostics/new.zip"
    )
    waiting = DiagnosticsUpload.objects.create(
        **common, request_id=3, token_hash="c", expires_at=now - timedelta(minutes=1), status="accepted"
    )
    DiagnosticsUpload.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=31))
    assert diagnostics_prune(now=now) == 1
    assert diagnostics_prune(now=now) == 0
    assert not (tmp_path / "diagnostics" / "old.zip").exists() and (tmp_path / "diagnostics" / "new.zip").exists()
    assert set(DiagnosticsUpload.objects.values_list("pk", "status")) == {(new.pk, "received"), (waiting.pk, "expired")}
