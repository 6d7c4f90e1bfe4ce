"""Stations: the list, a station's page (live part, message log, audit log) and the commands staff send to it."""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views import View

from cpo.dashboard.forms import COMMAND_FORMS, CompositeScheduleForm, MessageLogFilterForm
from cpo.dashboard.permissions import Role, RoleRequiredMixin
from cpo.dashboard.selectors.commands import command_answer_text
from cpo.dashboard.selectors.smart_charging import station_charging_profiles, station_composite_schedules
from cpo.dashboard.selectors.stations import (
    STATION_SORTS,
    STATION_STATUS_FILTERS,
    STATION_VARIABLES_SHOWN,
    message_exchanges,
    station_audit_log,
    station_connectors,
    station_diagnostics,
    station_list,
    station_local_list,
    station_message_log,
    station_reservations,
    station_variables,
    station_variables_against_baseline,
)
from cpo.dashboard.services import (
    VariableChangeRefused,
    diagnostics_download_record,
    station_composite_schedule_request_staff,
    station_configuration_read_staff,
    station_diagnostics_request_staff,
    station_evse_register,
    station_firmware_update_staff,
    station_local_list_resync_staff,
    station_password_rotate_staff,
    station_variable_change,
)
from cpo.dashboard.views.base import DashboardView
from cpo.models import ChargingStation
from ocpp_gateway.models import DiagnosticsUpload, FirmwareImage, FirmwareUpdate, StationVariable
from ocpp_gateway.selectors import certificate_expiring, station_certificate_current
from ocpp_gateway.services.diagnostics import diagnostics_file_path
from ocpp_gateway.services.passwords import RotationResult

MESSAGE_LOG_PAGE_SIZE = 25
OCPP_ACTIONS = [
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "Authorize",
    "StartTransaction",
    "StopTransaction",
    "MeterValues",
    "TransactionEvent",
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "RequestStartTransaction",
    "RequestStopTransaction",
    "Reset",
    "UnlockConnector",
    "ChangeAvailability",
    "TriggerMessage",
    "GetConfiguration",
    "ChangeConfiguration",
    "GetVariables",
    "SetVariables",
]


class StationListView(DashboardView):
    template_name = "dashboard/station_list.html"
    nav = "stations"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        get = self.request.GET
        search = get.get("q", "").strip()
        status = get.get("status", "") if get.get("status", "") in STATION_STATUS_FILTERS else ""
        sort = get.get("sort", "identity")
        sort = sort if sort.lstrip("-") in STATION_SORTS else "identity"
        stations = station_list(search=search, online=get.get("online", ""), status=status, sort=sort)
        page = Paginator(stations, 50).get_page(get.get("page"))
        query = get.copy()
        query.pop("page", None)
        filters = get.copy()
        for name in ("page", "sort"):
            filters.pop(name, None)
        context.update(
            page=page,
            q=search,
            status=status,
            sort=sort,
            status_filters=STATION_STATUS_FILTERS.items(),
            query=query.urlencode(),
            sorting={
                key: {
                    "next": f"-{key}" if sort == key else key,
                    "arrow": ("▼" if sort.startswith("-") else "▲") if sort.lstrip("-") == key else "",
                }
                for key in STATION_SORTS
            },
            filter_query=filters.urlencode(),
            live_query=get.urlencode(),
        )
        return context


class StationListLiveView(StationListView):
    """The list's table, re-fetched by the page (with the same filters) when a station or a connector changes."""

    template_name = "dashboard/_station_table.html"


class StationMixin:
    def get_station(self) -> ChargingStation:
        return get_object_or_404(ChargingStation.objects.select_related("location"), identity=self.kwargs["identity"])


class StationLiveView(StationMixin, DashboardView):
    """The station's header and connectors, re-fetched by the page when an event for this station arrives."""

    template_name = "dashboard/_station_live.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        station = self.get_station()
        context.update(station=station, connectors=station_connectors(station=station))
        return context


