"""Websocket routes. Chargers are not browsers: no origin or session checks on /ocpp/, they authenticate by Basic.
The dashboard's live channel is for logged-in staff: session cookie, and an Origin among ALLOWED_HOSTS."""

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import re_path

from cpo.dashboard.consumers import DashboardConsumer
from ocpp_gateway.consumers import OcppConsumer

websocket_urlpatterns = [
    re_path(r"^ocpp/(?P<identity>[^/]+)/?$", OcppConsumer.as_asgi()),
    re_path(r"^ws/dashboard/$", AllowedHostsOriginValidator(AuthMiddlewareStack(DashboardConsumer.as_asgi()))),
]
