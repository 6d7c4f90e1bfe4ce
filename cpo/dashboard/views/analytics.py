"""Analytics: the four tables (energy, locations, hours, revenue) with their charts, and each as CSV."""

from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views import View

from cpo.dashboard.forms import AnalyticsFilterForm
from cpo.dashboard.permissions import RoleRequiredMixin
from cpo.dashboard.selectors.analytics import (
    WEEKDAY_NAMES,
    analytics_split,
    energy_per_bucket,
    hour_of_week,
    network_time_zone,
    revenue_per_partner,
    utilisation_per_location,
)
from cpo.dashboard.selectors.period import Period
from cpo.dashboard.views.base import DashboardView
from cpo.spreadsheets import SafeCsvWriter

ANALYTICS_TABLES = {
    "energy": ("Energy and sessions", ["bucket", "sessions", "kwh"]),
    "locations": (
        "Utilisation per location",
        ["location_id", "name", "city", "evses", "sessions", "kwh", "hours_in_use", "utilisation_pct"],
    ),
    "hours": ("Hour of the week", ["weekday", "hour", "sessions_started", "kwh", "in_use_pct"]),
    "revenue": (
        "Revenue per partner",
        [
            "country_code",
            "party_id",
            "name",
            "currency",
            "cdrs",
            "credits",
            "kwh",
            "revenue_excl_vat",
            "revenue_incl_vat",
        ],
    ),
}


class AnalyticsMixin:
    def analytics_filters(self) -> AnalyticsFilterForm:
        return AnalyticsFilterForm(self.request.GET, default_zone=network_time_zone(), today=timezone.now().date())

    def analytics_table(self, name: str, form: AnalyticsFilterForm) -> list[dict]:
        data = form.cleaned_data
        period = Period.of_days(data["date_from"], data["date_to"])
        if getattr(self, "_analytics_split", (None,))[0] != period:  # one look-up of built days per request
            self._analytics_split = (period, analytics_split(period=period))
        split = self._analytics_split[1]
        if name == "energy":
            return energy_per_bucket(period=period, bucket=data["bucket"], time_zone=data["time_zone"], split=split)
        if name == "locations":
            return utilisation_per_location(period=period, split=split)
        if name == "hours":
            return hour_of_week(period=period, time_zone=data["time_zone"], split=split)
        return revenue_per_partner(period=period, split=split)


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
            hour_grid=[(day, hours[i * 24 : (i + 1) * 24]) for i, day in enumerate(WEEKDAY_NAMES)],
            hour_max=max([row["in_use_pct"] or 0 for row in hours] + [row["sessions_started"] for row in hours] + [1]),
            charts={
                # Every day of the period is a row (zeros included); a period without any session has no chart.
                "energy": {
                    "labels": [str(row["bucket"]) for row in tables["energy"]],
                    "kwh": [float(row["kwh"]) for row in tables["energy"]],
                    "sessions": [row["sessions"] for row in tables["energy"]],
                }
                if any(row["sessions"] for row in tables["energy"])
                else {"labels": [], "kwh": [], "sessions": []},
                "revenue": {
                    "labels": [
                        f"{row['country_code']}*{row['party_id']} {row['currency']}".strip("*")
                        if row["party_id"]
                        else f"own {row['currency']}"
                        for row in tables["revenue"]
                    ],
                    "excl_vat": [float(row["revenue_excl_vat"]) for row in tables["revenue"]],
                },
                "locations": {
                    "labels": [row["name"] or row["location_id"] for row in tables["locations"][:20]],
                    "pct": [float(row["utilisation_pct"]) for row in tables["locations"][:20]],
                },
            },
        )
        return context


class AnalyticsCsvView(AnalyticsMixin, RoleRequiredMixin, View):
    def get(self, request, table: str):
        if table not in ANALYTICS_TABLES:
            raise Http404("no such table")
        form = self.analytics_filters()
        if not form.is_valid():
            return HttpResponse(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()), status=400, content_type="text/plain"
            )
        columns = ANALYTICS_TABLES[table][1]
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        data = form.cleaned_data
        name = f"{table}_{data['date_from']}_{data['date_to']}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        writer = SafeCsvWriter(response)
        writer.writerow(columns)
        for row in self.analytics_table(table, form):
            writer.writerow(["" if row[c] is None else row[c] for c in columns])
        return response
