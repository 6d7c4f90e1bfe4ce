"""Objects for dashboard tests: billing sessions and CDRs written as billing writes them (rows, not through its
services, so these tests only depend on its models) at a chosen time (`last_updated` is when a CDR was issued);
registered partners, their tokens and outbox messages as ocpi_api keeps them."""

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

from billing.models import Cdr, Session
from ocpi_api.models import OutboxMessage, Partner, PartnerStatus, PartnerToken
from ocpi_api.services import partner_incoming_token_set, partner_parties_claim
from ocpp_gateway.models import Transaction

PASSWORD = "correct horse battery staple"


@contextmanager
def clock(at: datetime):
    with mock.patch("django.utils.timezone.now", return_value=at):
        yield


def make_session(
    *,
    station,
    number: int,
    start: datetime,
    kwh: Decimal,
    emsp=("NL", "EXM"),
    uid="TOKEN-1",
    cost=(Decimal("8.00"), Decimal("9.68")),
    location_id=None,
) -> Session:
    tx = Transaction.objects.create(
        station=station,
        evse=station.evses.order_by("ocpp_evse_id").first(),
        transaction_id=str(number),
        ocpp_version="1.6",
        ocpp_evse_id=1,
        connector_id=1,
        id_tag=uid,
        started_at=start,
        ended_at=start + timedelta(hours=1),
        meter_start=0,
        meter_stop=kwh * 1000,
        status="ENDED",
        token_country_code=emsp[0],
        token_party_id=emsp[1],
    )
    evse = tx.evse
    with clock(start + timedelta(hours=1)):
        return Session.objects.create(
            country_code="NL",
            party_id="CPO",
            id=f"S{number}",
            transaction=tx,
            emsp_country_code=emsp[0],
            emsp_party_id=emsp[1],
            start_date_time=start,
            end_date_time=start + timedelta(hours=1),
            kwh=kwh,
            cdr_token={
                "country_code": emsp[0],
                "party_id": emsp[1],
                "uid": uid,
                "type": "RFID",
                "contract_id": f"{emsp[0]}-{emsp[1]}-C{number:08d}",
            },
            auth_method="WHITELIST",
            location_id=location_id or station.location_id,
            evse_uid=evse.uid,
            connector_id="1",
            currency="EUR",
            status="COMPLETED",
            total_cost_excl_vat=cost[0],
            total_cost_incl_vat=cost[1],
            tariffs=[{"id": "AC-1"}],
            cdr_location={
                "id": location_id or station.location_id,
                "name": station.location.name,
                "evse_uid": evse.uid,
                "evse_id": evse.evse_id,
                "connector_id": "1",
            },
        )


def make_cdr(
    session: Session,
    *,
    issued: datetime,
    fixed=(Decimal("1.00"), Decimal("1.21")),
    energy=(Decimal("7.00"), Decimal("8.47")),
    credit_of: Cdr | None = None,
    reissue_of: Cdr | None = None,
    kwh: Decimal | None = None,
) -> Cdr:
    sign = -1 if credit_of else 1
    total = (sign * (fixed[0] + energy[0]), sign * (fixed[1] + energy[1]))
    with clock(issued):
        return Cdr.objects.create(
            country_code="NL",
            party_id="CPO",
            id=f"{session.id}-C" if credit_of else f"CDR-{session.id}{'-R1' if reissue_of else ''}",
            session=session,
            emsp_country_code=session.emsp_country_code,
            emsp_party_id=session.emsp_party_id,
            start_date_time=session.start_date_time,
            end_date_time=session.end_date_time,
            cdr_token=session.cdr_token,
            auth_method=session.auth_method,
            cdr_location=session.cdr_location,
            currency="EUR",
            tariffs=session.tariffs,
            charging_periods=[
                {
                    "start_date_time": session.start_date_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "dimensions": [{"type": "ENERGY", "volume": session.kwh}],
                    "tariff_id": "AC-1",
                }
            ],
            total_cost_excl_vat=total[0],
            total_cost_incl_vat=total[1],
            total_fixed_cost_excl_vat=sign * fixed[0],
            total_fixed_cost_incl_vat=sign * fixed[1],
            total_energy=session.kwh if kwh is None else kwh,
            total_energy_cost_excl_vat=sign * energy[0],
            total_energy_cost_incl_vat=sign * energy[1],
            total_time=Decimal("1"),
            total_parking_time=Decimal("0"),
            credit=credit_of is not None,
            credit_reference=credit_of,
            reissue_of=reissue_of,
        )


T0 = datetime(2026, 3, 10, 8, tzinfo=UTC)

PARTNER_T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def registered_partner(country_code="NL", party_id="EXM", name="Example EMSP") -> Partner:
    partner = Partner(
        name=name,
        country_code=country_code,
        party_id=party_id,
        status=PartnerStatus.REGISTERED,
        version="2.2.1",
        versions_url="https://emsp.example/ocpi/versions",
        registered_at=PARTNER_T0,
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
    partner_parties_claim(partner=partner, parties={(country_code, party_id)})
    return partner


def token(partner: Partner, uid: str, **fields) -> PartnerToken:
    values = dict(
        type="RFID",
        contract_id=f"NL-EXM-C{uid}",
        issuer="Example",
        valid=True,
        whitelist="ALLOWED",
        last_updated=PARTNER_T0,
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
        order_key=key,
        status=status,
        attempts=attempts,
        last_error=error,
        sent_at=sent_at,
        due_at=PARTNER_T0,
        next_attempt_at=PARTNER_T0 + timedelta(minutes=attempts),
        give_up_at=PARTNER_T0 + timedelta(days=3),
        correlation_id="c",
    )
