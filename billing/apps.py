from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Imported here, not at the top: receivers import models and tasks, which need the app registry ready.
        from billing import receivers

        receivers.connect()
