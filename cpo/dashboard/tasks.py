"""Celery tasks of the dashboard: keep the analytics roll-ups current (CELERY_BEAT_SCHEDULE "dashboard-analytics-
rollups"). Workers find them by Celery's autodiscovery of the installed apps."""

from celery import shared_task
from django.conf import settings

from cpo.dashboard.services import analytics_rebuild_recent


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def analytics_rollups_refresh(days: int | None = None) -> int:
    """Rebuild the last few closed days' roll-ups (idempotent: a day's rows are replaced)."""
    days = days if days is not None else getattr(settings, "DASHBOARD_ANALYTICS_REBUILD_DAYS", 3)
    return len(analytics_rebuild_recent(days=days))
