"""Billing a gateway transaction: the one step from a gateway event to a priced Session and, once the transaction
ended, its CDR (DESIGN.md, "The flow of one charge", steps 4-5)."""

import logging

from django.db import transaction

from billing.enums import SessionStatus
from billing.models import Session
from billing.services.cdrs import cdr_issue
from billing.services.sessions import NotBillable, session_write, transaction_lock

logger = logging.getLogger(__name__)


def transaction_bill(*, transaction_pk: int) -> Session | None:
    """Bring the OCPI Session of a gateway transaction up to date in one database transaction: created ACTIVE, or
    updated with kWh, periods and running cost, or COMPLETED once the transaction ended; a COMPLETED session gets
    its CDR in the same step, from the same pricing (the session is priced once). Billing announces both
    (`billing.events`) inside that database transaction, so what receivers write commits with them.

    Idempotent whichever gateway event triggered it, however often and on however many workers it runs: the
    transaction row stays locked until this commits, a session whose CDR exists is final (nothing is written or
    announced again), and the unique constraints (one Session per transaction, one CDR per session) back this up.
    Returns the session, or None when the transaction cannot be billed (yet), e.g. it has no EVSE."""
    with transaction.atomic():
        tx = transaction_lock(transaction_pk=transaction_pk)
        try:
            written = session_write(tx=tx)
        except NotBillable as exc:
            logger.warning("transaction %s: no OCPI Session: %s", transaction_pk, exc)
            return None
        if written.session.status == SessionStatus.COMPLETED and written.priced is not None:
            cdr_issue(tx=tx, written=written)
    return written.session
