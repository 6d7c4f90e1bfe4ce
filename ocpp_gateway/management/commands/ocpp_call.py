import getpass
import json

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.management.base import BaseCommand
from django.core.management.base import CommandError as DjangoCommandError

from cpo.models import ChargingStation
from ocpp_gateway.commands import CommandError, command_call_for, command_send
from ocpp_gateway.models import ChargingProfile
from ocpp_gateway.requests import REQUESTS, request_from_arguments
from ocpp_gateway.services.command_audit import command_audit_announce
from ocpp_gateway.services.load_management import charging_profile_record


class Command(BaseCommand):
    help = (
        "Send an OCPP command to a connected charger and print its answer, e.g.\n"
        '  manage.py ocpp_call CP-1 Reset \'{"type": "Soft"}\'   (1.6)\n'
        '  manage.py ocpp_call CP-2 Reset \'{"type": "Immediate"}\'   (2.0.1)\n'
        "or name a command of ocpp_gateway.requests with its arguments, written for the station's version:\n"
        "  manage.py ocpp_call CP-1 reset '{\"hard\": true}'\n"
        "Needs REDIS_URL (the Redis channel layer, for this command and the server): the charger is connected to "
        "another process."
    )

    def add_arguments(self, parser):
        parser.add_argument("identity")
        parser.add_argument("action", help=f"OCPP action, e.g. RemoteStartTransaction, or one of {', '.join(REQUESTS)}")
        parser.add_argument(
            "payload", nargs="?", default="{}", help="JSON payload in the spec's camelCase, or the command's arguments"
        )
        parser.add_argument("--timeout", type=float, default=None)

    def handle(self, identity, action, payload, timeout, **options):
        try:
            body = json.loads(payload)
        except ValueError as exc:
            raise DjangoCommandError(f"payload is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise DjangoCommandError("payload must be a JSON object")
        check_layer_crosses_processes()
        try:
            if action in REQUESTS:
                action, body = command_call_for(identity=identity, request=request_from_arguments(action, body))
        except ValueError as exc:
            raise DjangoCommandError(str(exc)) from exc
        actor = f"command line ({getpass.getuser()})"
        station_pk = ChargingStation.objects.filter(identity=identity).values_list("pk", flat=True).first()
        try:
            answer = command_send(identity=identity, action=action, payload=body, timeout=timeout)
        except CommandError as exc:
            if station_pk is not None:
                command_audit_announce(
                    station_pk=station_pk, action=action, payload=body, answer=None, error=exc, actor=actor
                )
                profile_keep(station_pk, action, body, exc.reason)
            raise DjangoCommandError(json.dumps(exc.as_dict())) from exc
        if station_pk is not None:
            command_audit_announce(
                station_pk=station_pk, action=action, payload=body, answer=answer, error=None, actor=actor
            )
            profile_keep(station_pk, action, body, str(answer.get("status", "")))
        self.stdout.write(json.dumps(answer))


def profile_keep(station_pk: int, action: str, payload: dict, status: str) -> None:
    """A charging profile staff set by hand is kept with the others, its source staff (the station page lists it)."""
    if action == "SetChargingProfile":
        charging_profile_record(
            station_pk=station_pk, payload=payload, source=ChargingProfile.Source.STAFF, status=status
        )


def check_layer_crosses_processes() -> None:
    """The charger's socket lives in a daphne process, never in this one; the in-memory channel layer (no
    REDIS_URL) reaches only consumers of its own process, so the command could only wait and time out."""
    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        raise DjangoCommandError(
            "ocpp_call reaches the charger through the channel layer, and without REDIS_URL that layer is "
            "in-memory: it does not cross processes, so this command cannot reach the daphne process the charger "
            "is connected to. Start the server and this command with the same REDIS_URL (e.g. "
            "REDIS_URL=redis://127.0.0.1:6379/0), or send the command from the dashboard's station page."
        )
