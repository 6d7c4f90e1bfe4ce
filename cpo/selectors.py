"""Reads on the network's assets."""

from django.db.models import QuerySet

from cpo.models import Alert, Token


def token_list_local(*, uid: str) -> QuerySet[Token]:
    return Token.objects.filter(uid=uid)


def alerts_open() -> QuerySet[Alert]:
    """Open alerts, the most recently seen first."""
    return Alert.objects.filter(resolved_at__isnull=True).order_by("-last_seen", "-pk")


def alerts_resolved(*, limit: int = 50) -> QuerySet[Alert]:
    return Alert.objects.filter(resolved_at__isnull=False).order_by("-resolved_at", "-pk")[:limit]
