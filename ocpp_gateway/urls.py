from django.urls import path

from ocpp_gateway.views import DiagnosticsUploadView, FirmwareDownloadView

app_name = "ocpp_gateway"
urlpatterns = [
    path("ocpp-uploads/<str:token>/", DiagnosticsUploadView.as_view(), name="upload"),
    path("ocpp-uploads/<str:token>/<path:file_name>", DiagnosticsUploadView.as_view(), name="upload-named"),
    path("ocpp-firmware/<str:token>/<path:file_name>", FirmwareDownloadView.as_view(), name="firmware"),
]
