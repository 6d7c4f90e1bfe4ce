"""Commands the gateway's own services send (local lists, diagnostics, firmware), announced for the audit log.

The dashboard audits what staff send from its pages; commands the platform sends by itself, or that staff start
through a gateway service, are announced here (`events.command_answered`) with who asked, what was sent and what
came back, and the dashboard writes them to the same audit log."""

from dataclasses import dataclass

from cpo.models import ChargingStation
from ocpp_gateway import events
from ocpp_gateway.commands import CommandError, command_send
from ocpp_gateway.requests import OcppRequest


@dataclass(frozen=True)
class Answered:
    """The charger's CALLRESULT payload, or the CommandError saying why there was none."""

    answer: dict | None
    error: CommandError | None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> str:
        """The answer's `status`, or why there was none (`timeout`, `offline`, `call_error: NotImplemented`...)."""
        if self.error is not None:
            return self.error.reason + (f": {self.error.error_code}" if self.error.error_code else "")
        return str((self.answer or {}).get("status", ""))


def command_send_audited(
    *, station: ChargingStation, request: OcppRequest, actor: str, audit_payload: dict | None = None
) -> Answered:
    """Send the request in the words of the station's version and announce it for the audit log. `audit_payload`
    replaces the payload in the log when the payload is too long to keep whole (a local list of thousands)."""
    action, payload = request.for_version(station.ocpp_version)
    try:
        answer = command_send(identity=station.identity, action=action, payload=payload)
    except CommandError as exc:
        answered = Answered(answer=None, error=exc)
        error = command_error_text(exc)
    else:
        answered = Answered(answer=answer, error=None)
        error = ""
    command_audit_announce(
        station_pk=station.pk,
        action=action,
        payload=audit_payload if audit_payload is not None else payload,
        answer=answered.answer,
        error=error,
        actor=actor,
    )
    return answered


def command_error_text(error: CommandError) -> str:
    return f"{error.reason}: {error}" + (f" ({error.error_code})" if error.error_code else "")


def command_audit_announce(
    *, station_pk: int, action: str, payload: dict, answer: dict | None, error: str | CommandError | None, actor: str
) -> None:
    """Announce a command that went (or did not go) to a charger for the audit log: every path that sends one
    without a staff member's page (command line, partners' OCPI commands, the load planner, the platform itself)
    calls this, with `actor` saying who asked."""
    if isinstance(error, CommandError):
        error = command_error_text(error)
    events.announce(
        events.command_answered,
        station_pk=station_pk,
        action=action,
        payload=payload,
        answer=answer,
        error=error or "",
        actor=actor[:150],
    )
