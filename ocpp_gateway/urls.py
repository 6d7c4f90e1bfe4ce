from django.urls import path

from ocpp_gateway.views import DiagnosticsUploadView

app_name = "ocpp_gateway"
urlpatterns = [
    path("<str:token>/", DiagnosticsUploadView.as_view(), name="upload"),
    path("<str:token>/<path:file_name>", DiagnosticsUploadView.as_view(), name="upload-named"),
]
