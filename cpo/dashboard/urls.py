from django.urls import path

from cpo.dashboard.views import (
    analytics,
    audit,
    base,
    cdrs,
    onboarding,
    overview,
    partners,
    sessions,
    stations,
    tariffs,
)

app_name = "dashboard"

urlpatterns = [
    path("login/", base.LoginView.as_view(), name="login"),
    path("logout/", base.LogoutView.as_view(), name="logout"),
    path("", overview.OverviewView.as_view(), name="overview"),
    path("live/overview/", overview.OverviewLiveView.as_view(), name="overview-live"),
    path("stations/", stations.StationListView.as_view(), name="stations"),
    path("live/stations/", stations.StationListLiveView.as_view(), name="stations-live"),
    path("stations/<str:identity>/", stations.StationDetailView.as_view(), name="station"),
    path("stations/<str:identity>/live/", stations.StationLiveView.as_view(), name="station-live"),
    path(
        "stations/<str:identity>/commands/<slug:command>/",
        stations.StationCommandView.as_view(),
        name="station-command",
    ),
    path("onboarding/", onboarding.OnboardingView.as_view(), name="onboarding"),
    path("onboarding/<str:identity>/accept/", onboarding.StationAcceptView.as_view(), name="station-accept"),
    path("sessions/", sessions.SessionListView.as_view(), name="sessions"),
    path("sessions/<int:pk>/", sessions.SessionDetailView.as_view(), name="session"),
    path("tariffs/", tariffs.TariffListView.as_view(), name="tariffs"),
    path("tariffs/new/", tariffs.TariffEditView.as_view(), name="tariff-create"),
    path("tariffs/<str:tariff_id>/", tariffs.TariffDetailView.as_view(), name="tariff"),
    path("tariffs/<str:tariff_id>/edit/", tariffs.TariffEditView.as_view(), name="tariff-edit"),
    path("partners/", partners.PartnerListView.as_view(), name="partners"),
    path("partners/invite/", partners.PartnerInviteView.as_view(), name="partner-invite"),
    path("partners/register/", partners.PartnerRegisterView.as_view(), name="partner-register"),
    path("partners/<int:pk>/", partners.PartnerDetailView.as_view(), name="partner"),
    path("cdrs/", cdrs.CdrListView.as_view(), name="cdrs"),
    path("cdrs/export.csv", cdrs.CdrExportView.as_view(), name="cdr-export"),
    path("cdrs/<str:cdr_id>/", cdrs.CdrDetailView.as_view(), name="cdr"),
    path("cdrs/<str:cdr_id>/retry/", cdrs.CdrRetryView.as_view(), name="cdr-retry"),
    path("audit/", audit.AuditLogView.as_view(), name="audit"),
    path("audit/export.csv", audit.AuditExportView.as_view(), name="audit-export"),
    path("analytics/", analytics.AnalyticsView.as_view(), name="analytics"),
    path("analytics/<slug:table>.csv", analytics.AnalyticsCsvView.as_view(), name="analytics-csv"),
]
