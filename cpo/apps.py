from django.apps import AppConfig


class CpoConfig(AppConfig):
    name = "cpo"
    verbose_name = "Network assets"
