"""Websocket routes. Chargers are not browsers: no origin or session checks on /ocpp/, they authenticate by Basic.
The dashboard's live channel is for logged-in staff: session cookie, and an Origin among ALLOWED_HOSTS."""

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import re_path

from cpo.dashboard.consumers import DashboardConsumer
from ocpp_gateway.consumers import OcppConsumer

websocket_urlpatterns = [
    # Everything under /ocpp/ reaches the consumer (the path daphne decoded once), which checks the identity's
    # syntax itself: a refused handshake with one log line, never an unrouted path or a 500.
    re_path(r"^ocpp/(?P<identity>[\s\S]*)\Z", OcppConsumer.as_asgi()),
    re_path(r"^ws/dashboard/$", AllowedHostsOriginValidator(AuthMiddlewareStack(DashboardConsumer.as_asgi()))),
]
