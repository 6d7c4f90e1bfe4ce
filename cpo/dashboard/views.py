"""Dashboard views: adapters that check the role, call one selector or service, and render a template."""

import csv
import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.text import slugify
from django.views import View
from django.views.generic import TemplateView

from billing.encoding import DecimalJSONEncoder
from billing.models import Cdr, Tariff
from billing.selectors import cdr_as_ocpi, tariff_as_ocpi
from cpo.dashboard import selectors, services
from cpo.dashboard.forms import (
    COMMAND_FORMS,
    AnalyticsFilterForm,
    CdrFilterForm,
    MessageLogFilterForm,
    PartnerInviteForm,
    PartnerRegisterForm,
    PricePreviewForm,
    SessionFilterForm,
    StationAcceptForm,
    StationCreateForm,
    TariffForm,
)
from cpo.dashboard.permissions import Role, RoleRequiredMixin, user_role
from cpo.models import ChargingStation, RegistrationStatus
from ocpi_api.envelope import OcpiError
from ocpi_api.models import Partner
from ocpi_api.modules import absolute_url
from ocpp_gateway.models import Transaction

MESSAGE_LOG_PAGE_SIZE = 25
OCPP_ACTIONS = [
    "BootNotification", "Heartbeat", "StatusNotification", "Authorize", "StartTransaction", "StopTransaction",
    "MeterValues", "TransactionEvent", "RemoteStartTransaction", "RemoteStopTransaction", "RequestStartTransaction",
    "RequestStopTransaction", "Reset", "UnlockConnector", "ChangeAvailability", "TriggerMessage", "GetConfiguration",
    "ChangeConfiguration", "GetVariables", "SetVariables",
]
SESSIONS_PAGE_SIZE = 50


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True
    next_page = "dashboard:overview"


class LogoutView(auth_views.LogoutView):
    next_page = "dashboard:login"


class DashboardView(RoleRequiredMixin, TemplateView):
    """A page: the role check, and what the current user may do (templates hide buttons; views check again)."""

    nav = ""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        role = user_role(self.request.user)
        context.update(
            nav=self.nav,
            dashboard_role=role.group_name if role else "",
            can_operate=role is not None and role >= Role.OPERATOR,
            can_administer=role is not None and role >= Role.ADMIN,
        )
        return context


class OverviewView(DashboardView):
    template_name = "dashboard/overview.html"
    nav = "overview"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(overview_context())
        return context


def overview_context() -> dict:
    return {
        "summary": selectors.network_summary(),
        "active": selectors.transactions_active(),
        "attention": selectors.evses_needing_attention(),
        "pending": selectors.stations_pending()[:20],
        "markers": selectors.location_markers(),
    }


class OverviewLiveView(DashboardView):
    """The overview's live part, re-fetched by the page when an event arrives."""

    template_name = "dashboard/_overview_live.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(overview_context())
        return context


class StationListView(DashboardView):
    template_name = "dashboard/station_list.html"
    nav = "stations"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        search = self.request.GET.get("q", "").strip()
        online = self.request.GET.get("online", "")
        page = Paginator(selectors.station_list(search=search, online=online), 50).get_page(
            self.request.GET.get("page")
        )
        context.update(page=page, q=search, online=online)
        return context


class StationMixin:
    def get_station(self) -> ChargingStation:
        return get_object_or_404(ChargingStation.objects.select_related("location"), identity=self.kwargs["identity"])


class StationLiveView(StationMixin, DashboardView):
    """The station's header and connectors, re-fetched by the page when an event for this station arrives."""

    template_name = "dashboard/_station_live.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        station = self.get_station()
        context.update(station=station, connectors=selectors.station_connectors(station=station))
        return context


class StationDetailView(StationLiveView):
    template_name = "dashboard/station_detail.html"
    nav = "stations"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        station = context["station"]
        log_filter = MessageLogFilterForm(self.request.GET or None)
        filters = log_filter.cleaned_data if log_filter.is_valid() else {}
        log = selectors.station_message_log(
            station=station, action=filters.get("action", ""), direction=filters.get("direction", "")
        )
        log_page = Paginator(log, MESSAGE_LOG_PAGE_SIZE).get_page(self.request.GET.get("page"))
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(
            log_filter=log_filter,
            log_page=log_page,
            log_query=query.urlencode(),
            ocpp_actions=OCPP_ACTIONS,
            audit=selectors.station_audit_log(station=station),
        )
        if context["can_operate"]:
            context["command_forms"] = [
                (name, form_cls(station=station, prefix=name)) for name, form_cls in COMMAND_FORMS.items()
            ]
        return context


