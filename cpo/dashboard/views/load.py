"""Load management: the sites under a limit and, live, how their current is shared."""

from django.shortcuts import get_object_or_404

from cpo.dashboard.selectors.load import load_group_list, load_group_rows
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
    """The group's limit and sessions, re-fetched by the page when a session starts, stops or reports meter values."""

    template_name = "dashboard/_load_live.html"
    nav = "load"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        group = get_object_or_404(LoadGroup.objects.select_related("location"), pk=self.kwargs["pk"])
        limit, rows = load_group_rows(group=group)
        planned = sum((r.planned_amps or 0 for r in rows if r.planned_status == "Accepted"), start=0)
        drawn = sum((r.drawn_amps or 0 for r in rows), start=0)
        context.update(group=group, limit=limit, rows=rows, planned_total=planned, drawn_total=drawn)
        return context


class LoadGroupDetailView(LoadGroupLiveView):
    template_name = "dashboard/load_detail.html"
