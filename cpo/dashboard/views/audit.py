"""The audit log: what staff did, when, to what, and how it ended; filtered on the page and as CSV. Admins only."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views import View

from cpo.dashboard.forms import AuditFilterForm
from cpo.dashboard.permissions import Role, RoleRequiredMixin
from cpo.dashboard.selectors.audit import audit_csv_rows, audit_log_actions, audit_log_list
from cpo.dashboard.views.base import DashboardView
from cpo.dashboard.views.cdrs import Echo
from cpo.spreadsheets import SafeCsvWriter

AUDIT_PAGE_SIZE = 50


class AuditFilterMixin:
    request: HttpRequest

    def audit_filters(self) -> tuple[AuditFilterForm, dict]:
        form = AuditFilterForm(self.request.GET or None, actions=audit_log_actions())
        filters = form.cleaned_data if form.is_valid() else {}
        return form, {k: v for k, v in filters.items() if v}


class AuditLogView(AuditFilterMixin, DashboardView):
    template_name = "dashboard/audit_log.html"
    nav = "audit"
    required_role = Role.ADMIN

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form, filters = self.audit_filters()
        page = Paginator(audit_log_list(**filters), AUDIT_PAGE_SIZE).get_page(self.request.GET.get("page"))
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(form=form, page=page, query=query.urlencode())
        return context


class AuditExportView(AuditFilterMixin, RoleRequiredMixin, View):
    """CSV of the entries the filters select, streamed; text cells cannot become spreadsheet formulas."""

    required_role = Role.ADMIN

    def get(self, request):
        form, filters = self.audit_filters()
        if form.is_bound and not form.is_valid():
            return HttpResponse(
                "; ".join(f"{k}: {' '.join(str(e) for e in v)}" for k, v in form.errors.items()),
                status=400,
                content_type="text/plain",
            )
        writer = SafeCsvWriter(Echo())
        rows = (writer.writerow(row) for row in audit_csv_rows(entries=audit_log_list(**filters)))
        response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
        return response