class StationCommandView(StationMixin, RoleRequiredMixin, View):
    """POST a command form; the charger's answer (or the error) comes back as a message on the station page."""

    required_role = Role.OPERATOR

    def post(self, request, identity: str, command: str):
        form_cls = COMMAND_FORMS.get(command)
        if form_cls is None:
            raise Http404("no such command")
        station = self.get_station()
        form = form_cls(request.POST, station=station, prefix=command)
        if not form.is_valid():
            errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
            messages.error(request, f"{form.title}: not sent. {errors}")
        else:
            outcome = services.station_command_send(user=request.user, station=station, request=form.request())
            action = outcome.audit.action
            if outcome.ok:
                messages.success(request, f"{action}: {json.dumps(outcome.audit.answer, sort_keys=True)}")
            else:
                messages.error(request, f"{action} failed: {outcome.audit.error}")
        return HttpResponseRedirect(reverse("dashboard:station", args=[station.identity]) + "#commands")


class OnboardingView(DashboardView):
    template_name = "dashboard/onboarding.html"
    nav = "onboarding"
    required_role = Role.ADMIN

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("form", StationCreateForm())
        context["pending"] = [
            (station, StationAcceptForm(station=station, prefix=f"accept-{station.pk}"))
            for station in selectors.stations_pending()[:50]
        ]
        return context

    def post(self, request):
        form = StationCreateForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        station, secret = services.station_onboard(user=request.user, **form.cleaned_data)
        scheme = "wss" if request.is_secure() else "ws"
        response = render(request, "dashboard/onboarding_done.html", {
            **self.get_context_data(),
            "station": station,
            "secret": secret,
            "ocpp_url": f"{scheme}://{request.get_host()}/ocpp/{station.identity}",
        })
        add_never_cache_headers(response)  # the secret is shown once: not from a cache, not after "back"
        return response


class StationAcceptView(StationMixin, RoleRequiredMixin, View):
    required_role = Role.ADMIN

    def post(self, request, identity: str):
        station = self.get_station()
        if station.registration_status == RegistrationStatus.ACCEPTED:
            messages.info(request, f"{station.identity} is accepted already")
            return HttpResponseRedirect(reverse("dashboard:onboarding"))
        form = StationAcceptForm(request.POST, station=station, prefix=f"accept-{station.pk}")
        if form.is_valid():
            services.station_accept(user=request.user, station=station, **form.cleaned_data)
            messages.success(request, f"{station.identity} accepted")
        else:
            messages.error(request, f"{station.identity}: " + " ".join(form.errors.get("__all__", ["invalid"])))
        return HttpResponseRedirect(reverse("dashboard:onboarding"))


class SessionListView(DashboardView):
    template_name = "dashboard/session_list.html"
    nav = "sessions"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = SessionFilterForm(self.request.GET or None)
        filters = form.cleaned_data if form.is_valid() else {}
        ids = selectors.session_ids(**{k: v for k, v in filters.items() if v})
        page = Paginator(ids, SESSIONS_PAGE_SIZE).get_page(self.request.GET.get("page"))
        page.object_list = selectors.sessions_by_ids(ids=list(page.object_list))
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
        context.update(tx=tx, series=selectors.session_meter_series(transaction=tx),
                       energy_kwh=tx.energy_wh / 1000, **selectors.session_billing(transaction=tx))
        return context


# --- Tariffs -------------------------------------------------------------------------------------------------------


class TariffListView(DashboardView):
    template_name = "dashboard/tariff_list.html"
    nav = "tariffs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["tariffs"] = [
            (tariff, selectors.tariff_components_summary(tariff=tariff)) for tariff in selectors.tariff_list()
        ]
        return context


def price_preview_context(*, tariff, query) -> dict:
    """The preview form (bound when the query asks for a preview) and, when valid, the priced sample session."""
    form = PricePreviewForm(query if "kwh" in query else None,
                            initial={"start": timezone.localtime().replace(hour=18, minute=0, second=0, microsecond=0)})
    context = {"preview_form": form, "priced": None, "preview_error": ""}
    if form.is_bound and form.is_valid():
        try:
            context["priced"] = selectors.tariff_price_preview(tariff=tariff, **form.cleaned_data)
        except (ValidationError, ValueError, TypeError) as exc:
            context["preview_error"] = "; ".join(getattr(exc, "messages", [str(exc)]))
    return context


