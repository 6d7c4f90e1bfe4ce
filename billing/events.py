"""What billing announces to the rest of the platform: a Session written, a CDR issued.

Unlike the gateway's events (sent after commit), these are sent INSIDE the database transaction that made the change,
so that what a receiver writes (ocpi_api's outbox rows) commits or rolls back with it (DESIGN.md, "The flow of one
charge", step 6). Receivers connect in their AppConfig.ready; they must only write to the database, quickly, and let
errors propagate: an exception rolls the change back and the billing task runs again.
"""

from django.db import connection
from django.dispatch import Signal

# kwargs: session (billing.models.Session, as just written), final (bool: the session will not change any more)
session_changed = Signal()
# kwargs: cdr (billing.models.Cdr, as just written)
cdr_issued = Signal()


class EventError(RuntimeError):
    pass


def announce(signal: Signal, **kwargs) -> None:
    """Send `signal` now, inside the caller's transaction (EventError outside one: the receivers' writes must share
    it). A receiver's exception is raised to the caller."""
    if not connection.in_atomic_block:
        raise EventError("billing events are sent inside the transaction that made the change")
    signal.send(sender=None, **kwargs)
