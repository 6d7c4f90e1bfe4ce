from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.http import HttpRequest, JsonResponse
from django.urls import include, path


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("ocpi/", include("ocpi_api.urls")),
    path("", include("cpo.dashboard.urls")),
]

if settings.DEBUG:  # daphne serves the static files itself in development; production serves STATIC_ROOT
    urlpatterns += staticfiles_urlpatterns()