class TariffDetailView(DashboardView):
    template_name = "dashboard/tariff_detail.html"
    nav = "tariffs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tariff = get_object_or_404(Tariff, pk=self.kwargs["tariff_id"])
        context.update(
            tariff=tariff,
            components=selectors.tariff_components_summary(tariff=tariff),
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
        context.setdefault("preview_form", PricePreviewForm(
            initial={"start": timezone.localtime().replace(hour=18, minute=0, second=0, microsecond=0)}))
        context["creating"] = tariff._state.adding
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
            return self.render_to_response(self.get_context_data(**context))
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(tariff=tariff, form=form), status=400)
        try:
            saved = services.tariff_save(user=request.user, tariff=form.instance)
        except ValidationError as exc:
            form.add_error(None, exc)
            return self.render_to_response(self.get_context_data(tariff=tariff, form=form), status=400)
        messages.success(request, f"Tariff {saved.id} saved")
        return HttpResponseRedirect(reverse("dashboard:tariff", args=[saved.id]))


# --- Partners ------------------------------------------------------------------------------------------------------

PARTNER_TOKENS_PAGE_SIZE = 50


def versions_url() -> str:
    return absolute_url(reverse("ocpi:versions"))


class PartnerListView(DashboardView):
    template_name = "dashboard/partner_list.html"
    nav = "partners"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["partners"] = selectors.partner_list()
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
            outbox=selectors.partner_outbox_states(partner_ids=[partner.pk]).get(partner.pk, selectors.OutboxState()),
            problems=selectors.partner_outbox_problems(partner=partner),
            tokens=Paginator(selectors.partner_tokens(partner=partner, search=search),
                             PARTNER_TOKENS_PAGE_SIZE).get_page(self.request.GET.get("page")),
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
        partner, token_a = services.partner_invite_staff(user=request.user, **form.cleaned_data)
        response = render(request, "dashboard/partner_invited.html", {
            **self.get_context_data(), "partner": partner, "token_a": token_a})
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
            partner = services.partner_register_staff(user=request.user, **form.cleaned_data)
        except OcpiError as exc:
            messages.error(request, f"Registration failed (OCPI {exc.status_code}): {exc.message}")
            return self.render_to_response(self.get_context_data(register_form=form), status=400)
        modules = ", ".join(sorted({e["identifier"] for e in partner.endpoints}))
        messages.success(request, f"Registered with {partner} ({partner.role}), OCPI {partner.version}: {modules}")
        return HttpResponseRedirect(reverse("dashboard:partner", args=[partner.pk]))


# --- CDRs ----------------------------------------------------------------------------------------------------------

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
        page = Paginator(selectors.cdr_list(**filters), CDRS_PAGE_SIZE).get_page(self.request.GET.get("page"))
        pushes = selectors.cdr_pushes(cdrs=list(page))
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(form=form, page=page, rows=[(cdr, pushes[cdr.id]) for cdr in page], query=query.urlencode())
        return context


class CdrExportView(CdrFilterMixin, RoleRequiredMixin, View):
    """CSV of the CDRs the filters select (a period and a partner, typically), streamed."""

    def get(self, request):
        form, filters = self.cdr_filters()
        if form.is_bound and not form.is_valid():
            return HttpResponse("; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()), status=400,
                                content_type="text/plain")
        buffer = Echo()
        writer = csv.writer(buffer, lineterminator="\n")
        rows = (writer.writerow(row) for row in selectors.cdr_csv_rows(cdrs=selectors.cdr_list(**filters)))
        response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{cdr_export_name(filters)}"'
        return response


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
        parts.append(f"{filters.get('issued_from') or 'start'}_{filters.get('issued_to') or 'now'}")
    return "_".join(slugify(part) or "x" for part in parts) + ".csv"


class CdrDetailView(DashboardView):
    template_name = "dashboard/cdr_detail.html"
    nav = "cdrs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        cdr = get_object_or_404(Cdr.objects.select_related("session", "credit_reference"), pk=self.kwargs["cdr_id"])
        push = selectors.cdr_pushes(cdrs=[cdr])[cdr.id]
        context.update(
            cdr=cdr,
            push=push,
            costs=selectors.cost_breakdown(cdr),
            history=selectors.cdr_push_history(cdr=cdr),
            credits=list(cdr.credits.all()),
            ocpi_json=json.dumps(cdr_as_ocpi(cdr=cdr), cls=DecimalJSONEncoder, indent=2),
            can_retry=push.state in (selectors.PushState.FAILED, selectors.PushState.RETRYING),
        )
        return context


