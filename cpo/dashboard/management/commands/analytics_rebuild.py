"""manage.py analytics_rebuild --from 2026-01-01 --to 2026-03-31: (re)build the dashboard's analytics roll-ups for
the closed UTC days of a range (idempotent; today is always computed live)."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from cpo.dashboard.services import analytics_rebuild


class Command(BaseCommand):
    help = "Rebuild the analytics roll-ups (per day and location, hour, partner) for a range of closed UTC days."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="first", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
        parser.add_argument("--to", dest="last", type=date.fromisoformat, required=True, help="YYYY-MM-DD, included")

    def handle(self, *args, first: date, last: date, **options) -> None:
        if last < first:
            raise CommandError("--to is before --from")
        days = analytics_rebuild(first=first, last=last)
        self.stdout.write(f"rebuilt {len(days)} day(s)" + (f": {days[0]} .. {days[-1]}" if days else ""))