class StationDetailView(StationLiveView):
    template_name = "dashboard/station_detail.html"
    nav = "stations"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        station = context["station"]
        certificate = station_certificate_current(station=station)
        log_filter = MessageLogFilterForm(self.request.GET or None)
        filters = log_filter.cleaned_data if log_filter.is_valid() else {}
        log_view = filters.get("view") or MessageLogFilterForm.EXCHANGES
        log = station_message_log(
            station=station,
            action=filters.get("action", ""),
            direction=filters.get("direction", ""),
            heartbeats=filters.get("heartbeats", False),
            calls_only=log_view == MessageLogFilterForm.EXCHANGES,
        )
        log_page = Paginator(log, MESSAGE_LOG_PAGE_SIZE).get_page(self.request.GET.get("page"))
        if log_view == MessageLogFilterForm.EXCHANGES:
            context["log_exchanges"] = message_exchanges(station=station, calls=list(log_page.object_list))
        variable_filter = self.request.GET.get("filter", "").strip()[:100]
        variables = station_variables(station=station, search=variable_filter)
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(
            log_filter=log_filter,
            log_page=log_page,
            log_query=query.urlencode(),
            ocpp_actions=OCPP_ACTIONS,
            audit=station_audit_log(station=station),
            reservations=station_reservations(station=station),
            local_list=station_local_list(station=station),
            diagnostics=station_diagnostics(station=station),
            diagnostics_retention_days=settings.OCPP_DIAGNOSTICS_RETENTION_DAYS,
            firmware_updates=FirmwareUpdate.objects.filter(station=station).select_related("image", "campaign")[:10],
            firmware_images=FirmwareImage.objects.all()[:50],
            certificate=certificate,
            certificate_expiring=certificate is not None and certificate_expiring(certificate=certificate),
            variable_filter=variable_filter,
            variables=station_variables_against_baseline(
                station=station, variables=list(variables[:STATION_VARIABLES_SHOWN])
            ),
            variables_count=variables.count(),
            variables_shown=STATION_VARIABLES_SHOWN,
            composite_schedules=station_composite_schedules(station=station),
            charging_profiles=station_charging_profiles(station=station),
        )
        # A command's result goes next to its form (the page opens at it); other messages stay at the top.
        results: dict[str, list] = {}
        others = []
        for message in messages.get_messages(self.request):
            command = next((t[len(COMMAND_TAG) :] for t in message.extra_tags.split() if t.startswith(COMMAND_TAG)), "")
            if command:
                results.setdefault(command, []).append(message)
            else:
                others.append(message)
        context["messages"] = others
        if context["can_operate"]:
            context["command_forms"] = [
                (name, form_cls(station=station, prefix=name), results.get(name, []))
                for name, form_cls in COMMAND_FORMS.items()
            ]
        return context


COMMAND_TAG = "command-"


class StationCommandView(StationMixin, RoleRequiredMixin, View):
    """POST a command form; the charger's answer (or the error) comes back as a message on the station page."""

    required_role = Role.OPERATOR

    def post(self, request, identity: str, command: str):
        form_cls = COMMAND_FORMS.get(command)
        if form_cls is None:
            raise Http404("no such command")
        station = self.get_station()
        form = form_cls(request.POST, station=station, prefix=command)
        tag = f"{COMMAND_TAG}{command}"
        if not form.is_valid():
            errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
            messages.error(request, f"{form.title}: not sent. {errors}", extra_tags=tag)
        else:
            outcome = form.send(user=request.user)
            action = outcome.audit.action
            if outcome.ok:
                answer = command_answer_text(action=action, answer=outcome.audit.answer)
                messages.success(request, f"{action}: {answer}", extra_tags=tag)
            else:
                messages.error(request, f"{action} failed: {outcome.audit.error}", extra_tags=tag)
        return HttpResponseRedirect(reverse("dashboard:station", args=[station.identity]) + f"#command-{command}")


class StationEvseRegisterView(StationMixin, RoleRequiredMixin, View):
    """Register an EVSE the charger reported (published to partners from now on); kept in the audit log."""

    required_role = Role.ADMIN

    def post(self, request, identity: str, ocpp_evse_id: int):
        station = self.get_station()
        evse = get_object_or_404(station.evses, ocpp_evse_id=ocpp_evse_id)
        if station_evse_register(user=request.user, evse=evse):
            messages.success(request, f"Connector {ocpp_evse_id} registered: partners see it from now on")
        else:
            messages.info(request, f"Connector {ocpp_evse_id} is registered already")
        return HttpResponseRedirect(reverse("dashboard:station", args=[station.identity]))


