"""Sessions: the filtered list, and one session with its meter curve and billing."""

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404

from cpo.dashboard.forms import SessionFilterForm
from cpo.dashboard.selectors.sessions import (
    session_billing,
    session_ids,
    session_meter_series,
    sessions_by_ids,
)
from cpo.dashboard.views.base import DashboardView
from ocpp_gateway.models import Transaction

SESSIONS_PAGE_SIZE = 50


class SessionListView(DashboardView):
    template_name = "dashboard/session_list.html"
    nav = "sessions"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = SessionFilterForm(self.request.GET or None)
        filters = form.cleaned_data if form.is_valid() else {}
        ids = session_ids(**{k: v for k, v in filters.items() if v})
        page = Paginator(ids, SESSIONS_PAGE_SIZE).get_page(self.request.GET.get("page"))
        page.object_list = sessions_by_ids(ids=list(page.object_list))
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(form=form, page=page, query=query.urlencode())
        return context


class SessionDetailView(DashboardView):
    template_name = "dashboard/session_detail.html"
    nav = "sessions"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tx = get_object_or_404(Transaction.objects.select_related("station", "evse__location"), pk=self.kwargs["pk"])
        context.update(
            tx=tx,
            series=session_meter_series(transaction=tx),
            energy_kwh=tx.energy_wh / 1000,
            **session_billing(transaction=tx),
        )
        return context
