"""OCPP 2.0.1: the messages a charging station sends, answered per the specification."""

import logging
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from ocpp.exceptions import OCPPError
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from ocpp_gateway.handlers.base import (
    GatewayChargePoint,
    MessageTypeNotSupportedError,
    RpcFrameworkError,
    db,
    db_authorizing,
    on,
    parse_ocpp_datetime,
    utc_now_iso,
)
from ocpp_gateway.measurands import ENERGY_REGISTER
from ocpp_gateway.requests import group_id_token
from ocpp_gateway.selectors import load_managed_station_pks
from ocpp_gateway.services.authorization import id_tag_check
from ocpp_gateway.services.availability import (
    evse_status_update,
    station_availability_events,
    station_availability_record,
)
from ocpp_gateway.services.certificates import station_csr_check
from ocpp_gateway.services.device_model import report_data_reported, station_variables_record
from ocpp_gateway.services.diagnostics import diagnostics_status_record
from ocpp_gateway.services.firmware import station_firmware_status_record
from ocpp_gateway.services.load_management import ev_current_range, ev_phases, transaction_ev_needs_record
from ocpp_gateway.services.meter_values import Sample, meter_values_receive, to_decimal
from ocpp_gateway.services.provisioning import station_boot
from ocpp_gateway.services.reservations import reservation_status_update
from ocpp_gateway.services.security import station_security_event_record
from ocpp_gateway.services.transactions import (
    TransactionEventInput,
    transaction_event_201,
    transactions_end_at_boot,
)

logger = logging.getLogger(__name__)


def id_token_info(auth) -> dict:
    info = {"status": auth.status}
    if auth.expiry_date is not None:
        info["cacheExpiryDateTime"] = auth.expiry_date.isoformat().replace("+00:00", "Z")
    if auth.group_id:
        info["groupIdToken"] = group_id_token(auth.group_id)
    return info


def samples_201(meter_value: list[dict] | None, time_of: Callable[[str | None], datetime]) -> list[Sample]:
    """2.0.1 MeterValueType[] (snake_case from the library) into version-neutral samples. Values are numbers,
    scaled by unitOfMeasure.multiplier (a power of ten)."""
    samples = []
    for entry in meter_value or []:
        timestamp = time_of(entry.get("timestamp"))
        for sv in entry.get("sampled_value") or []:
            unit = sv.get("unit_of_measure") or {}
            value = to_decimal(sv.get("value"))
            if value is not None and unit.get("multiplier"):
                value = value.scaleb(int(unit["multiplier"]))
            measurand = sv.get("measurand") or ENERGY_REGISTER
            samples.append(
                Sample(
                    timestamp=timestamp,
                    value=value,
                    measurand=measurand,
                    unit=unit.get("unit") or ("Wh" if measurand == ENERGY_REGISTER else ""),
                    phase=sv.get("phase") or "",
                    context=sv.get("context") or "Sample.Periodic",
                    location=sv.get("location") or "",
                    signed_data=sv.get("signed_meter_value"),
                )
            )
    return samples


