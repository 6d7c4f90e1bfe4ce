"""The outbox's Prometheus gauges: how many pushes wait, and how long the oldest has waited. Computed when scraped,
by one aggregate query on the outbox's status index, on processes with METRICS_PLATFORM_GAUGES (the web process in
deploy/Procfile), not on every gateway process."""

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ocpi_api.models import OutboxMessage, OutboxStatus

BACKLOG = ("ocpi_outbox_backlog", "Outbox messages not delivered yet (pending, including those waiting to retry)")
OLDEST = ("ocpi_outbox_oldest_age_seconds", "How long the oldest undelivered outbox message is overdue (0: none)")


class OutboxCollector(Collector):
    def describe(self):
        return [GaugeMetricFamily(*BACKLOG), GaugeMetricFamily(*OLDEST)]

    def collect(self):
        if not settings.METRICS_PLATFORM_GAUGES:
            return
        row = OutboxMessage.objects.filter(status=OutboxStatus.PENDING).aggregate(n=Count("pk"), oldest=Min("due_at"))
        oldest = row["oldest"]
        age = max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0
        yield GaugeMetricFamily(*BACKLOG, value=row["n"])
        yield GaugeMetricFamily(*OLDEST, value=age)
