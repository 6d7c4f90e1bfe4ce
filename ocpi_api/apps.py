from django.apps import AppConfig


class OcpiApiConfig(AppConfig):
    name = "ocpi_api"
    verbose_name = "OCPI roaming"

    def ready(self):
        from ocpi_api.authorization import (
            command_token_authorize,
            partner_token_authorize_step,
            partner_tokens_for_local_lists,
        )
        from ocpi_api.commands import tasks as command_tasks  # noqa: F401 - registers the command Celery tasks
        from ocpp_gateway.authorization import authorizer_register
        from ocpp_gateway.services.local_list import local_list_source_register

        # After the gateway's own (local) tokens: the tokens of recent START_SESSION / RESERVE_NOW commands
        # (auth_method COMMAND, no real-time authorization within 15 minutes), then the tokens EMSPs pushed.
        authorizer_register(command_token_authorize)
        authorizer_register(partner_token_authorize_step)
        # The tokens EMSPs let us whitelist, after our own, on every station's local authorization list.
        local_list_source_register(partner_tokens_for_local_lists)

        # Billing's sessions and CDRs, gateway status changes, tariff and asset saves -> outbox rows; due messages
        # -> delivery tasks.
        from ocpi_api import receivers

        receivers.connect()

        # /metrics (cpo/metrics.py): the outbox's backlog, computed when scraped.
        from prometheus_client import REGISTRY

        from ocpi_api.metrics import OutboxCollector

        REGISTRY.register(OutboxCollector())
