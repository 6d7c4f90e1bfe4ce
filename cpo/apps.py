from django.apps import AppConfig


class CpoConfig(AppConfig):
    name = "cpo"
    verbose_name = "Network assets"

    def ready(self) -> None:
        from cpo.dashboard import receivers

        receivers.connect()
