"""The gateway's HTTP endpoints for stations: where they upload diagnostics and logs
(ocpp_gateway.services.diagnostics) and where they download firmware (ocpp_gateway.services.firmware).

The link's token is the credential (no session, no CSRF: a charger is not a browser). Uploads: PUT or POST, the raw
file or a multipart form (its first file), with or without the file name appended to the link."""

from django.core.files.uploadedfile import UploadedFile
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from ocpp_gateway.services.diagnostics import UploadRefused, diagnostics_upload_for, diagnostics_upload_store
from ocpp_gateway.services.firmware import FirmwareLinkRefused, firmware_image_for_link

CHUNK = 64 * 1024


def _body_chunks(request: HttpRequest):
    while chunk := request.read(CHUNK):
        yield chunk


@method_decorator(csrf_exempt, name="dispatch")
class DiagnosticsUploadView(View):
    http_method_names = ["put", "post"]

    def put(self, request: HttpRequest, token: str, file_name: str = "") -> HttpResponse:
        return self._store(request, token, file_name)

    def post(self, request: HttpRequest, token: str, file_name: str = "") -> HttpResponse:
        return self._store(request, token, file_name)

    def _store(self, request: HttpRequest, token: str, file_name: str) -> HttpResponse:
        try:
            diagnostics_upload_for(token=token)  # an unknown link is refused before the body is read
            declared = int(request.headers.get("Content-Length") or 0) or None
            if request.content_type == "multipart/form-data":
                upload = next((f for f in request.FILES.values() if isinstance(f, UploadedFile)), None)
                if upload is None:
                    return HttpResponse("no file in the form", status=400, content_type="text/plain")
                diagnostics_upload_store(
                    token=token,
                    file_name=file_name or upload.name or "",
                    chunks=upload.chunks(),
                    declared_size=declared,
                )
            else:
                diagnostics_upload_store(
                    token=token, file_name=file_name, chunks=_body_chunks(request), declared_size=declared
                )
        except UploadRefused as exc:
            return HttpResponse(str(exc), status=exc.http_status, content_type="text/plain")
        return HttpResponse(status=201 if request.method == "PUT" else 200)


class FirmwareDownloadView(View):
    """GET (or HEAD) the image a signed, unexpired link names."""

    http_method_names = ["get", "head"]

    def get(self, request: HttpRequest, token: str, file_name: str = "") -> FileResponse:
        try:
            image = firmware_image_for_link(token=token)
        except FirmwareLinkRefused:
            raise Http404("unknown or expired firmware link") from None
        return FileResponse(
            image.file.open("rb"), as_attachment=True, filename=(image.file.name or "firmware.bin").rpartition("/")[2]
        )
