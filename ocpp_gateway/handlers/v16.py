"""OCPP 1.6J: every message a charge point sends in the Core, Firmware Management, Local Auth List, Reservation,
Remote Trigger and Smart Charging profiles (plus the security extension's notifications and certificate signing) is
answered here."""

import logging
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from ocpp.exceptions import OCPPError
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from ocpp_gateway.handlers.base import (
    GatewayChargePoint,
    db,
    db_authorizing,
    on,
    parse_ocpp_datetime,
    utc_now_iso,
)
from ocpp_gateway.measurands import ENERGY_REGISTER
from ocpp_gateway.services.authorization import id_tag_check
from ocpp_gateway.services.availability import evse_status_update
from ocpp_gateway.services.certificates import station_csr_check
from ocpp_gateway.services.diagnostics import diagnostics_status_record
from ocpp_gateway.services.firmware import station_firmware_status_record
from ocpp_gateway.services.meter_values import Sample, meter_values_receive, to_decimal, transaction_remember
from ocpp_gateway.services.provisioning import station_boot
from ocpp_gateway.services.security import station_security_event_record
from ocpp_gateway.services.transactions import (
    transaction_start_16,
    transaction_stop_16,
    transactions_end_at_boot,
)

logger = logging.getLogger(__name__)

# OCPP-J 1.6 spells two error codes differently from 2.0.1 (and from the library, which uses the 2.0.1 names).
ERROR_CODES_16 = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
}


def id_tag_info(auth) -> dict:
    info = {"status": auth.status}
    if auth.expiry_date is not None:
        info["expiryDate"] = auth.expiry_date.isoformat().replace("+00:00", "Z")
    if auth.group_id:
        info["parentIdTag"] = auth.group_id
    return info


def samples_16(meter_value: list[dict] | None, time_of: Callable[[str | None], datetime]) -> list[Sample]:
    """1.6 MeterValue[] (snake_case from the library) into version-neutral samples. Values are strings."""
    samples = []
    for entry in meter_value or []:
        timestamp = time_of(entry.get("timestamp"))
        for sv in entry.get("sampled_value") or []:
            signed = sv.get("format") == "SignedData"
            samples.append(
                Sample(
                    timestamp=timestamp,
                    value=None if signed else to_decimal(sv.get("value")),
                    measurand=sv.get("measurand") or ENERGY_REGISTER,
                    unit=sv.get("unit") or ("Wh" if not sv.get("measurand") else ""),
                    phase=sv.get("phase") or "",
                    context=sv.get("context") or "Sample.Periodic",
                    location=sv.get("location") or "",
                    format=sv.get("format") or "",
                    signed_data=sv.get("value") if signed else None,
                )
            )
    return samples


