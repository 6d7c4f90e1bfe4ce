"""Reads for the audit log page: what staff did (commands to chargers, onboarding, partner invitations, tariff edits),
filtered, newest first, and as CSV rows."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import QuerySet

from cpo.dashboard.models import AuditLog
from cpo.dashboard.selectors.commands import command_answer_text

AUDIT_CSV_HEADER = ["created_at", "username", "action", "station", "result", "answer_or_error", "payload"]


def audit_log_list(
    *,
    username: str = "",
    action: str = "",
    identity: str = "",
    result: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[AuditLog]:
    """`result` is "ok" (the charger or the service answered) or "failed"; dates are UTC days, both included."""
    entries = AuditLog.objects.all()
    if username:
        entries = entries.filter(username__iexact=username)
    if action:
        entries = entries.filter(action__iexact=action)
    if identity:
        entries = entries.filter(identity__icontains=identity)
    if result in ("ok", "failed"):
        entries = entries.filter(ok=result == "ok")
    if date_from:
        entries = entries.filter(created_at__gte=datetime.combine(date_from, time.min, tzinfo=UTC))
    if date_to:
        entries = entries.filter(created_at__lt=datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC))
    return entries.order_by("-created_at", "-id")


def audit_log_actions() -> list[str]:
    return list(AuditLog.objects.order_by("action").values_list("action", flat=True).distinct())


def audit_csv_rows(*, entries: QuerySet[AuditLog]) -> Iterator[list]:
    yield AUDIT_CSV_HEADER
    for entry in entries.iterator(chunk_size=2000):
        yield [
            entry.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            entry.username,
            entry.action,
            entry.identity,
            "ok" if entry.ok else "failed",
            command_answer_text(action=entry.action, answer=entry.answer) if entry.ok else entry.error,
            entry.payload,
        ]
