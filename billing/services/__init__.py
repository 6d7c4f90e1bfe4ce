"""Writes of billing, one module per concept:

- `tariffs`: tariffs from OCPI Tariff objects, the demo tariff;
- `sessions`: OCPI Sessions derived from gateway transactions;
- `cdrs`: the CDR of a completed session, credit CDRs, the correction of an issued CDR by a late stop;
- `reservations`: the OCPI Session of a reservation (status RESERVATION) and the CDR of one that was not used;
- `transactions`: billing one gateway transaction, session and CDR in one step (what billing's task runs).

Every Session and CDR written is announced with `billing.events` inside the database transaction that wrote it.
The names below are billing's public writes."""

from billing.services.cdrs import cdr_correct, cdr_create, cdr_credit, cdr_issue
from billing.services.reservations import reservation_bill
from billing.services.sessions import NotBillable, session_sync, session_write, transaction_lock
from billing.services.tariffs import tariff_seed_demo, tariff_upsert_from_ocpi
from billing.services.transactions import transaction_bill

__all__ = [
    "NotBillable",
    "cdr_correct",
    "cdr_create",
    "cdr_credit",
    "cdr_issue",
    "reservation_bill",
    "session_sync",
    "session_write",
    "tariff_seed_demo",
    "tariff_upsert_from_ocpi",
    "transaction_bill",
    "transaction_lock",
]
