"""Sessions: the filtered list and its CSV, and one session with its meter curve and billing."""

from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.text import slugify
from django.views import View

from cpo.dashboard.forms import SessionFilterForm
from cpo.dashboard.permissions import RoleRequiredMixin
from cpo.dashboard.selectors.sessions import (
    session_billing,
    session_csv_rows,
    session_ids,
    session_list,
    session_meter_series,
    sessions_by_ids,
)
from cpo.dashboard.views.base import DashboardView
from cpo.dashboard.views.cdrs import Echo, form_errors_response
from cpo.spreadsheets import SafeCsvWriter
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


class SessionExportView(RoleRequiredMixin, View):
    """CSV of the sessions the list's filters select (a period of charging, typically), streamed."""

    def get(self, request):
        form = SessionFilterForm(request.GET or None)
        if form.is_bound and not form.is_valid():
            return form_errors_response(form)
        filters = {k: v for k, v in (form.cleaned_data if form.is_bound else {}).items() if v}
        writer = SafeCsvWriter(Echo())
        rows = (writer.writerow(row) for row in session_csv_rows(sessions=session_list(**filters)))
        response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{session_export_name(filters)}"'
        return response


def session_export_name(filters: dict) -> str:
    parts = ["sessions"]
    if filters.get("started_from") or filters.get("started_to"):
        parts.append(f"{filters.get('started_from') or 'start'}_{filters.get('started_to') or 'now'}")
    return "_".join(slugify(part) or "x" for part in parts) + ".csv"


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
