from django.apps import AppConfig


class OcppGatewayConfig(AppConfig):
    name = "ocpp_gateway"
    verbose_name = "OCPP gateway"

    def ready(self) -> None:
        from ocpp_gateway import receivers

        receivers.connect()

        # The gateway's per-process metrics, registered with prometheus_client in every process (cpo/metrics.py
        # serves them), so a process without chargers shows zeros rather than nothing.
        from ocpp_gateway import metrics  # noqa: F401
