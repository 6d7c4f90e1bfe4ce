"""Load management: the sites under a limit and, live, how their current is shared."""

from django.conf import settings
from django.shortcuts import get_object_or_404

from cpo.dashboard.selectors.load import (
    LOAD_PERIOD_DEFAULT,
    LOAD_PERIODS,
    limits_text,
    load_group_history,
    load_group_list,
    load_group_rows,
)
from cpo.dashboard.views.base import DashboardView
from cpo.models import LoadGroup
from ocpp_gateway.services.load_management import load_group_limits


class LoadGroupListView(DashboardView):
    template_name = "dashboard/load_list.html"
    nav = "load"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["groups"] = [
            (group, limits_text(load_group_limits(group=group, scheduled=False))) for group in load_group_list()
        ]
        return context


class LoadGroupLiveView(DashboardView):
    """The group's limit, sessions and charts over the chosen period (`?period=`, LOAD_PERIODS), re-fetched by the
    page when a session starts, stops or reports meter values, and when the planner leaves a sample."""

    template_name = "dashboard/_load_live.html"
    nav = "load"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        group = get_object_or_404(LoadGroup.objects.select_related("location"), pk=self.kwargs["pk"])
        limits, rows, phase_rows = load_group_rows(group=group)
        # The busiest phase: on a site where every session draws on every phase, the sum of the sessions' shares.
        planned = max(phase_rows, key=lambda p: (p.planned / p.limit if p.limit else p.planned, p.planned))
        drawn = max(phase_rows, key=lambda p: (p.drawn / p.limit if p.limit else p.drawn, p.drawn))
        usual = load_group_limits(group=group, scheduled=False)
        period = self.request.GET.get("period", "")
        period = period if period in LOAD_PERIODS else LOAD_PERIOD_DEFAULT
        context.update(
            group=group,
            limits=limits,
            usual_limits=usual,
            limit_text=limits_text(limits),
            usual_text=limits_text(usual),
            rows=rows,
            phase_rows=phase_rows,
            planned=planned,
            drawn=drawn,
            period=period,
            periods=list(LOAD_PERIODS),
            history=load_group_history(group=group, hours=LOAD_PERIODS[period]),
            sample_interval=int(max(settings.LOAD_MANAGEMENT_INTERVAL_SECONDS, settings.LOAD_HISTORY_MIN_SECONDS)),
        )
        return context


class LoadGroupDetailView(LoadGroupLiveView):
    template_name = "dashboard/load_detail.html"
