"""Partners: every EMSP with its tokens and pushes; admins invite one or register with one, suspend and resume
one, and rotate its credentials."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views import View

from cpo.dashboard.forms import PartnerInviteForm, PartnerRegisterForm
from cpo.dashboard.permissions import Role, RoleRequiredMixin
from cpo.dashboard.selectors.partners import (
    OutboxState,
    partner_list,
    partner_outbox_problems,
    partner_outbox_states,
    partner_tokens,
)
from cpo.dashboard.services import (
    partner_credentials_rotate_staff,
    partner_invite_staff,
    partner_register_staff,
    partner_resume_staff,
    partner_suspend_staff,
)
from cpo.dashboard.views.base import DashboardView
from ocpi_api.envelope import OcpiError
from ocpi_api.models import Partner
from ocpi_api.modules import absolute_url

PARTNER_TOKENS_PAGE_SIZE = 50


def versions_url() -> str:
    return absolute_url(reverse("ocpi:versions"))


class PartnerListView(DashboardView):
    template_name = "dashboard/partner_list.html"
    nav = "partners"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["partners"] = partner_list()
        context["versions_url"] = versions_url()
        if context["can_administer"]:
            context.setdefault("invite_form", PartnerInviteForm())
            context.setdefault("register_form", PartnerRegisterForm())
        return context


class PartnerDetailView(DashboardView):
    template_name = "dashboard/partner_detail.html"
    nav = "partners"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        partner = get_object_or_404(Partner, pk=self.kwargs["pk"])
        search = self.request.GET.get("q", "").strip()
        context.update(
            partner=partner,
            outbox=partner_outbox_states(partner_ids=[partner.pk]).get(partner.pk, OutboxState()),
            problems=partner_outbox_problems(partner=partner),
            tokens=Paginator(partner_tokens(partner=partner, search=search), PARTNER_TOKENS_PAGE_SIZE).get_page(
                self.request.GET.get("page")
            ),
            q=search,
        )
        return context


class PartnerInviteView(PartnerListView):
    """POST: invite a partner; the next page shows its token A once (never cached) with our versions URL."""

    required_role = Role.ADMIN

    def get(self, request, *args, **kwargs):
        return HttpResponseRedirect(reverse("dashboard:partners"))

    def post(self, request):
        form = PartnerInviteForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(invite_form=form), status=400)
        partner, token_a = partner_invite_staff(user=request.user, **form.cleaned_data)
        response = render(
            request,
            "dashboard/partner_invited.html",
            {**self.get_context_data(), "partner": partner, "token_a": token_a},
        )
        add_never_cache_headers(response)
        return response


class PartnerRegisterView(PartnerListView):
    """POST: register with a partner (their versions URL and token A); shows the outcome or the OCPI error."""

    required_role = Role.ADMIN

    def get(self, request, *args, **kwargs):
        return HttpResponseRedirect(reverse("dashboard:partners"))

    def post(self, request):
        form = PartnerRegisterForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(register_form=form), status=400)
        try:
            partner = partner_register_staff(user=request.user, **form.cleaned_data)
        except OcpiError as exc:
            messages.error(request, f"Registration failed (OCPI {exc.status_code}): {exc.message}")
            return self.render_to_response(self.get_context_data(register_form=form), status=400)
        modules = ", ".join(sorted({e["identifier"] for e in partner.endpoints}))
        messages.success(request, f"Registered with {partner} ({partner.role}), OCPI {partner.version}: {modules}")
        return HttpResponseRedirect(reverse("dashboard:partner", args=[partner.pk]))


class PartnerActionView(RoleRequiredMixin, View):
    """POST: suspend, resume or rotate the credentials of a partner (admins); back to its page with the outcome."""

    required_role = Role.ADMIN
    ACTIONS = {
        "suspend": (partner_suspend_staff, "{partner} suspended: its token is refused and pushes to it wait"),
        "resume": (partner_resume_staff, "{partner} resumed: its token works again and waiting pushes go out"),
        "rotate": (partner_credentials_rotate_staff, "{partner}: credentials rotated, both tokens replaced"),
    }

    def post(self, request, pk: int, action: str):
        partner = get_object_or_404(Partner, pk=pk)
        if action not in self.ACTIONS:
            raise Http404("No such partner action")
        service, done = self.ACTIONS[action]
        try:
            partner = service(user=request.user, partner=partner)
        except OcpiError as exc:
            messages.error(request, f"{partner}: {action} failed (OCPI {exc.status_code}): {exc.message}")
        else:
            messages.success(request, done.format(partner=partner))
        return HttpResponseRedirect(reverse("dashboard:partner", args=[partner.pk]))
