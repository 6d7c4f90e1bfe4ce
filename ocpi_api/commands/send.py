"""An accepted command on its way to the charger: the gateway's request builder for it (ocpp_gateway.requests; the
station's OCPP version picks the wire form), the claim that sends it once, and the charger's answer recorded.

Reservation ids sent to chargers are ours (`ocpp_reservation_id`), never the partner's, so partners cannot replace or
cancel each other's reservations. The charging profile a partner sets is one TxProfile per transaction, its id
derived from the transaction's (`partner_charging_profile_id`): a new PUT replaces it, DELETE clears it.
"""

from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections

from ocpi_api.commands.results import command_answer_record
from ocpi_api.models import Command, CommandState, CommandType
from ocpp_gateway import requests as ocpp_requests
from ocpp_gateway.commands import CommandError, check_station_reachable, command_send, command_send_async
from ocpp_gateway.models import ChargingProfile
from ocpp_gateway.selectors import connector_ocpp_id

# Stack level of the TxProfiles partners set (one per transaction; a new PUT replaces the previous one).
CHARGING_PROFILE_STACK_LEVEL = 1
# Partners' profile ids: 1,000,000,000 + the transaction's pk (modulo a billion), a range of their own. The planner's
# ids are 899,999 and 900,000 + EVSE (ocpp_gateway.services.load_management) and staff's 2,000,000,000 and up
# (cpo.dashboard.services): the transaction's pk itself reached the planner's ids after 900,000 transactions, and a
# partner's profile then replaced the planner's on the charger (or the other way round).
PARTNER_CHARGING_PROFILE_ID_BASE = 1_000_000_000


def partner_charging_profile_id(*, transaction_pk: int) -> int:
    """The id of the TxProfile partners set for a transaction (an int32 for chargers)."""
    return PARTNER_CHARGING_PROFILE_ID_BASE + transaction_pk % PARTNER_CHARGING_PROFILE_ID_BASE


def partner_charging_profile_id_sent(*, transaction_pk: int) -> int:
    """The id a partner's profile for the transaction was sent with (kept with it, `ChargingProfile`): what a DELETE
    clears, also for a profile sent before the ids had a range of their own; the derived id when none was kept."""
    kept = (
        ChargingProfile.objects.filter(transaction_id=transaction_pk, source=ChargingProfile.Source.PARTNER)
        .order_by("-created_at", "-id")
        .values_list("profile_id", flat=True)
        .first()
    )
    return kept if kept is not None else partner_charging_profile_id(transaction_pk=transaction_pk)


def charging_schedule_from_ocpi(profile: dict) -> ocpp_requests.ChargingSchedule:
    """An OCPI ChargingProfile (as the partner sent it) as the gateway's ChargingSchedule."""
    return ocpp_requests.ChargingSchedule(
        charging_rate_unit=profile["charging_rate_unit"],
        periods=tuple(
            ocpp_requests.ChargingSchedulePeriod(start_period=int(p["start_period"]), limit=p["limit"])
            for p in profile["charging_profile_period"]
        ),
        duration=profile.get("duration"),
        start_schedule=profile.get("start_date_time") or None,
        min_charging_rate=profile.get("min_charging_rate"),
    )