class ChargePoint16(GatewayChargePoint):
    ocpp_version = "1.6"
    ocpp_subprotocol = "ocpp1.6"
    call_module = call
    result_module = call_result

    def error_code(self, error: OCPPError) -> str:
        return ERROR_CODES_16.get(error.code, error.code)

    # -- Core --------------------------------------------------------------------------------------------------
    @on(Action.boot_notification)
    async def on_boot_notification(self, charge_point_vendor, charge_point_model, **kwargs):
        if pending := self.boot_pending():
            return pending
        status = await db(station_boot)(
            station_pk=self.station_pk,
            vendor=charge_point_vendor,
            model=charge_point_model,
            serial_number=kwargs.get("charge_point_serial_number") or kwargs.get("charge_box_serial_number") or "",
            firmware_version=kwargs.get("firmware_version", ""),
            iccid=kwargs.get("iccid", ""),
            imsi=kwargs.get("imsi", ""),
            meter_type=kwargs.get("meter_type", ""),
            meter_serial_number=kwargs.get("meter_serial_number", ""),
        )
        await db(transactions_end_at_boot)(station_pk=self.station_pk)  # 1.6 keeps no transaction over a boot
        self.registration_status = status
        return call_result.BootNotification(
            current_time=utc_now_iso(), interval=settings.OCPP_HEARTBEAT_INTERVAL, status=status
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, **kwargs):
        return call_result.Heartbeat(current_time=utc_now_iso())

    @on(Action.status_notification)
    async def on_status_notification(self, connector_id, error_code, status, **kwargs):
        timestamp = self.charger_time(kwargs["timestamp"]) if kwargs.get("timestamp") else None
        await db(evse_status_update)(
            station_pk=self.station_pk,
            ocpp_evse_id=connector_id,
            ocpp_status=status,
            error_code=error_code,
            info=kwargs.get("info", ""),
            vendor_id=kwargs.get("vendor_id", ""),
            vendor_error_code=kwargs.get("vendor_error_code", ""),
            timestamp=timestamp,
        )
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag, **kwargs):
        auth = await db_authorizing(id_tag_check)(station_pk=self.station_pk, id_tag=id_tag)
        return call_result.Authorize(id_tag_info=id_tag_info(auth))

    @on(Action.start_transaction)
    async def on_start_transaction(self, connector_id, id_tag, meter_start, timestamp, **kwargs):
        tx, auth = await db_authorizing(transaction_start_16)(
            station_pk=self.station_pk,
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start=meter_start,
            timestamp=self.charger_time(timestamp),
            charger_timestamp=parse_ocpp_datetime(timestamp),
            reservation_id=kwargs.get("reservation_id"),
        )
        transaction_remember(self.known_transactions, transaction_id=tx.transaction_id, transaction_pk=tx.pk)
        return call_result.StartTransaction(transaction_id=int(tx.transaction_id), id_tag_info=id_tag_info(auth))

    @on(Action.stop_transaction)
    async def on_stop_transaction(self, meter_stop, timestamp, transaction_id, **kwargs):
        _tx, auth = await db_authorizing(transaction_stop_16)(
            station_pk=self.station_pk,
            transaction_id=transaction_id,
            meter_stop=meter_stop,
            timestamp=self.charger_time(timestamp),
            reason=kwargs.get("reason", ""),
            id_tag=kwargs.get("id_tag", ""),
            samples=samples_16(kwargs.get("transaction_data"), self.charger_time),
        )
        return call_result.StopTransaction(id_tag_info=id_tag_info(auth) if auth else None)

    @on(Action.meter_values)
    async def on_meter_values(self, connector_id, meter_value, **kwargs):
        await db(meter_values_receive)(
            station_pk=self.station_pk,
            ocpp_evse_id=connector_id,
            transaction_id=kwargs.get("transaction_id"),
            samples=samples_16(meter_value, self.charger_time),
            known_transactions=self.known_transactions,
        )
        return call_result.MeterValues()

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id, **kwargs):
        # No vendor extensions are implemented: the spec's answer for that is UnknownVendorId.
        return call_result.DataTransfer(status="UnknownVendorId")

    # -- Firmware Management -----------------------------------------------------------------------------------
    @on(Action.diagnostics_status_notification)
    async def on_diagnostics_status_notification(self, status, **kwargs):
        await db(diagnostics_status_record)(station_pk=self.station_pk, status=status)
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    async def on_firmware_status_notification(self, status, **kwargs):
        await db(station_firmware_status_record)(
            station_pk=self.station_pk, status=status, request_id=kwargs.get("request_id")
        )
        return call_result.FirmwareStatusNotification()

    # -- Security whitepaper for 1.6 (notifications only) ------------------------------------------------------
    @on(Action.security_event_notification)
    async def on_security_event_notification(self, type, timestamp, tech_info=None, **kwargs):
        await db(station_security_event_record)(
            station_pk=self.station_pk, type=type, timestamp=timestamp, tech_info=tech_info or ""
        )
        return call_result.SecurityEventNotification()

    @on(Action.log_status_notification)
    async def on_log_status_notification(self, status, **kwargs):
        await db(diagnostics_status_record)(
            station_pk=self.station_pk, status=status, request_id=kwargs.get("request_id")
        )
        return call_result.LogStatusNotification()

    @on(Action.sign_certificate)
    async def on_sign_certificate(self, csr, **kwargs):
        refusal = await db(station_csr_check)(station_pk=self.station_pk, csr=csr)
        if refusal:
            logger.warning("%s: SignCertificate rejected: %s", self.identity, refusal)
            return call_result.SignCertificate(status="Rejected")
        self.after_reply(self.certificate_issue(csr=csr))
        return call_result.SignCertificate(status="Accepted")

    @on(Action.signed_firmware_status_notification)
    async def on_signed_firmware_status_notification(self, status, **kwargs):
        await db(station_firmware_status_record)(
            station_pk=self.station_pk, status=status, request_id=kwargs.get("request_id")
        )
        return call_result.SignedFirmwareStatusNotification()
