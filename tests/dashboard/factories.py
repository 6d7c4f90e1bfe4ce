"""Objects the dashboard tests build: staff users' password, registered partners, their tokens and pushes."""

from datetime import UTC, datetime, timedelta

from ocpi_api.models import OutboxMessage, Partner, PartnerStatus, PartnerToken
from ocpi_api.services import partner_incoming_token_set

PASSWORD = "correct horse battery staple"
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def registered_partner(country_code="NL", party_id="EXM", name="Example EMSP") -> Partner:
    partner = Partner(
        name=name,
        country_code=country_code,
        party_id=party_id,
        status=PartnerStatus.REGISTERED,
        version="2.2.1",
        versions_url="https://emsp.example/ocpi/versions",
        registered_at=T0,
        roles=[
            {"role": "EMSP", "country_code": country_code, "party_id": party_id, "business_details": {"name": name}}
        ],
        endpoints=[
            {"identifier": "cdrs", "role": "RECEIVER", "url": "https://emsp.example/cdrs"},
            {"identifier": "sessions", "role": "RECEIVER", "url": "https://emsp.example/sessions"},
            {"identifier": "tokens", "role": "SENDER", "url": "https://emsp.example/tokens"},
        ],
    )
    partner_incoming_token_set(partner=partner, token=f"secret-token-of-{party_id}")
    partner.save()
    return partner


def token(partner: Partner, uid: str, **fields) -> PartnerToken:
    values = dict(
        type="RFID", contract_id=f"NL-EXM-C{uid}", issuer="Example", valid=True, whitelist="ALLOWED", last_updated=T0
    )
    values.update(fields)
    return PartnerToken.objects.create(
        partner=partner, country_code=partner.country_code, party_id=partner.party_id, uid=uid, **values
    )


def push(partner: Partner, status: str, *, attempts: int = 0, error: str = "", sent_at=None, key="cdr:1"):
    return OutboxMessage.objects.create(
        partner=partner,
        module="cdrs",
        method="POST",
        path="",
        object_key=key,
        status=status,
        attempts=attempts,
        last_error=error,
        sent_at=sent_at,
        due_at=T0,
        next_attempt_at=T0 + timedelta(minutes=attempts),
        give_up_at=T0 + timedelta(days=3),
        correlation_id="c",
    )
