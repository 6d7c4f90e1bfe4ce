from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "DEBUG only: make sure a superuser admin/admin exists so a first run can log in."

    def handle(self, **options):
        if not settings.DEBUG:
            self.stdout.write("not in DEBUG: create users with createsuperuser")
            return
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@example.invalid", "admin")
