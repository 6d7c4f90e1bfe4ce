"""Load management: the sites under a limit and, live, how their current is shared."""

from django.conf import settings
from django.shortcuts import get_object_or_404

from cpo.dashboard.selectors.load import (
    LOAD_PERIOD_DEFAULT,
    LOAD_PERIODS,
    load_group_history,
    load_group_list,
    load_group_rows,
)
from cpo.dashboard.views.base import DashboardView
from cpo.models import LoadGroup


class LoadGroupListView(DashboardView):
    template_name = "dashboard/load_list.html"
    nav = "load"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["groups"] = load_group_list()
        return context


class LoadGroupLiveView(DashboardView):
    """The group's limit, sessions and charts over the chosen period (`?period=`, LOAD_PERIODS), re-fetched by the
    page when a session starts, stops or reports meter values, and when the planner leaves a sample."""

    template_name = "dashboard/_load_live.html"
    nav = "load"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        group = get_object_or_404(LoadGroup.objects.select_related("location"), pk=self.kwargs["pk"])
        limit, rows = load_group_rows(group=group)
        planned = sum((r.planned_amps or 0 for r in rows if r.planned_status == "Accepted"), start=0)
        drawn = sum((r.drawn_amps or 0 for r in rows), start=0)
        period = self.request.GET.get("period", "")
        period = period if period in LOAD_PERIODS else LOAD_PERIOD_DEFAULT
        context.update(
            group=group,
            limit=limit,
            rows=rows,
            planned_total=planned,
            drawn_total=drawn,
            period=period,
            periods=list(LOAD_PERIODS),
            history=load_group_history(group=group, hours=LOAD_PERIODS[period]),
            sample_interval=int(max(settings.LOAD_MANAGEMENT_INTERVAL_SECONDS, settings.LOAD_HISTORY_MIN_SECONDS)),
        )
        return context


class LoadGroupDetailView(LoadGroupLiveView):
    template_name = "dashboard/load_detail.html"
