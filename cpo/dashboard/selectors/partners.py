"""Reads for the partners pages: each EMSP with its tokens and the state of the pushes to it."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from ocpi_api.models import OutboxMessage, OutboxStatus, Partner, PartnerToken


@dataclass(frozen=True)
class OutboxState:
    """A partner's pushes: waiting (`pending`, of which `retrying` failed at least once), given up (`failed`),
    and when the last one was delivered."""

    pending: int = 0
    retrying: int = 0
    failed: int = 0
    sent: int = 0
    last_sent_at: datetime | None = None


@dataclass(frozen=True)
class PartnerRow:
    partner: Partner
    tokens: int
    outbox: OutboxState

    @property
    def modules(self) -> list[str]:
        return sorted({f"{e.get('identifier')}" for e in self.partner.endpoints or []})


def partner_outbox_states(*, partner_ids: list[int] | None = None) -> dict[int, OutboxState]:
    """Outbox counts per partner, from one grouped query."""
    rows = OutboxMessage.objects.order_by()
    if partner_ids is not None:
        rows = rows.filter(partner_id__in=partner_ids)
    rows = rows.values("partner_id").annotate(
        pending=Count("id", filter=Q(status=OutboxStatus.PENDING)),
        retrying=Count("id", filter=Q(status=OutboxStatus.PENDING, attempts__gt=0)),
        failed=Count("id", filter=Q(status=OutboxStatus.FAILED)),
        sent=Count("id", filter=Q(status=OutboxStatus.SENT)),
        last_sent_at=Max("sent_at"),
    )
    return {row.pop("partner_id"): OutboxState(**row) for row in rows}


def partner_list() -> list[PartnerRow]:
    """Every partner with its token count and outbox state: three queries whatever the number of partners."""
    token_counts = (
        PartnerToken.objects.filter(partner=OuterRef("pk"))
        .order_by()
        .values("partner")
        .annotate(n=Count("id"))
        .values("n")
    )
    partners = list(
        Partner.objects.annotate(tokens_count=Coalesce(Subquery(token_counts), 0)).order_by(
            "status", "country_code", "party_id", "id"
        )
    )
    outbox = partner_outbox_states(partner_ids=[p.pk for p in partners])
    return [PartnerRow(p, p.tokens_count, outbox.get(p.pk, OutboxState())) for p in partners]


def partner_tokens(*, partner: Partner, search: str = "") -> QuerySet[PartnerToken]:
    tokens = PartnerToken.objects.filter(partner=partner)
    if search:
        tokens = tokens.filter(
            Q(uid__icontains=search) | Q(contract_id__icontains=search) | Q(visual_number__icontains=search)
        )
    return tokens.order_by("-last_updated", "uid")


def partner_outbox_problems(*, partner: Partner, limit: int = 50) -> QuerySet[OutboxMessage]:
    """Pushes that failed at least once and are not delivered: still retrying, or given up."""
    return (
        OutboxMessage.objects.filter(partner=partner, attempts__gt=0)
        .filter(Q(status=OutboxStatus.PENDING) | Q(status=OutboxStatus.FAILED))
        .order_by("-id")[:limit]
    )


def partner_party_q(*, partner: Partner, prefix: str) -> Q:
    """Rows of any of the partner's parties: `{prefix}country_code` and `{prefix}party_id` match one of them."""
    condition = Q(pk__in=[])
    for country_code, party_id in sorted(partner.party_ids()):
        condition |= Q(**{f"{prefix}country_code": country_code, f"{prefix}party_id": party_id})
    return condition
