from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

from cpo.health import healthz, readyz
from cpo.metrics import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("ocpi/", include("ocpi_api.urls")),
    path("", include("ocpp_gateway.urls")),  # stations upload diagnostics and download firmware here
    path("", include("cpo.dashboard.urls")),
]

if settings.DEBUG:  # daphne serves the static files itself in development; production serves STATIC_ROOT
    urlpatterns += staticfiles_urlpatterns()