class ChargePoint201(GatewayChargePoint):
    ocpp_version = "2.0.1"
    ocpp_subprotocol = "ocpp2.0.1"
    call_module = call
    result_module = call_result

    def error_code(self, error: OCPPError) -> str:
        # The library reports a missing required field as ProtocolError (1.6: "Payload for Action is incomplete");
        # OCPP-J 2.0.1 names that an occurrence constraint violation.
        return "OccurrenceConstraintViolation" if error.code == "ProtocolError" else error.code

    def unsupported_message_type(self, unique_id, message_type) -> OCPPError:
        return MessageTypeNotSupportedError(details={"cause": f"MessageTypeId {message_type!r} is not supported"})

    def rpc_error(self, cause: str) -> OCPPError:
        return RpcFrameworkError(details={"cause": cause})

    # -- Provisioning --------------------------------------------------------------------------------------------
    @on(Action.boot_notification)
    async def on_boot_notification(self, charging_station, reason, **kwargs):
        if pending := self.boot_pending():
            return pending
        modem = charging_station.get("modem") or {}
        status = await db(station_boot)(
            station_pk=self.station_pk,
            vendor=charging_station["vendor_name"],
            model=charging_station["model"],
            serial_number=charging_station.get("serial_number", ""),
            firmware_version=charging_station.get("firmware_version", ""),
            iccid=modem.get("iccid", ""),
            imsi=modem.get("imsi", ""),
        )
        if reason != "Triggered":  # a boot we asked for with TriggerMessage is no reboot
            await db(transactions_end_at_boot)(station_pk=self.station_pk)
        self.registration_status = status
        return self.result_module.BootNotification(
            current_time=utc_now_iso(), interval=settings.OCPP_HEARTBEAT_INTERVAL, status=status
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, **kwargs):
        return self.result_module.Heartbeat(current_time=utc_now_iso())

    @on(Action.status_notification)
    async def on_status_notification(self, timestamp, connector_status, evse_id, connector_id, **kwargs):
        await db(evse_status_update)(
            station_pk=self.station_pk,
            ocpp_evse_id=evse_id,
            ocpp_status=connector_status,
            timestamp=self.charger_time(timestamp),
            ocpp_version=self.ocpp_version,
        )
        return self.result_module.StatusNotification()

    @on(Action.notify_report)
    async def on_notify_report(self, request_id, generated_at, seq_no, **kwargs):
        reported = report_data_reported(kwargs.get("report_data") or [])
        if reported:
            await db(station_variables_record)(station_pk=self.station_pk, reported=reported)
        return self.result_module.NotifyReport()

    @on(Action.notify_event)
    async def on_notify_event(self, generated_at, seq_no, event_data, **kwargs):
        reports = station_availability_events(
            [{**event, "timestamp": self.charger_time(event.get("timestamp"))} for event in event_data or []]
        )
        if reports:  # most events are about components we do not track: no database call for them
            await db(station_availability_record)(station_pk=self.station_pk, reports=reports)
        return self.result_module.NotifyEvent()

    @on(Action.notify_monitoring_report)
    async def on_notify_monitoring_report(self, request_id, seq_no, generated_at, **kwargs):
        return self.result_module.NotifyMonitoringReport()

    @on(Action.security_event_notification)
    async def on_security_event_notification(self, type, timestamp, tech_info=None, **kwargs):
        await db(station_security_event_record)(
            station_pk=self.station_pk, type=type, timestamp=timestamp, tech_info=tech_info or ""
        )
        return self.result_module.SecurityEventNotification()

    @on(Action.sign_certificate)
    async def on_sign_certificate(self, csr, certificate_type=None, **kwargs):
        certificate_type = certificate_type or ""
        refusal = await db(station_csr_check)(station_pk=self.station_pk, csr=csr, certificate_type=certificate_type)
        if refusal:
            logger.warning("%s: SignCertificate rejected: %s", self.identity, refusal)
            return self.result_module.SignCertificate(
                status="Rejected", status_info={"reason_code": "InvalidCSR", "additional_info": refusal[:512]}
            )
        self.after_reply(self.certificate_issue(csr=csr, certificate_type=certificate_type))
        return self.result_module.SignCertificate(status="Accepted")

    # -- Authorization and transactions ---------------------------------------------------------------------------
    @on(Action.authorize)
    async def on_authorize(self, id_token, **kwargs):
        auth = await db_authorizing(id_tag_check)(
            station_pk=self.station_pk, id_tag=id_token.get("id_token", ""), id_token_type=id_token.get("type", "")
        )
        return self.result_module.Authorize(id_token_info=id_token_info(auth))

    @on(Action.transaction_event)
    async def on_transaction_event(self, event_type, timestamp, trigger_reason, seq_no, transaction_info, **kwargs):
        evse = kwargs.get("evse") or {}
        id_token = kwargs.get("id_token") or {}
        event = TransactionEventInput(
            event_type=event_type,
            timestamp=self.charger_time(timestamp),
            trigger_reason=trigger_reason,
            seq_no=seq_no,
            transaction_id=transaction_info["transaction_id"],
            charging_state=transaction_info.get("charging_state", ""),
            stopped_reason=transaction_info.get("stopped_reason", ""),
            remote_start_id=transaction_info.get("remote_start_id"),
            ocpp_evse_id=evse.get("id"),
            connector_id=evse.get("connector_id"),
            id_token=id_token.get("id_token", ""),
            id_token_type=id_token.get("type", ""),
            reservation_id=kwargs.get("reservation_id"),
            offline=bool(kwargs.get("offline")),
            samples=tuple(samples_201(kwargs.get("meter_value"), self.charger_time)),
            ocpp_version=self.ocpp_version,
            payload={
                "event_type": event_type,
                "timestamp": timestamp,
                "trigger_reason": trigger_reason,
                "seq_no": seq_no,
                "transaction_info": transaction_info,
                **kwargs,
            },
        )
        _tx, auth = await db_authorizing(transaction_event_201)(station_pk=self.station_pk, event=event)
        return self.result_module.TransactionEvent(id_token_info=id_token_info(auth) if auth else None)

    @on(Action.meter_values)
    async def on_meter_values(self, evse_id, meter_value, **kwargs):
        await db(meter_values_receive)(
            station_pk=self.station_pk,
            ocpp_evse_id=evse_id,
            transaction_id=None,
            samples=samples_201(meter_value, self.charger_time),
        )
        return self.result_module.MeterValues()

    @on(Action.reservation_status_update)
    async def on_reservation_status_update(self, reservation_id, reservation_update_status, **kwargs):
        await db(reservation_status_update)(
            station_pk=self.station_pk, reservation_id=reservation_id, update_status=reservation_update_status
        )
        return self.result_module.ReservationStatusUpdate()

    # -- Smart charging ------------------------------------------------------------------------------------------
    @on(Action.notify_charging_limit)
    async def on_notify_charging_limit(self, charging_limit, **kwargs):
        return self.result_module.NotifyChargingLimit()

    @on(Action.cleared_charging_limit)
    async def on_cleared_charging_limit(self, charging_limit_source, **kwargs):
        return self.result_module.ClearedChargingLimit()

    @on(Action.report_charging_profiles)
    async def on_report_charging_profiles(self, request_id, charging_limit_source, charging_profile, evse_id, **kwargs):
        return self.result_module.ReportChargingProfiles()

    @on(Action.notify_ev_charging_needs)
    async def on_notify_ev_charging_needs(self, charging_needs, evse_id, **kwargs):
        """K17: the car's needs feed load management (its current range caps its share); Accepted when a session on
        that EVSE is under a load group, so a charging profile follows; else Rejected, and the station keeps its own
        schedule (we do not compute ISO 15118 schedules otherwise)."""
        min_amps, max_amps = ev_current_range(charging_needs)
        departure_text = charging_needs.get("departure_time")
        departure = parse_ocpp_datetime(departure_text, field="departureTime") if departure_text else None
        planned = await db(transaction_ev_needs_record)(
            station_pk=self.station_pk,
            ocpp_evse_id=evse_id,
            min_amps=min_amps,
            max_amps=max_amps,
            departure_time=departure,
            phases=ev_phases(charging_needs),
        )
        managed = planned and self.station_pk in await db(load_managed_station_pks)()
        return self.result_module.NotifyEVChargingNeeds(status="Accepted" if managed else "Rejected")

    @on(Action.notify_ev_charging_schedule)
    async def on_notify_ev_charging_schedule(self, time_base, charging_schedule, evse_id, **kwargs):
        return self.result_module.NotifyEVChargingSchedule(status="Accepted")

    # -- Firmware, diagnostics, display, customer information ----------------------------------------------------
    @on(Action.firmware_status_notification)
    async def on_firmware_status_notification(self, status, **kwargs):
        await db(station_firmware_status_record)(
            station_pk=self.station_pk, status=status, request_id=kwargs.get("request_id")
        )
        return self.result_module.FirmwareStatusNotification()

    @on(Action.publish_firmware_status_notification)
    async def on_publish_firmware_status_notification(self, status, **kwargs):
        return self.result_module.PublishFirmwareStatusNotification()

    @on(Action.log_status_notification)
    async def on_log_status_notification(self, status, **kwargs):
        await db(diagnostics_status_record)(
            station_pk=self.station_pk, status=status, request_id=kwargs.get("request_id")
        )
        return self.result_module.LogStatusNotification()

    @on(Action.notify_customer_information)
    async def on_notify_customer_information(self, data, seq_no, generated_at, request_id, **kwargs):
        return self.result_module.NotifyCustomerInformation()

    @on(Action.notify_display_messages)
    async def on_notify_display_messages(self, request_id, **kwargs):
        return self.result_module.NotifyDisplayMessages()

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id, **kwargs):
        return self.result_module.DataTransfer(status="UnknownVendorId")
