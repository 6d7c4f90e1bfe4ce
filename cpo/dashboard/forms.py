"""Forms for the staff dashboard. Each command form turns its cleaned data into the gateway's request builder
(`request()`, see ocpp_gateway.requests), which writes it in the words of the station's OCPP version."""

import json
from datetime import UTC, timedelta
from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.forms.utils import flatatt
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from billing.models import Tariff
from cpo.dashboard.selectors.cdrs import CLOSED_WITHOUT_STOP, CdrDate, PushState
from cpo.dashboard.selectors.period import Preset, preset_days
from cpo.dashboard.selectors.smart_charging import station_charging_profiles_held
from cpo.dashboard.services import (
    STAFF_CHARGING_PROFILE_STACK_LEVEL,
    CommandOutcome,
    staff_charging_profile_id,
    station_charging_profile_clear,
    station_charging_profile_set,
    station_command_send,
    station_reservation_cancel,
    station_reserve,
)
from cpo.models import ChargingStation, Location, OcppVersion, Token
from ocpi_api.models import Partner
from ocpi_api.models import Role as OcpiRole
from ocpp_gateway import requests as ocpp_requests
from ocpp_gateway.models import ChargingProfile, Reservation, Transaction
from ocpp_gateway.selectors import connector_ocpp_id
from ocpp_gateway.services.smart_charging import CHARGING_RATE_UNITS

V16 = OcppVersion.V16


def evse_choices(station: ChargingStation, *, whole_station: str | None = None) -> list[tuple[int, str]]:
    choices = [(0, whole_station)] if whole_station else []
    for evse in station.evses.order_by("ocpp_evse_id"):
        choices.append((evse.ocpp_evse_id, f"{evse.ocpp_evse_id} · {evse.evse_id or evse.uid}"))
    return choices


class StationCommandForm(forms.Form):
    """Base: knows the station; subclasses add fields and build the request. A command that interrupts charging or
    availability says so in `confirm_text` (the page asks before sending; "{field}" stands for the chosen option),
    and `confirm_if` ("field=value") limits the question to that choice. `unavailable` says why there is nothing to
    send (the form is then shown without fields)."""

    title = ""
    unavailable = ""

    def __init__(self, *args, station: ChargingStation, **kwargs):
        self.station = station
        super().__init__(*args, **kwargs)

    @property
    def confirm_text(self) -> str:
        return ""

    @property
    def confirm_if(self) -> str:
        return ""

    def running_sessions_text(self) -> str:
        running = Transaction.objects.filter(station=self.station, status=Transaction.Status.ACTIVE).order_by(
            "ocpp_evse_id"
        )
        names = [f"session {tx.transaction_id or tx.pk} on connector {tx.ocpp_evse_id}" for tx in running[:5]]
        return f" It interrupts {', '.join(names)}." if names else " No session is running."

    @property
    def version(self) -> str:
        return self.station.ocpp_version or V16

    def request(self) -> ocpp_requests.OcppRequest:
        raise NotImplementedError

    def send(self, *, user) -> CommandOutcome:
        """Send the command, audited; forms whose command keeps state of its own (reservations) say how."""
        return station_command_send(user=user, station=self.station, request=self.request())


