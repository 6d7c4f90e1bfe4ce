"""The overview: the network at a glance, and its live part that the page re-fetches on events."""

from django.conf import settings
from django.utils import timezone

from cpo.dashboard.selectors.money import connector_availability, today_and_month
from cpo.dashboard.selectors.overview import (
    evses_needing_attention,
    evses_unregistered,
    evses_without_tariff,
    network_summary,
    station_markers,
    stations_clock_skewed,
    stations_needing_attention,
    transactions_active,
)
from cpo.dashboard.selectors.stations import stations_pending
from cpo.dashboard.views.base import DashboardView
from cpo.selectors import alerts_open


class OverviewView(DashboardView):
    template_name = "dashboard/overview.html"
    nav = "overview"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(overview_context())
        return context


ALERTS_SHOWN = 10


def overview_context() -> dict:
    today, month = today_and_month(now=timezone.now())
    return {
        "summary": network_summary(),
        "today": today,
        "month": month,
        "availability": connector_availability(),
        "active": transactions_active(),
        "attention": evses_needing_attention(),
        "stations_attention": stations_needing_attention(),
        "clock_skewed": stations_clock_skewed(),
        "unregistered": evses_unregistered(),
        "untariffed": evses_without_tariff(),
        "pending": stations_pending()[:20],
        "markers": station_markers(),
        "map_tiles": settings.DASHBOARD_MAP_TILES,
        "map_tiles_attribution": settings.DASHBOARD_MAP_TILES_ATTRIBUTION,
        "alerts": alerts_open()[:ALERTS_SHOWN],
        "alerts_count": alerts_open().count(),
    }


class OverviewLiveView(DashboardView):
    """The overview's live part, re-fetched by the page when an event arrives."""

    template_name = "dashboard/_overview_live.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(overview_context())
        return context
