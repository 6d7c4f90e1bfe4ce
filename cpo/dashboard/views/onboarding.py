"""Onboarding: admins create a station (its secret shown once) and accept stations that booted unknown."""

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views import View

from cpo.dashboard.forms import StationAcceptForm, StationCreateForm
from cpo.dashboard.permissions import Role, RoleRequiredMixin
from cpo.dashboard.selectors.stations import stations_pending
from cpo.dashboard.services import station_accept, station_onboard
from cpo.dashboard.views.base import DashboardView
from cpo.dashboard.views.stations import StationMixin
from cpo.models import RegistrationStatus


class OnboardingView(DashboardView):
    template_name = "dashboard/onboarding.html"
    nav = "onboarding"
    required_role = Role.ADMIN

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("form", StationCreateForm())
        context["pending"] = [
            (station, StationAcceptForm(station=station, prefix=f"accept-{station.pk}"))
            for station in stations_pending()[:50]
        ]
        return context

    def post(self, request):
        form = StationCreateForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        station, secret = station_onboard(user=request.user, **form.cleaned_data)
        scheme = "wss" if request.is_secure() else "ws"
        response = render(
            request,
            "dashboard/onboarding_done.html",
            {
                **self.get_context_data(),
                "station": station,
                "secret": secret,
                "ocpp_url": f"{scheme}://{request.get_host()}/ocpp/{station.identity}",
            },
        )
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
            station_accept(user=request.user, station=station, **form.cleaned_data)
            messages.success(request, f"{station.identity} accepted")
        else:
            messages.error(request, f"{station.identity}: " + " ".join(form.errors.get("__all__", ["invalid"])))
        return HttpResponseRedirect(reverse("dashboard:onboarding"))
