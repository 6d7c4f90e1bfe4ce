"""Alerts: the open ones with their repeats, resolved by hand by operators; the recently resolved ones."""

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views import View

from cpo.dashboard.permissions import Role, RoleRequiredMixin
from cpo.dashboard.services import alert_resolve_by_staff
from cpo.dashboard.views.base import DashboardView
from cpo.models import Alert
from cpo.selectors import alerts_open, alerts_resolved


class AlertListView(DashboardView):
    template_name = "dashboard/alert_list.html"
    nav = "alerts"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(open_alerts=alerts_open(), resolved_alerts=alerts_resolved())
        return context


class AlertResolveView(RoleRequiredMixin, View):
    """POST: resolve an open alert by hand. Operators and admins; audited."""

    required_role = Role.OPERATOR

    def post(self, request, pk: int):
        alert = get_object_or_404(Alert, pk=pk)
        if alert_resolve_by_staff(user=request.user, alert=alert):
            messages.success(request, f"Alert {alert.get_kind_display()} {alert.subject} resolved")
        else:
            messages.info(request, f"Alert {alert.get_kind_display()} {alert.subject} was resolved already")
        return HttpResponseRedirect(reverse("dashboard:alerts"))