def command_request(cmd: Command) -> ocpp_requests.OcppRequest:
    """The gateway's request for a command."""
    evse, tx, request = cmd.evse, cmd.transaction, cmd.request
    token = cmd.token or {}
    ocpp_evse_id = evse.ocpp_evse_id if evse is not None else None
    if cmd.command == CommandType.START_SESSION:
        return ocpp_requests.RemoteStart(
            id_tag=cmd.id_tag,
            token_type=token.get("type", ""),
            evse_id=ocpp_evse_id,
            remote_start_id=cmd.pk,
            group_id=token.get("group_id") or "",
        )
    if cmd.command == CommandType.STOP_SESSION:
        return ocpp_requests.RemoteStop(transaction_id=tx.transaction_id)
    if cmd.command == CommandType.UNLOCK_CONNECTOR:
        return ocpp_requests.UnlockConnector(
            evse_id=ocpp_evse_id, connector_id=connector_ocpp_id(evse=evse, connector_id=cmd.connector_id)
        )
    if cmd.command == CommandType.RESERVE_NOW:
        return ocpp_requests.ReserveNow(
            reservation_id=cmd.ocpp_reservation_id,
            expiry=request["expiry_date"],
            id_tag=cmd.id_tag,
            token_type=token.get("type", ""),
            evse_id=ocpp_evse_id,
            group_id=token.get("group_id") or "",
        )
    if cmd.command == CommandType.CANCEL_RESERVATION:
        return ocpp_requests.CancelReservation(reservation_id=cmd.ocpp_reservation_id)
    evse_id = ocpp_evse_id if ocpp_evse_id is not None else (tx.ocpp_evse_id or 0)
    if cmd.command == CommandType.SET_CHARGING_PROFILE:
        return ocpp_requests.SetChargingProfile(
            evse_id=evse_id,
            transaction_id=tx.transaction_id,
            profile_id=partner_charging_profile_id(transaction_pk=tx.pk),
            schedule=charging_schedule_from_ocpi(request["charging_profile"]),
            stack_level=CHARGING_PROFILE_STACK_LEVEL,
        )
    if cmd.command == CommandType.GET_ACTIVE_CHARGING_PROFILE:
        return ocpp_requests.GetCompositeSchedule(evse_id=evse_id, duration=int(request["duration"]))
    return ocpp_requests.ClearChargingProfile(profile_id=partner_charging_profile_id_sent(transaction_pk=tx.pk))


@dataclass(frozen=True)
class PreparedCall:
    command_pk: int
    identity: str
    channel: str  # the consumer holding the charger's socket (commands.check_station_reachable)
    action: str
    payload: dict


def command_prepare(*, command_pk: int) -> PreparedCall | None:
    """Claim a PENDING command (exactly once, whichever worker gets there first) and build its OCPP call. None when
    there is nothing to send: already claimed, or the charger is unreachable (the result is then recorded)."""
    if not Command.objects.filter(pk=command_pk, state=CommandState.PENDING).update(state=CommandState.SENT):
        return None
    cmd = Command.objects.select_related("station", "evse", "transaction").get(pk=command_pk)
    action, payload = command_request(cmd).for_version(cmd.station.ocpp_version)
    Command.objects.filter(pk=command_pk).update(ocpp_action=action, ocpp_request=payload)
    try:
        station = check_station_reachable(identity=cmd.station.identity)
    except CommandError as exc:
        command_answer_record(command_pk=command_pk, error=exc)
        return None
    return PreparedCall(
        command_pk=command_pk,
        identity=station.identity,
        channel=station.connection_channel,
        action=action,
        payload=payload,
    )


def command_execute(*, command_pk: int) -> None:
    """Send the command to the charger and record its answer (synchronous: workers, threads)."""
    call = command_prepare(command_pk=command_pk)
    if call is None:
        return
    try:
        answer = command_send(identity=call.identity, action=call.action, payload=call.payload)
    except CommandError as exc:
        command_answer_record(command_pk=command_pk, error=exc)
    else:
        command_answer_record(command_pk=command_pk, answer=answer)


def in_thread(func, *args, **kwargs):
    """Run a synchronous step off the event loop, on a connection of its own (closed after)."""

    def run():
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            connections.close_all()

    return sync_to_async(run, thread_sensitive=False)()


async def command_execute_async(*, command_pk: int) -> None:
    """The same on the event loop of the process holding the chargers' sockets (embedded mode)."""
    call = await in_thread(command_prepare, command_pk=command_pk)
    if call is None:
        return
    try:
        answer = await command_send_async(
            identity=call.identity, channel=call.channel, action=call.action, payload=call.payload
        )
    except CommandError as exc:
        await in_thread(command_answer_record, command_pk=command_pk, error=exc)
    else:
        await in_thread(command_answer_record, command_pk=command_pk, answer=answer)
