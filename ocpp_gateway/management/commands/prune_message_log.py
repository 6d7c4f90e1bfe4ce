from django.core.management.base import BaseCommand

from ocpp_gateway.services.message_log import message_log_prune


class Command(BaseCommand):
    help = "Delete OCPP message log entries older than OCPP_MESSAGE_LOG_RETENTION_DAYS (or --days)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None)

    def handle(self, days, **options):
        self.stdout.write(f"deleted {message_log_prune(older_than_days=days)} entries")
