"""Domain events the gateway announces to the rest of the platform, always after the database commit.

Receivers (billing, ocpi_api, the dashboard) connect in their AppConfig.ready and typically enqueue a Celery task
with the ids they get. The gateway never builds OCPI objects itself.
"""

import logging

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

# kwargs: transaction_pk
transaction_started = Signal()
# kwargs: transaction_pk
transaction_updated = Signal()
# kwargs: transaction_pk
transaction_ended = Signal()
# kwargs: transaction_pk. What the car (2.0.1 NotifyEVChargingNeeds) or the driver (OCPI ChargingPreferences) asks of
# a running session changed: load management shares its group again.
transaction_load_needs_changed = Signal()
# kwargs: transaction_pk. A charger's late stop for a transaction we had ended without it (reboot, new transaction,
# status, housekeeping) replaced its meter_stop / ended_at; the session and CDR may need a correction.
transaction_stop_corrected = Signal()
# kwargs: reservation_pk, status (Reservation.Status). A reservation was answered by the charger, ended (expired,
# cancelled) or used.
reservation_changed = Signal()
# kwargs: evse_pk, status (OCPI EvseStatus), ocpp_status
connector_status_changed = Signal()
# kwargs: station_pk
station_online = Signal()
# kwargs: station_pk
station_offline = Signal()
# kwargs: station_pk. A BootNotification we answered Accepted: the station takes commands now.
station_booted = Signal()
# kwargs: station_pk, action, payload (what was sent), answer (the CALLRESULT payload, or None), error (why there was
# none, or ""), actor (who asked: a staff member's username, or "platform: <why>"). A command the gateway's own
# services sent (local lists, diagnostics, firmware): the dashboard keeps it in its audit log.
command_answered = Signal()
# No kwargs. Tokens changed that stations may hold on their local lists (this CPO's cards, a partner's tokens): sent
# by whoever changed them (ocpi_api, the gateway's own receiver of cpo.Token saves), after commit.
tokens_changed = Signal()
# kwargs: load_group_pk. The planner ran for a load group and left a sample of it (LoadSample): its page redraws.
load_sampled = Signal()


def announce(signal: Signal, **kwargs) -> None:
    """Send `signal` once the current transaction commits (at once outside a transaction). A failing receiver is
    logged and does not stop the others or the charger's answer."""

    def send() -> None:
        for receiver, result in signal.send_robust(sender=None, **kwargs):
            if isinstance(result, Exception):
                logger.error("receiver %r of a gateway event failed: %r", receiver, result, exc_info=result)

    transaction.on_commit(send)