class StationPasswordRotateView(StationMixin, RoleRequiredMixin, View):
    """POST: give the charger a new HTTP Basic password (the charger gets it; staff never see it here)."""

    required_role = Role.OPERATOR

    def post(self, request, identity: str):
        station = self.get_station()
        rotation = station_password_rotate_staff(user=request.user, station=station)
        if rotation is None:
            messages.error(request, "Password not rotated: see Recent commands")
        elif rotation.result == RotationResult.ACCEPTED:
            messages.success(
                request,
                f"New password accepted by the charger ({rotation.detail}); the old one works until the charger logs "
                "in with the new one",
            )
        elif rotation.result == RotationResult.UNCONFIRMED:
            messages.warning(request, f"No answer from the charger ({rotation.detail}): old and new passwords work")
        else:
            messages.error(request, f"The charger kept its old password ({rotation.detail})")
        return HttpResponseRedirect(reverse("dashboard:station", args=[station.identity]) + "#commands")


class StationConfigurationReadView(StationMixin, RoleRequiredMixin, View):
    """POST: read the station's configuration again (1.6 GetConfiguration / 2.0.1 GetBaseReport), audited."""

    required_role = Role.OPERATOR

    def post(self, request, identity: str):
        station = self.get_station()
        outcome = station_configuration_read_staff(user=request.user, station=station)
        action = outcome.audit.action
        if not outcome.ok:
            messages.error(request, f"{action} failed: {outcome.audit.error}")
        elif action == "GetBaseReport":
            status = command_answer_text(action=action, answer=outcome.audit.answer)
            messages.success(request, f"GetBaseReport: {status}; the station sends its report in the background")
        else:
            messages.success(request, "GetConfiguration: configuration stored")
        return HttpResponseRedirect(reverse("dashboard:station", args=[station.identity]) + "#configuration")


class StationVariableChangeView(StationMixin, RoleRequiredMixin, View):
    """POST `value`: change one configuration value (ChangeConfiguration / SetVariables); the charger's answer is
    kept with the value and in the audit log."""

    required_role = Role.OPERATOR

    def post(self, request, identity: str, pk: int):
        station = self.get_station()
        variable = get_object_or_404(StationVariable.objects.select_related("station"), pk=pk, station=station)
        value = request.POST.get("value", "")
        if len(value) > 1000:
            messages.error(request, f"{variable.name}: not sent, the value is longer than 1000 characters")
        else:
            try:
                outcome = station_variable_change(user=request.user, variable=variable, value=value)
            except VariableChangeRefused as exc:
                messages.error(request, f"{variable.name}: not sent, {exc}")
            else:
                variable.refresh_from_db()
                if outcome.ok:
                    messages.success(request, f"{variable.name} = {value}: {variable.last_set_status}")
                else:
                    messages.error(request, f"{variable.name}: {outcome.audit.action} failed: {outcome.audit.error}")
        query = "?" + request.GET.urlencode() if request.GET.get("filter") else ""
        return HttpResponseRedirect(reverse("dashboard:station", args=[station.identity]) + query + "#configuration")


class StationLocalListResyncView(StationMixin, RoleRequiredMixin, View):
    """POST: send the station its whole local authorization list again (Full SendLocalList), audited."""

    required_role = Role.OPERATOR

    def post(self, request, identity: str):
        station = self.get_station()
        outcome = station_local_list_resync_staff(user=request.user, station=station)
        answer = outcome.audit.answer or {}
        if outcome.ok:
            messages.success(request, f"Local list sent: version {answer.get('version')}, {answer.get('state_text')}")
        else:
            messages.error(request, f"Local list not in sync: {outcome.audit.error}")
        return HttpResponseRedirect(reverse("dashboard:station", args=[station.identity]) + "#local-list")


LOG_TYPES = {"DiagnosticsLog": "diagnostics", "SecurityLog": "security log"}


