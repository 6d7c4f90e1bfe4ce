from django.urls import path

from cpo.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("", views.OverviewView.as_view(), name="overview"),
    path("live/overview/", views.OverviewLiveView.as_view(), name="overview-live"),
    path("stations/", views.StationListView.as_view(), name="stations"),
    path("stations/<str:identity>/", views.StationDetailView.as_view(), name="station"),
    path("stations/<str:identity>/live/", views.StationLiveView.as_view(), name="station-live"),
    path("stations/<str:identity>/commands/<slug:command>/", views.StationCommandView.as_view(),
         name="station-command"),
    path("onboarding/", views.OnboardingView.as_view(), name="onboarding"),
    path("onboarding/<str:identity>/accept/", views.StationAcceptView.as_view(), name="station-accept"),
    path("sessions/", views.SessionListView.as_view(), name="sessions"),
    path("sessions/<int:pk>/", views.SessionDetailView.as_view(), name="session"),
    path("tariffs/", views.TariffListView.as_view(), name="tariffs"),
    path("tariffs/new/", views.TariffEditView.as_view(), name="tariff-create"),
    path("tariffs/<str:tariff_id>/", views.TariffDetailView.as_view(), name="tariff"),
    path("tariffs/<str:tariff_id>/edit/", views.TariffEditView.as_view(), name="tariff-edit"),
    path("partners/", views.PartnerListView.as_view(), name="partners"),
    path("partners/invite/", views.PartnerInviteView.as_view(), name="partner-invite"),
    path("partners/register/", views.PartnerRegisterView.as_view(), name="partner-register"),
    path("partners/<int:pk>/", views.PartnerDetailView.as_view(), name="partner"),
    path("cdrs/", views.CdrListView.as_view(), name="cdrs"),
    path("cdrs/export.csv", views.CdrExportView.as_view(), name="cdr-export"),
    path("cdrs/<str:cdr_id>/", views.CdrDetailView.as_view(), name="cdr"),
    path("cdrs/<str:cdr_id>/retry/", views.CdrRetryView.as_view(), name="cdr-retry"),
    path("analytics/", views.AnalyticsView.as_view(), name="analytics"),
    path("analytics/<slug:table>.csv", views.AnalyticsCsvView.as_view(), name="analytics-csv"),
]
