"""CDRs: the filtered list and its CSV, one CDR with its push to the EMSP, and requeueing a failed push."""

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.text import slugify
from django.views import View

from billing.encoding import DecimalJSONEncoder
from billing.models import Cdr
from billing.selectors import cdr_as_ocpi
from cpo.dashboard.forms import CdrFilterForm
from cpo.dashboard.permissions import Role, RoleRequiredMixin
from cpo.dashboard.selectors.cdrs import (
    CdrDate,
    PushState,
    cdr_csv_rows,
    cdr_list,
    cdr_push_history,
    cdr_pushes,
    cost_breakdown,
)
from cpo.dashboard.services import RetryRefused, cdr_push_retry
from cpo.dashboard.views.base import DashboardView
from cpo.spreadsheets import SafeCsvWriter

CDRS_PAGE_SIZE = 50


class CdrFilterMixin:
    def cdr_filters(self) -> tuple[CdrFilterForm, dict]:
        form = CdrFilterForm(self.request.GET or None)
        filters = form.cleaned_data if form.is_valid() else {}
        return form, {k: v for k, v in filters.items() if v}


class CdrListView(CdrFilterMixin, DashboardView):
    template_name = "dashboard/cdr_list.html"
    nav = "cdrs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form, filters = self.cdr_filters()
        cdrs = cdr_list(**filters).select_related("session__transaction")
        page = Paginator(cdrs, CDRS_PAGE_SIZE).get_page(self.request.GET.get("page"))
        pushes = cdr_pushes(cdrs=list(page))
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(form=form, page=page, rows=[(cdr, pushes[cdr.id]) for cdr in page], query=query.urlencode())
        return context


class CdrExportView(CdrFilterMixin, RoleRequiredMixin, View):
    """CSV of the CDRs the filters select (a period and a partner, typically), streamed."""

    def get(self, request):
        form, filters = self.cdr_filters()
        if form.is_bound and not form.is_valid():
            return form_errors_response(form)
        buffer = Echo()
        writer = SafeCsvWriter(buffer)
        rows = (writer.writerow(row) for row in cdr_csv_rows(cdrs=cdr_list(**filters)))
        response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{cdr_export_name(filters)}"'
        return response


def form_errors_response(form) -> HttpResponse:
    """400 with the filter form's errors as plain text: an export link with a bad period says what is wrong."""
    return HttpResponse(
        "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()), status=400, content_type="text/plain"
    )


class Echo:
    """A file-like object for csv.writer that hands back each line instead of storing it."""

    def write(self, value: str) -> str:
        return value


def cdr_export_name(filters: dict) -> str:
    parts = ["cdrs"]
    if filters.get("partner"):
        partner = filters["partner"]
        parts.append(f"{partner.country_code}-{partner.party_id}")
    if filters.get("location"):
        parts.append(str(filters["location"].pk))
    if filters.get("issued_from") or filters.get("issued_to"):
        if filters.get("by") == CdrDate.CHARGING:
            parts.append("charged")
        parts.append(f"{filters.get('issued_from') or 'start'}_{filters.get('issued_to') or 'now'}")
    return "_".join(slugify(part) or "x" for part in parts) + ".csv"


class CdrDetailView(DashboardView):
    template_name = "dashboard/cdr_detail.html"
    nav = "cdrs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        cdr = get_object_or_404(Cdr.objects.select_related("session", "credit_reference"), pk=self.kwargs["cdr_id"])
        push = cdr_pushes(cdrs=[cdr])[cdr.id]
        context.update(
            cdr=cdr,
            push=push,
            costs=cost_breakdown(cdr),
            history=cdr_push_history(cdr=cdr),
            credits=list(cdr.credits.all()),
            ocpi_json=json.dumps(cdr_as_ocpi(cdr=cdr), cls=DecimalJSONEncoder, indent=2),
            can_retry=push.state in (PushState.FAILED, PushState.RETRYING),
        )
        return context


class CdrRetryView(RoleRequiredMixin, View):
    """POST: requeue a CDR's failed (or retrying) push now. Operators and admins."""

    required_role = Role.OPERATOR

    def post(self, request, cdr_id: str):
        cdr = get_object_or_404(Cdr, pk=cdr_id)
        try:
            message = cdr_push_retry(user=request.user, cdr=cdr)
        except RetryRefused as exc:
            messages.error(request, f"CDR {cdr.id}: {exc}")
        else:
            messages.success(request, f"CDR {cdr.id}: push #{message.pk} to {message.partner} queued again")
        return HttpResponseRedirect(reverse("dashboard:cdr", args=[cdr.id]))