class StationDiagnosticsRequestView(StationMixin, RoleRequiredMixin, View):
    """POST `log_type` (DiagnosticsLog, SecurityLog) and `hours` (empty: all the station has): the station uploads
    it to the platform; the request and its answer are audited and listed on the page."""

    required_role = Role.OPERATOR

    def post(self, request, identity: str):
        station = self.get_station()
        log_type = request.POST.get("log_type", "DiagnosticsLog")
        hours = request.POST.get("hours", "").strip()
        if log_type not in LOG_TYPES or (hours and (not hours.isdigit() or not 0 < int(hours) <= 24 * 90)):
            messages.error(request, "Diagnostics: not sent, choose a log and a number of hours up to 2160")
        else:
            upload = station_diagnostics_request_staff(
                user=request.user, station=station, log_type=log_type, hours_back=int(hours) if hours else None
            )
            # The station may be uploading already (its notifications can overtake this answer): said as accepted.
            refused = upload.status in (DiagnosticsUpload.Status.REJECTED, DiagnosticsUpload.Status.NO_ANSWER)
            status = upload.get_status_display() if refused else "accepted"
            (messages.error if refused else messages.success)(
                request, f"{LOG_TYPES[log_type].capitalize()} requested: {status} ({upload.answer})"
            )
        return HttpResponseRedirect(reverse("dashboard:station", args=[station.identity]) + "#diagnostics")


class StationDiagnosticsDownloadView(StationMixin, RoleRequiredMixin, View):
    """GET: the uploaded file, as an attachment (operators: diagnostics may hold what a station knows of drivers)."""

    required_role = Role.OPERATOR

    def get(self, request, identity: str, pk: int):
        station = self.get_station()
        upload = get_object_or_404(DiagnosticsUpload.objects.select_related("station"), pk=pk, station=station)
        path = diagnostics_file_path(upload=upload)
        if path is None:
            raise Http404("no file (not uploaded yet, or deleted after the retention period)")
        diagnostics_download_record(user=request.user, upload=upload)
        return FileResponse(open(path, "rb"), as_attachment=True, filename=path.name.partition("-")[2] or path.name)


class StationFirmwareUpdateView(StationMixin, RoleRequiredMixin, View):
    """POST `image`: update this station's firmware now (UpdateFirmware / SignedUpdateFirmware), audited."""

    required_role = Role.OPERATOR

    def post(self, request, identity: str):
        station = self.get_station()
        image = get_object_or_404(FirmwareImage, pk=request.POST.get("image") or 0)
        update = station_firmware_update_staff(user=request.user, station=station, image=image)
        text = f"Firmware {image}: {update.get_status_display()} ({update.answer})"
        (messages.success if update.status == FirmwareUpdate.Status.SENT else messages.error)(request, text)
        return HttpResponseRedirect(reverse("dashboard:station", args=[station.identity]) + "#firmware")


class StationCompositeScheduleView(StationMixin, RoleRequiredMixin, View):
    """POST `evse` (0: the grid connection), `minutes` and `unit` (A, W or empty: the charger's choice): ask the
    station for its composite schedule (GetCompositeSchedule), audited; the answer is kept and drawn on the page,
    a refusal or no answer shown as such."""

    required_role = Role.OPERATOR

    def post(self, request, identity: str):
        station = self.get_station()
        form = CompositeScheduleForm(request.POST, station=station)
        if not form.is_valid():
            errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
            messages.error(request, f"Composite schedule: not asked. {errors}")
            return HttpResponseRedirect(reverse("dashboard:station", args=[station.identity]) + "#composite-schedule")
        schedule = station_composite_schedule_request_staff(
            user=request.user,
            station=station,
            ocpp_evse_id=form.cleaned_data["evse"],
            duration=form.cleaned_data["minutes"] * 60,
            charging_rate_unit=form.cleaned_data["unit"],
        )
        where = "the whole station" if schedule.ocpp_evse_id == 0 else f"connector {schedule.ocpp_evse_id}"
        if schedule.status == "Accepted":
            messages.success(
                request,
                f"Composite schedule of {where}: {len(schedule.periods)} period(s) in "
                f"{schedule.charging_rate_unit or '?'}",
            )
        else:
            messages.error(request, f"Composite schedule of {where}: {schedule.status}")
        return HttpResponseRedirect(
            reverse("dashboard:station", args=[station.identity]) + f"#composite-schedule-{schedule.ocpp_evse_id}"
        )
