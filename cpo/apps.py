from django.apps import AppConfig


class CpoConfig(AppConfig):
    name = "cpo"
    verbose_name = "Network assets"

    def ready(self):
        # Imported here, not at the top: receivers import models and tasks, which need the app registry ready.
        from cpo import receivers

        receivers.connect()

        from prometheus_client import REGISTRY

        from cpo.metrics import CeleryQueueCollector

        REGISTRY.register(CeleryQueueCollector())
