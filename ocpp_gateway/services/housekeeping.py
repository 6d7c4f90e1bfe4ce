"""Housekeeping: load-history samples past their retention are deleted (`load_samples_prune`), and transactions on
online stations are looked after. Transactions: one we heard nothing about for OCPP_SILENT_TRANSACTION_MINUTES
is asked about before it is ended, and ended (`ended_by` housekeeping, its CDR says so) only when the charger says
it is over or does not answer. Runs from a Celery task: it waits for chargers, never in a charger's reply path.

- 2.0.1: GetTransactionStatus. `ongoingIndicator` false with no messages queued about it: over. Messages queued:
  they will tell (their TransactionEvents end it or keep it going). True: it goes on.
- 1.6: TriggerMessage MeterValues for its connector. The charger's MeterValues for the transaction bring news (the
  transaction is not silent any more); still silent at the next look after an accepted trigger: over. A trigger
  Rejected or NotImplemented tells nothing: left alone.
- No answer in time: over. A CALLERROR or a station gone offline meanwhile: left alone (the offline closer,
  `transaction_close_stale`, takes care of stations that stay away).
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ocpp_gateway.commands import CommandError, command_send
from ocpp_gateway.models import LoadSample, Transaction
from ocpp_gateway.requests import GetTransactionStatus, OcppRequest, TriggerMessage, is_ocpp16
from ocpp_gateway.services.transactions import transaction_end

logger = logging.getLogger(__name__)


def load_samples_prune(*, older_than_days: float | None = None) -> int:
    """Delete load-group samples older than LOAD_HISTORY_RETENTION_DAYS: the chart looks back days, not months."""
    days = settings.LOAD_HISTORY_RETENTION_DAYS if older_than_days is None else older_than_days
    deleted, _ = LoadSample.objects.filter(taken_at__lt=timezone.now() - timedelta(days=days)).delete()
    return deleted


class Probe:
    """What housekeeping made of a charger's answer."""

    OVER = "over"  # ended now
    ONGOING = "ongoing"
    ASKED = "asked"  # 1.6: trigger sent; the next look decides
    UNKNOWN = "unknown"  # a CALLERROR, offline, not silent or not active any more: left alone


def transactions_silent(*, minutes: float | None = None) -> list[int]:
    """ACTIVE transactions of online stations with no news (start, meter values, events) for `minutes`."""
    minutes = settings.OCPP_SILENT_TRANSACTION_MINUTES if minutes is None else minutes
    cutoff = timezone.now() - timedelta(minutes=minutes)
    return list(
        Transaction.objects.filter(status=Transaction.Status.ACTIVE, station__online=True, updated_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def transaction_silent_probe(*, transaction_pk: int, minutes: float | None = None) -> str:
    """Ask the charger about one silent transaction and end it if it is over (see the module's docstring)."""
    minutes = settings.OCPP_SILENT_TRANSACTION_MINUTES if minutes is None else minutes
    tx = Transaction.objects.select_related("station").filter(pk=transaction_pk).first()
    if tx is None or tx.status != Transaction.Status.ACTIVE or not tx.station.online:
        return Probe.UNKNOWN
    if tx.updated_at >= timezone.now() - timedelta(minutes=minutes):
        return Probe.UNKNOWN  # news came meanwhile
    request: OcppRequest
    if is_ocpp16(tx.ocpp_version):
        if tx.silence_probed_at is not None and tx.updated_at < tx.silence_probed_at:
            return _silent_end(
                transaction_pk=transaction_pk, news_before=tx.silence_probed_at, why="trigger gave nothing"
            )
        request = TriggerMessage(message="MeterValues", evse_id=tx.ocpp_evse_id or 0)
    else:
        request = GetTransactionStatus(transaction_id=tx.transaction_id)
    call = request.for_version(tx.ocpp_version)
    asked_at = timezone.now()
    try:
        answer = command_send(identity=tx.station.identity, action=call.action, payload=call.payload)
    except CommandError as exc:
        if exc.reason == CommandError.TIMEOUT:
            return _silent_end(transaction_pk=transaction_pk, news_before=asked_at, why="no answer")
        logger.info("%s: silent transaction %s left alone: %s", tx.station, tx.transaction_id, exc)
        return Probe.UNKNOWN
    return transaction_status_answered(
        transaction_pk=transaction_pk, action=call.action, answer=answer, asked_at=asked_at
    )


def transaction_status_answered(*, transaction_pk: int, action: str, answer: dict, asked_at: datetime) -> str:
    """What the charger's answer to housekeeping's question, asked at `asked_at`, says about the transaction
    (`answer` in camelCase, as the command service returns it)."""
    if action == "GetTransactionStatus":
        if answer.get("ongoingIndicator") is False and not answer.get("messagesInQueue"):
            return _silent_end(transaction_pk=transaction_pk, news_before=asked_at, why="the charger says it is over")
        return Probe.ONGOING if answer.get("ongoingIndicator") else Probe.UNKNOWN
    if answer.get("status") != "Accepted":  # a charger that will not send them cannot tell us it is over
        return Probe.UNKNOWN
    Transaction.objects.filter(pk=transaction_pk, status=Transaction.Status.ACTIVE).update(silence_probed_at=asked_at)
    return Probe.ASKED


def _silent_end(*, transaction_pk: int, news_before: datetime, why: str) -> str:
    """End the transaction at its last known reading, by housekeeping, unless news of it came since `news_before`
    (when we asked)."""
    with transaction.atomic():
        tx = Transaction.objects.select_for_update().get(pk=transaction_pk)
        if tx.status != Transaction.Status.ACTIVE or tx.updated_at >= news_before:
            return Probe.UNKNOWN
        ended = transaction_end(
            tx=tx,
            ended_at=tx.meter_last_at or tx.started_at,
            meter_stop=None,
            reason="Other",
            ended_by=Transaction.EndedBy.HOUSEKEEPING,
        )
    if ended:
        logger.warning("%s: silent transaction %s ended by housekeeping (%s)", tx.station_id, tx.transaction_id, why)
    return Probe.OVER if ended else Probe.UNKNOWN
