"""Websocket routes. Chargers are not browsers: no origin or session checks on /ocpp/, they authenticate by Basic."""

from django.urls import re_path

from ocpp_gateway.consumers import OcppConsumer

websocket_urlpatterns = [
    re_path(r"^ocpp/(?P<identity>[^/]+)/?$", OcppConsumer.as_asgi()),
]