class RemoteStartForm(StationCommandForm):
    title = "Remote start"
    evse = forms.TypedChoiceField(coerce=int, label="Connector")
    token = forms.ModelChoiceField(queryset=Token.objects.filter(valid=True), label="Token", empty_label=None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["evse"].choices = evse_choices(self.station)
        self.fields["token"].label_from_instance = lambda token: token.uid

    def request(self):
        token = self.cleaned_data["token"]
        return ocpp_requests.RemoteStart(id_tag=token.uid, token_type=token.type, evse_id=self.cleaned_data["evse"])


class RemoteStopForm(StationCommandForm):
    title = "Remote stop"
    transaction = forms.ModelChoiceField(queryset=Transaction.objects.none(), label="Session", empty_label=None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        running = (
            Transaction.objects.filter(station=self.station, status=Transaction.Status.ACTIVE)
            .exclude(transaction_id="")
            .order_by("ocpp_evse_id", "started_at")
        )
        field = self.fields["transaction"]
        field.queryset = running
        field.label_from_instance = lambda tx: f"{tx.transaction_id} · connector {tx.ocpp_evse_id} · {tx.id_tag}"
        if not self.is_bound:
            first = running.first()
            if first is None:
                self.unavailable = "No session is running on this station."
            else:
                self.initial["transaction"] = first.pk

    @property
    def confirm_text(self) -> str:
        return f"Stop charging session {{{self.add_prefix('transaction')}}} on station {self.station.identity}?"

    def request(self):
        return ocpp_requests.RemoteStop(transaction_id=self.cleaned_data["transaction"].transaction_id)


class ResetForm(StationCommandForm):
    title = "Reset"
    kind = forms.ChoiceField(
        choices=[("soft", "Soft (2.0.1: OnIdle)"), ("hard", "Hard (2.0.1: Immediate)")], label="Type"
    )

    @property
    def confirm_text(self) -> str:
        return (
            f"{{{self.add_prefix('kind')}}} reset of station {self.station.identity}: it restarts."
            + self.running_sessions_text()
        )

    def request(self):
        return ocpp_requests.Reset(hard=self.cleaned_data["kind"] == "hard")


class UnlockConnectorForm(StationCommandForm):
    title = "Unlock connector"
    evse = forms.TypedChoiceField(coerce=int, label="Connector")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["evse"].choices = evse_choices(self.station)

    @property
    def confirm_text(self) -> str:
        return (
            f"Unlock connector {{{self.add_prefix('evse')}}} of station {self.station.identity}? A session on it "
            "stops and the cable is released." + self.running_sessions_text()
        )

    def request(self):
        ocpp_evse_id = self.cleaned_data["evse"]
        evse = self.station.evses.get(ocpp_evse_id=ocpp_evse_id)
        return ocpp_requests.UnlockConnector(evse_id=ocpp_evse_id, connector_id=connector_ocpp_id(evse=evse))


class ChangeAvailabilityForm(StationCommandForm):
    title = "Change availability"
    evse = forms.TypedChoiceField(coerce=int, label="Connector")
    operative = forms.TypedChoiceField(
        coerce=lambda v: v == "1", choices=[("1", "Operative"), ("0", "Inoperative")], label="Make"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["evse"].choices = evse_choices(self.station, whole_station="0 · whole station")

    @property
    def confirm_text(self) -> str:
        return (
            f"Make {{{self.add_prefix('evse')}}} of station {self.station.identity} inoperative? Nobody can charge "
            "there until it is made operative again." + self.running_sessions_text()
        )

    @property
    def confirm_if(self) -> str:
        return f"{self.add_prefix('operative')}=0"

    def request(self):
        return ocpp_requests.ChangeAvailability(
            operative=self.cleaned_data["operative"], evse_id=self.cleaned_data["evse"]
        )


class TriggerMessageForm(StationCommandForm):
    title = "Trigger message"
    message = forms.ChoiceField(label="Message")
    evse = forms.TypedChoiceField(coerce=int, label="Connector")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["message"].choices = [(m, m) for m in ocpp_requests.triggerable_messages(self.version)]
        self.fields["evse"].choices = evse_choices(self.station, whole_station="— (station)")

    def request(self):
        return ocpp_requests.TriggerMessage(message=self.cleaned_data["message"], evse_id=self.cleaned_data["evse"])


config_key_2_0_1 = RegexValidator(
    ocpp_requests.COMPONENT_VARIABLE, "OCPP 2.0.1 needs Component.Variable, e.g. OCPPCommCtrlr.HeartbeatInterval"
)


class GetConfigurationForm(StationCommandForm):
    title = "Get configuration"
    keys = forms.CharField(
        required=False,
        label="Keys",
        help_text="Comma-separated; empty asks for all (1.6). 2.0.1: Component.Variable, e.g. "
        "OCPPCommCtrlr.HeartbeatInterval",
    )

    def clean_keys(self) -> list[str]:
        keys = [k.strip() for k in self.cleaned_data["keys"].split(",") if k.strip()]
        if not ocpp_requests.is_ocpp16(self.version):
            if not keys:
                raise forms.ValidationError("OCPP 2.0.1 GetVariables needs at least one Component.Variable")
            for key in keys:
                config_key_2_0_1(key)
        return keys

    def request(self):
        return ocpp_requests.GetConfiguration(keys=tuple(self.cleaned_data["keys"]))


class ChangeConfigurationForm(StationCommandForm):
    title = "Change configuration"
    key = forms.CharField(max_length=100, help_text="1.6: key; 2.0.1: Component.Variable")
    value = forms.CharField(max_length=500, required=False)

    def clean_key(self) -> str:
        key = self.cleaned_data["key"].strip()
        if not ocpp_requests.is_ocpp16(self.version):
            config_key_2_0_1(key)
        return key

    def request(self):
        return ocpp_requests.ChangeConfiguration(key=self.cleaned_data["key"], value=self.cleaned_data["value"])


class ReserveNowForm(StationCommandForm):
    title = "Reserve"
    evse = forms.TypedChoiceField(coerce=int, label="Connector")
    token = forms.ModelChoiceField(queryset=Token.objects.filter(valid=True), label="Token")
    minutes = forms.IntegerField(min_value=1, max_value=24 * 60, initial=30, label="For (minutes)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["evse"].choices = evse_choices(self.station, whole_station="0 · any connector")

    def send(self, *, user) -> CommandOutcome:
        ocpp_evse_id = self.cleaned_data["evse"]
        return station_reserve(
            user=user,
            station=self.station,
            evse=self.station.evses.filter(ocpp_evse_id=ocpp_evse_id).first() if ocpp_evse_id else None,
            token=self.cleaned_data["token"],
            expiry_date=timezone.now() + timedelta(minutes=self.cleaned_data["minutes"]),
        )


class CancelReservationForm(StationCommandForm):
    title = "Cancel reservation"
    reservation = forms.ModelChoiceField(queryset=Reservation.objects.none(), label="Reservation")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reservation"].queryset = Reservation.objects.filter(
            station=self.station, status__in=[Reservation.Status.PENDING, Reservation.Status.ACCEPTED]
        )
        self.fields["reservation"].label_from_instance = lambda r: f"{r.pk} · {r.id_tag} · until {r.expiry_date:%H:%M}"

    def send(self, *, user) -> CommandOutcome:
        return station_reservation_cancel(user=user, reservation=self.cleaned_data["reservation"])


class SetChargingProfileForm(StationCommandForm):
    """A limit staff set on a connector or the whole station, from now on (an Absolute schedule starting when it is
    sent), for `minutes` or until cleared or replaced; kept with the other profiles, source staff, whatever the
    station answers (`station_charging_profile_set`).

    Purpose: TxDefaultProfile, the limit sessions on the connector (0: every connector) start with, or the
    station-wide maximum (1.6 ChargePointMaxProfile, 2.0.1 ChargingStationMaxProfile), only on connector 0, which
    caps everything the station does, whatever other profiles allow.

    Stack level: always STAFF_CHARGING_PROFILE_STACK_LEVEL (2), one above the load planner's TxDefaultProfile
    (LOAD_MANAGEMENT_STACK_LEVEL, 1 by default; sent to a managed station at every boot) and the partners'
    profiles (1). Sharing their purpose and level would be surprising: 1.6 replaces a profile with the same purpose
    and stack level, so the planner's next boot default would silently drop staff's, and 2.0.1 may refuse a second
    profile of the same purpose and level on an EVSE. One above: staff's TxDefaultProfile takes precedence over the
    planner's default, but any TxProfile (the planner's share for a running session, a partner's) still overrides
    a TxDefaultProfile whatever its level, as both versions specify, so on a managed station staff's default applies
    only until the planner sends the session its share. To keep a station under a limit whatever the planner plans,
    set the station-wide maximum: the station applies the lowest of it and the session's profile (the planner does
    not read it, so it may plan a share above it that the car then does not get).

    Profile id: one per connector and purpose in staff's own range (`staff_charging_profile_id`), so a new limit
    replaces staff's previous one for that connector and purpose."""

    title = "Set charging profile"
    evse = forms.TypedChoiceField(coerce=int, label="Connector")
    purpose = forms.ChoiceField(label="Purpose")
    limit = forms.DecimalField(min_value=Decimal("0.1"), max_digits=9, decimal_places=1, label="Limit")
    unit = forms.ChoiceField(choices=[(unit, unit) for unit in CHARGING_RATE_UNITS], label="Unit")
    minutes = forms.IntegerField(
        min_value=1, max_value=7 * 24 * 60, required=False, label="For (minutes)", help_text="Empty: until cleared"
    )
    number_phases = forms.TypedChoiceField(
        coerce=int,
        empty_value=None,
        required=False,
        choices=[("", "— (the station assumes 3)"), ("1", "1"), ("3", "3")],
        label="Phases",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["evse"].choices = evse_choices(self.station, whole_station="0 · whole station")
        station_max = ocpp_requests.charging_profile_purpose("ChargingStationMaxProfile", self.version)
        self.fields["purpose"].choices = [
            ("TxDefaultProfile", "TxDefaultProfile: default for sessions"),
            (station_max, f"{station_max}: the station's maximum (connector 0 only)"),
        ]

    def clean(self):
        data = super().clean()
        if "evse" in data and "purpose" in data:
            try:
                ocpp_requests.check_charging_profile_target(evse_id=data["evse"], purpose=data["purpose"])
            except ValueError as exc:
                self.add_error("purpose", f"Not sent: {exc}.")
        return data

    def request(self) -> ocpp_requests.SetChargingProfile:
        data = self.cleaned_data
        period = ocpp_requests.ChargingSchedulePeriod(0, data["limit"], number_phases=data["number_phases"])
        return ocpp_requests.SetChargingProfile(
            evse_id=data["evse"],
            transaction_id=None,
            profile_id=staff_charging_profile_id(ocpp_evse_id=data["evse"], purpose=data["purpose"]),
            schedule=ocpp_requests.ChargingSchedule(
                data["unit"],
                (period,),
                duration=data["minutes"] * 60 if data["minutes"] else None,
                start_schedule=timezone.now(),
            ),
            stack_level=STAFF_CHARGING_PROFILE_STACK_LEVEL,
            purpose=data["purpose"],
        )

    def send(self, *, user) -> CommandOutcome:
        return station_charging_profile_set(user=user, station=self.station, request=self.request())


def charging_profile_label(profile: ChargingProfile) -> str:
    where = f"connector {profile.ocpp_evse_id}" if profile.ocpp_evse_id else "whole station"
    return (
        f"{profile.profile_id} · {where} · {profile.purpose} · {profile.limit} {profile.charging_rate_unit} · "
        f"{profile.get_source_display()} · {profile.created_at:%Y-%m-%d %H:%M} UTC"
    )


class ClearChargingProfileForm(StationCommandForm):
    """ClearChargingProfile of one profile the station accepted (by our records, `station_charging_profiles_held`),
    by its id, whoever set it; a profile the load planner keeps sending comes back at its next change."""

    title = "Clear charging profile"
    profile = forms.ModelChoiceField(queryset=ChargingProfile.objects.none(), label="Profile", empty_label=None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        held = station_charging_profiles_held(station=self.station)
        field = self.fields["profile"]
        field.queryset = ChargingProfile.objects.filter(pk__in=[p.pk for p in held]).order_by("-created_at", "-id")
        field.label_from_instance = charging_profile_label
        if not self.is_bound and not held:
            self.unavailable = "No charging profile the station accepted is on record."

    @property
    def confirm_text(self) -> str:
        return (
            f"Clear charging profile {{{self.add_prefix('profile')}}} on station {self.station.identity}? The station "
            "stops applying its limit."
        )

    def request(self):
        return ocpp_requests.ClearChargingProfile(profile_id=self.cleaned_data["profile"].profile_id)

    def send(self, *, user) -> CommandOutcome:
        return station_charging_profile_clear(user=user, profile=self.cleaned_data["profile"])


COMMAND_FORMS: dict[str, type[StationCommandForm]] = {
    "remote-start": RemoteStartForm,
    "remote-stop": RemoteStopForm,
    "reset": ResetForm,
    "unlock": UnlockConnectorForm,
    "availability": ChangeAvailabilityForm,
    "trigger": TriggerMessageForm,
    "get-configuration": GetConfigurationForm,
    "change-configuration": ChangeConfigurationForm,
    "reserve-now": ReserveNowForm,
    "cancel-reservation": CancelReservationForm,
    "set-charging-profile": SetChargingProfileForm,
    "clear-charging-profile": ClearChargingProfileForm,
}


class CompositeScheduleForm(forms.Form):
    """What staff ask a station's composite schedule for: an EVSE of the station (0: its grid connection), how far
    ahead (up to a day) and in which unit (empty: the charger's choice)."""

    evse = forms.TypedChoiceField(coerce=int)
    minutes = forms.IntegerField(min_value=1, max_value=24 * 60)
    unit = forms.ChoiceField(
        required=False, choices=[("", "the station's unit")] + [(unit, unit) for unit in CHARGING_RATE_UNITS]
    )

    def __init__(self, *args, station: ChargingStation, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["evse"].choices = evse_choices(station, whole_station="0 · whole station")


class FastSelect(forms.Select):
    """A <select> written in one pass. Django renders each <option> through a template, which costs ~0.5 ms an
    option: a filter with 500 locations took a quarter of a second."""

    def render(self, name, value, attrs=None, renderer=None):
        selected = {str(v) for v in self.format_value(value)}
        final_attrs = self.build_attrs(self.attrs, {**(attrs or {}), "name": name})
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            ((str(v), mark_safe(" selected") if str(v) in selected else "", label) for v, label in self.choices),
        )
        return format_html("<select{}>{}</select>", flatatt(final_attrs), options)


# --- Onboarding --------------------------------------------------------------------------------------------------

identity_validator = RegexValidator(
    r"^[A-Za-z0-9._-]{1,48}$", "Letters, digits, dot, dash and underscore; at most 48 characters"
)


class StationCreateForm(forms.Form):
    identity = forms.CharField(max_length=48, validators=[identity_validator], help_text="OCPP identity (chargeBoxId)")
    location = forms.ModelChoiceField(queryset=Location.objects.all(), widget=FastSelect)
    evses = forms.IntegerField(min_value=1, max_value=32, initial=2, label="EVSEs (one connector each)")
    tariff = forms.ModelChoiceField(
        queryset=Tariff.objects.order_by("id"),
        required=False,
        empty_label="the location's default tariff",
        help_text="What the new connectors are priced with",
    )

    def clean_identity(self) -> str:
        identity = self.cleaned_data["identity"]
        if ChargingStation.objects.filter(identity=identity).exists():
            raise forms.ValidationError("A station with this identity exists already")
        return identity


class StationAcceptForm(forms.Form):
    location = forms.ModelChoiceField(
        queryset=Location.objects.all(),
        required=False,
        widget=FastSelect,
        help_text="Needed when the station has no location yet",
    )
    evses = forms.IntegerField(min_value=1, max_value=32, initial=1, label="EVSEs to create")

    def __init__(self, *args, station: ChargingStation, **kwargs):
        self.station = station
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if self.station.location_id is None and not data.get("location"):
            raise forms.ValidationError("Choose a location for this station")
        return data


class MessageLogFilterForm(forms.Form):
    """The station page's message log: calls with their answers (default) or every frame; heartbeats hidden unless
    asked for (they are most of the frames and say only that the charger is there, which the page shows anyway)."""

    EXCHANGES, FRAMES = "exchanges", "frames"

    action = forms.CharField(required=False, max_length=64)
    direction = forms.ChoiceField(
        required=False, choices=[("", "both directions"), ("IN", "charger → CSMS"), ("OUT", "CSMS → charger")]
    )
    view = forms.ChoiceField(required=False, choices=[(EXCHANGES, "calls with their answers"), (FRAMES, "every frame")])
    heartbeats = forms.BooleanField(required=False, label="show heartbeats")


class PeriodPresetMixin:
    """A named period (today, this month, last month; UTC) that fills the form's from/to dates, and a check that
    the period does not end before it starts. `preset` is consumed here: the cleaned data holds the dates only."""

    period_fields: tuple[str, str]

    def clean(self):
        data = super().clean()  # type: ignore[misc]
        first, last = self.period_fields
        preset = data.pop("preset", "")
        if preset:
            data[first], data[last] = preset_days(preset=preset, today=timezone.now().astimezone(UTC).date())
        if data.get(first) and data.get(last) and data[last] < data[first]:
            self.add_error(last, "The period ends before it starts")  # type: ignore[attr-defined]
        return data


def preset_field() -> forms.ChoiceField:
    return forms.ChoiceField(required=False, label="Period", choices=[("", "from / to below")] + Preset.CHOICES)


class SessionFilterForm(PeriodPresetMixin, forms.Form):
    """Sessions by when the charging started (`started_from`/`started_to`, or a preset period)."""

    period_fields = ("started_from", "started_to")

    status = forms.ChoiceField(
        required=False, choices=[("", "active and past"), ("ACTIVE", "active"), ("ENDED", "ended")]
    )
    location = forms.ModelChoiceField(
        queryset=Location.objects.all(), required=False, empty_label="all locations", widget=FastSelect
    )
    station = forms.CharField(required=False, max_length=48, label="Station identity")
    token = forms.CharField(required=False, max_length=36, label="Token (idTag)")
    partner = forms.ModelChoiceField(
        queryset=Partner.objects.order_by("country_code", "party_id"),
        required=False,
        empty_label="all partners",
        label="Partner (EMSP)",
        widget=FastSelect,
    )
    preset = preset_field()
    started_from = forms.DateField(required=False, label="Started from", widget=forms.DateInput(attrs={"type": "date"}))
    started_to = forms.DateField(required=False, label="Started to", widget=forms.DateInput(attrs={"type": "date"}))


# --- Tariffs -------------------------------------------------------------------------------------------------------


class JsonTextarea(forms.Textarea):
    def __init__(self, rows: int = 6):
        super().__init__(attrs={"rows": rows, "class": "json", "spellcheck": "false"})


class OcpiJsonField(forms.JSONField):
    """OCPI JSON typed by staff: a syntax error says where (line and column), and no value (null) is an empty box
    rather than the text `null`."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)

    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValidationError:
            try:
                json.loads(value, cls=self.decoder)
            except json.JSONDecodeError as exc:
                raise ValidationError(
                    f"Not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.", code="invalid"
                ) from None
            raise


class TariffForm(forms.ModelForm):
    """The OCPI Tariff as staff edit it: ids and prices as fields, elements (and the optional texts and energy mix)
    as OCPI JSON. `is_valid()` runs `Tariff.full_clean()`, i.e. billing's `check_*` rules, and shows each problem
    on its field."""

    tariff_alt_url = forms.URLField(required=False, max_length=255, assume_scheme="https", label="Alt URL")

    class Meta:
        model = Tariff
        fields = [
            "id",
            "country_code",
            "party_id",
            "currency",
            "type",
            "elements",
            "min_price_excl_vat",
            "min_price_incl_vat",
            "max_price_excl_vat",
            "max_price_incl_vat",
            "start_date_time",
            "end_date_time",
            "tariff_alt_text",
            "tariff_alt_url",
            "energy_mix",
        ]
        widgets = {
            "elements": JsonTextarea(rows=12),
            "tariff_alt_text": JsonTextarea(rows=3),
            "energy_mix": JsonTextarea(rows=3),
            "start_date_time": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "end_date_time": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        }
        labels = {"start_date_time": "Valid from (UTC)", "end_date_time": "Valid until (UTC)"}
        field_classes = {"elements": OcpiJsonField, "tariff_alt_text": OcpiJsonField, "energy_mix": OcpiJsonField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance._state.adding:
            defaults = {
                "country_code": settings.OCPI_COUNTRY_CODE,
                "party_id": settings.OCPI_PARTY_ID,
                "currency": "EUR",
            }
            for name, value in defaults.items():
                self.initial[name] = self.initial.get(name) or value
        else:
            self.fields["id"].disabled = True  # the OCPI id is what partners and connectors refer to

    def clean_tariff_alt_text(self):
        return self.cleaned_data["tariff_alt_text"] or []


class LocalDateTimeField(forms.DateTimeField):
    """A wall-clock date and time without a zone: the caller says which zone it is in."""

    def to_python(self, value):
        value = super().to_python(value)
        return value.replace(tzinfo=None) if value is not None else None


def time_zone_choices() -> list[tuple[str, str]]:
    zones = set(Location.objects.order_by().values_list("time_zone", flat=True).distinct()[:50])
    zones.add(Location._meta.get_field("time_zone").default)
    zones.add(settings.TIME_ZONE)
    return [(zone, zone) for zone in sorted(zones)]


class PricePreviewForm(forms.Form):
    """A sample session to price: energy, duration (the last minutes of it parked) and start in local time."""

    kwh = forms.DecimalField(min_value=0, max_digits=9, decimal_places=3, initial=20, label="Energy (kWh)")
    minutes = forms.IntegerField(min_value=1, max_value=7 * 24 * 60, initial=90, label="Duration (min)")
    parking_minutes = forms.IntegerField(
        min_value=0, max_value=7 * 24 * 60, initial=0, required=False, label="of which parked (min)"
    )
    start = LocalDateTimeField(
        label="Start (local time)",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    time_zone = forms.ChoiceField(label="Time zone")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = time_zone_choices()
        self.fields["time_zone"].initial = Location._meta.get_field("time_zone").default

    def clean(self):
        data = super().clean()
        parking = data.get("parking_minutes") or 0
        if data.get("minutes") is not None and parking >= data["minutes"]:
            self.add_error("parking_minutes", "Parking must be shorter than the session")
        data["parking_minutes"] = parking
        return data


# --- Partners ------------------------------------------------------------------------------------------------------


class PartnerInviteForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Label for staff, and the business name we record")
    country_code = forms.RegexField(
        r"^[A-Za-z]{2}$",
        max_length=2,
        help_text="ISO 3166-1 alpha-2, e.g. NL",
        error_messages={"invalid": "Two letters"},
    )
    party_id = forms.RegexField(
        r"^[A-Za-z0-9]{3}$",
        max_length=3,
        help_text="Three characters, e.g. EXM",
        error_messages={"invalid": "Three letters or digits"},
    )
    role = forms.ChoiceField(choices=OcpiRole.choices, initial=OcpiRole.EMSP)


class PartnerRegisterForm(forms.Form):
    versions_url = forms.URLField(max_length=255, assume_scheme="https", label="Their versions URL")
    token = forms.CharField(max_length=64, label="Their token A", widget=forms.PasswordInput(render_value=False))
    name = forms.CharField(max_length=100, required=False)
    plain_token = forms.BooleanField(required=False, label="Send the token unencoded (pre-2.2.1 partners)")


# --- CDRs ----------------------------------------------------------------------------------------------------------


class CdrFilterForm(PeriodPresetMixin, forms.Form):
    """CDRs of a period, by the day they were issued or the day the charging started (`by`); the dates are
    `issued_from`/`issued_to` whichever the basis."""

    period_fields = ("issued_from", "issued_to")

    partner = forms.ModelChoiceField(
        queryset=Partner.objects.order_by("country_code", "party_id"),
        required=False,
        empty_label="all partners",
        widget=FastSelect,
    )
    location = forms.ModelChoiceField(
        queryset=Location.objects.all(), required=False, empty_label="all locations", widget=FastSelect
    )
    by = forms.ChoiceField(required=False, label="Date", choices=CdrDate.CHOICES)
    preset = preset_field()
    issued_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    issued_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    push_state = forms.ChoiceField(required=False, label="Push", choices=[("", "any push state")])
    ended_by = forms.ChoiceField(
        required=False,
        label="Ended by",
        choices=[("", "anyone"), (CLOSED_WITHOUT_STOP, "us, without the charger's stop")]
        + [(value, label) for value, label in Transaction.EndedBy.choices],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["push_state"].choices = [("", "any push state")] + PushState.CHOICES


# --- Analytics -----------------------------------------------------------------------------------------------------

ANALYTICS_MAX_DAYS = 366


class AnalyticsFilterForm(forms.Form):
    date_from = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))
    bucket = forms.ChoiceField(choices=[("day", "per day"), ("week", "per week")], initial="day", label="Group")
    time_zone = forms.ChoiceField(label="Time zone")

    def __init__(self, data=None, *, default_zone: str, today, **kwargs):
        values = {"date_from": today - timedelta(days=29), "date_to": today, "bucket": "day", "time_zone": default_zone}
        values.update({key: value for key, value in (data or {}).items() if key in values and value})
        super().__init__(values, **kwargs)
        self.fields["time_zone"].choices = time_zone_choices()

    def clean(self):
        data = super().clean()
        first, last = data.get("date_from"), data.get("date_to")
        if first and last:
            if last < first:
                self.add_error("date_to", "The period ends before it starts")
            elif (last - first).days >= ANALYTICS_MAX_DAYS:
                self.add_error("date_to", f"At most {ANALYTICS_MAX_DAYS} days at once")
        return data


class AuditFilterForm(forms.Form):
    username = forms.CharField(required=False, label="Who", widget=forms.TextInput(attrs={"placeholder": "username"}))
    action = forms.ChoiceField(required=False, label="What")
    identity = forms.CharField(
        required=False, label="Station", widget=forms.TextInput(attrs={"placeholder": "station identity"})
    )
    result = forms.ChoiceField(
        required=False, label="Result", choices=[("", "any result"), ("ok", "answered"), ("failed", "failed")]
    )
    date_from = forms.DateField(required=False, label="From (UTC)", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To (UTC)", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, actions: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "any action")] + [(a, a) for a in actions]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_to"] < data["date_from"]:
            self.add_error("date_to", "The period ends before it starts")
        return data


class TokenForm(forms.ModelForm):
    class Meta:
        model = Token
        fields = ["uid", "type", "contract_id", "visual_number", "group_id", "charging_priority", "expiry_date"]
        widgets = {"expiry_date": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")}
        labels = {"uid": "UID (as the charger reads it)", "group_id": "Group id (OCPP parentIdTag)"}


class TokenImportForm(forms.Form):
    """A CSV of own tokens, uploaded or pasted; UTF-8."""

    MAX_BYTES = 2 * 1024 * 1024

    file = forms.FileField(required=False, label="CSV file")
    pasted = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}), label="or paste CSV")

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            if upload.size > self.MAX_BYTES:
                raise ValidationError(f"The file is above {self.MAX_BYTES // 1024 // 1024} MB: split it.")
            try:
                data["text"] = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise ValidationError("The file is not UTF-8 text: save it as CSV UTF-8.") from None
        elif data.get("pasted", "").strip():
            data["text"] = data["pasted"]
        else:
            raise ValidationError("Choose a CSV file or paste its lines.")
        return data


class StaffUserForm(forms.Form):
    username = forms.CharField(max_length=150, validators=[RegexValidator(r"^[\w.@+-]+$")])
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=[("viewer", "viewer"), ("operator", "operator"), ("admin", "admin")])
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        help_text="A first password to hand over; they change it after logging in.",
    )