class CdrRetryView(RoleRequiredMixin, View):
    """POST: requeue a CDR's failed (or retrying) push now. Operators and admins."""

    required_role = Role.OPERATOR

    def post(self, request, cdr_id: str):
        cdr = get_object_or_404(Cdr, pk=cdr_id)
        try:
            message = services.cdr_push_retry(user=request.user, cdr=cdr)
        except services.RetryRefused as exc:
            messages.error(request, f"CDR {cdr.id}: {exc}")
        else:
            messages.success(request, f"CDR {cdr.id}: push #{message.pk} to {message.partner} queued again")
        return HttpResponseRedirect(reverse("dashboard:cdr", args=[cdr.id]))


# --- Analytics -----------------------------------------------------------------------------------------------------

ANALYTICS_TABLES = {
    "energy": ("Energy and sessions", ["bucket", "sessions", "kwh"]),
    "locations": ("Utilisation per location", ["location_id", "name", "city", "evses", "sessions", "kwh",
                                                "hours_in_use", "utilisation_pct"]),
    "hours": ("Hour of the week", ["weekday", "hour", "sessions_started", "kwh", "in_use_pct"]),
    "revenue": ("Revenue per partner", ["country_code", "party_id", "name", "currency", "cdrs", "credits", "kwh",
                                        "revenue_excl_vat", "revenue_incl_vat"]),
}


class AnalyticsMixin:
    def analytics_filters(self) -> AnalyticsFilterForm:
        return AnalyticsFilterForm(self.request.GET, default_zone=selectors.network_time_zone(),
                                   today=timezone.now().date())

    def analytics_table(self, name: str, form: AnalyticsFilterForm) -> list[dict]:
        data = form.cleaned_data
        period = selectors.Period.of_days(data["date_from"], data["date_to"])
        if getattr(self, "_analytics_split", (None,))[0] != period:  # one look-up of built days per request
            self._analytics_split = (period, selectors.analytics_split(period=period))
        split = self._analytics_split[1]
        if name == "energy":
            return selectors.energy_per_bucket(period=period, bucket=data["bucket"], time_zone=data["time_zone"],
                                               split=split)
        if name == "locations":
            return selectors.utilisation_per_location(period=period, split=split)
        if name == "hours":
            return selectors.hour_of_week(period=period, time_zone=data["time_zone"], split=split)
        return selectors.revenue_per_partner(period=period, split=split)


class AnalyticsView(AnalyticsMixin, DashboardView):
    template_name = "dashboard/analytics.html"
    nav = "analytics"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = self.analytics_filters()
        context.update(form=form, query=self.request.GET.urlencode())
        if not form.is_valid():
            return context
        tables = {name: self.analytics_table(name, form) for name in ANALYTICS_TABLES}
        hours = tables["hours"]
        context.update(
            tables=tables,
            hour_grid=[(day, hours[i * 24:(i + 1) * 24]) for i, day in enumerate(selectors.WEEKDAY_NAMES)],
            hour_max=max([row["in_use_pct"] or 0 for row in hours] + [row["sessions_started"] for row in hours]
                         + [1]),
            charts={
                "energy": {"labels": [str(row["bucket"]) for row in tables["energy"]],
                           "kwh": [float(row["kwh"]) for row in tables["energy"]],
                           "sessions": [row["sessions"] for row in tables["energy"]]},
                "revenue": {"labels": [f"{row['country_code']}*{row['party_id']} {row['currency']}".strip("*")
                                       if row["party_id"] else f"own {row['currency']}" for row in tables["revenue"]],
                            "excl_vat": [float(row["revenue_excl_vat"]) for row in tables["revenue"]]},
                "locations": {"labels": [row["name"] or row["location_id"] for row in tables["locations"][:20]],
                              "pct": [float(row["utilisation_pct"]) for row in tables["locations"][:20]]},
            },
        )
        return context


class AnalyticsCsvView(AnalyticsMixin, RoleRequiredMixin, View):
    def get(self, request, table: str):
        if table not in ANALYTICS_TABLES:
            raise Http404("no such table")
        form = self.analytics_filters()
        if not form.is_valid():
            return HttpResponse("; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()), status=400,
                                content_type="text/plain")
        columns = ANALYTICS_TABLES[table][1]
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        data = form.cleaned_data
        name = f"{table}_{data['date_from']}_{data['date_to']}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        writer = csv.writer(response, lineterminator="\n")
        writer.writerow(columns)
        for row in self.analytics_table(table, form):
            writer.writerow(["" if row[c] is None else row[c] for c in columns])
        return response
