"""Tariffs: the list, a tariff with a sample session priced, and the admins' editor."""

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from billing.encoding import DecimalJSONEncoder
from billing.models import Tariff
from billing.selectors import tariff_as_ocpi
from cpo.dashboard.forms import PricePreviewForm, TariffForm
from cpo.dashboard.permissions import Role
from cpo.dashboard.selectors.tariffs import (
    tariff_components_summary,
    tariff_connectors,
    tariff_list,
    tariff_price_preview,
)
from cpo.dashboard.services import tariff_save
from cpo.dashboard.views.base import DashboardView


class TariffListView(DashboardView):
    template_name = "dashboard/tariff_list.html"
    nav = "tariffs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["tariffs"] = [(tariff, tariff_components_summary(tariff=tariff)) for tariff in tariff_list()]
        return context


def price_preview_context(*, tariff, query) -> dict:
    """The preview form (bound when the query asks for a preview) and, when valid, the priced sample session."""
    form = PricePreviewForm(
        query if "kwh" in query else None,
        initial={"start": timezone.localtime().replace(hour=18, minute=0, second=0, microsecond=0)},
    )
    context = {"preview_form": form, "priced": None, "preview_error": ""}
    if form.is_bound and form.is_valid():
        try:
            context["priced"] = tariff_price_preview(tariff=tariff, **form.cleaned_data)
        except (ValidationError, ValueError, TypeError) as exc:
            context["preview_error"] = "; ".join(getattr(exc, "messages", [str(exc)]))
    return context


class TariffDetailView(DashboardView):
    template_name = "dashboard/tariff_detail.html"
    nav = "tariffs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tariff = get_object_or_404(Tariff, pk=self.kwargs["tariff_id"])
        connectors, connectors_total = tariff_connectors(tariff_id=tariff.id)
        context.update(
            tariff=tariff,
            connectors=connectors,
            connectors_total=connectors_total,
            components=tariff_components_summary(tariff=tariff),
            ocpi_json=json.dumps(tariff_as_ocpi(tariff=tariff), cls=DecimalJSONEncoder, indent=2),
            **price_preview_context(tariff=tariff, query=self.request.GET),
        )
        return context


class TariffEditView(DashboardView):
    """Create (no tariff_id) or edit a tariff: admins only. "Preview" prices the sample session with the tariff
    as typed, without saving it."""

    template_name = "dashboard/tariff_form.html"
    nav = "tariffs"
    required_role = Role.ADMIN

    def get_tariff(self) -> Tariff:
        if "tariff_id" in self.kwargs:
            return get_object_or_404(Tariff, pk=self.kwargs["tariff_id"])
        return Tariff()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tariff = context.setdefault("tariff", self.get_tariff())
        context.setdefault("form", TariffForm(instance=tariff))
        context.setdefault(
            "preview_form",
            PricePreviewForm(
                initial={"start": timezone.localtime().replace(hour=18, minute=0, second=0, microsecond=0)}
            ),
        )
        context["creating"] = tariff._state.adding
        if not context["creating"]:
            context["connectors"], context["connectors_total"] = tariff_connectors(tariff_id=tariff.id)
        return context

    def post(self, request, **kwargs):
        tariff = self.get_tariff()
        form = TariffForm(request.POST, instance=tariff)
        if "preview" in request.POST:
            context = {"tariff": tariff, "form": form}
            preview = PricePreviewForm(request.POST)
            context["preview_form"] = preview
            if form.is_valid() and preview.is_valid():
                context.update(price_preview_context(tariff=form.instance, query=request.POST))
            if request.POST.get("fragment"):  # the editor's live preview: the priced session or what is wrong
                return TemplateResponse(request, "dashboard/_tariff_preview.html", context)
            return self.render_to_response(self.get_context_data(**context))
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(tariff=tariff, form=form), status=400)
        try:
            saved = tariff_save(user=request.user, tariff=form.instance)
        except ValidationError as exc:
            form.add_error(None, exc)
            return self.render_to_response(self.get_context_data(tariff=tariff, form=form), status=400)
        messages.success(request, f"Tariff {saved.id} saved")
        return HttpResponseRedirect(reverse("dashboard:tariff", args=[saved.id]))
