from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The staff dashboard, on top of every other app: it reads them all and nothing below imports it."""

    name = "cpo.dashboard"
    label = "dashboard"
    verbose_name = "Staff dashboard"

    def ready(self) -> None:
        from cpo.dashboard import receivers

        receivers.connect()
