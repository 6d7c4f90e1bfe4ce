"""Billing sessions and CDRs for dashboard tests, written as billing writes them (rows, not through its services,
so these tests only depend on its models), at a chosen time (`last_updated` is when a CDR was issued)."""

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

from billing.models import Cdr, Session
from ocpp_gateway.models import Transaction


@contextmanager
def clock(at: datetime):
    with mock.patch("django.utils.timezone.now", return_value=at):
        yield


def make_session(*, station, number: int, start: datetime, kwh: Decimal, emsp=("NL", "EXM"), uid="TOKEN-1",
                 cost=(Decimal("8.00"), Decimal("9.68")), location_id=None) -> Session:
    tx = Transaction.objects.create(
        station=station, evse=station.evses.order_by("ocpp_evse_id").first(), transaction_id=str(number),
        ocpp_version="1.6", ocpp_evse_id=1, connector_id=1, id_tag=uid, started_at=start,
        ended_at=start + timedelta(hours=1), meter_start=0, meter_stop=kwh * 1000, status="ENDED",
        token_country_code=emsp[0], token_party_id=emsp[1],
    )
    evse = tx.evse
    with clock(start + timedelta(hours=1)):
        return Session.objects.create(
            country_code="NL", party_id="CPO", id=f"S{number}", transaction=tx, emsp_country_code=emsp[0],
            emsp_party_id=emsp[1], start_date_time=start, end_date_time=start + timedelta(hours=1), kwh=kwh,
            cdr_token={"country_code": emsp[0], "party_id": emsp[1], "uid": uid, "type": "RFID",
                       "contract_id": f"{emsp[0]}-{emsp[1]}-C{number:08d}"},
            auth_method="WHITELIST", location_id=location_id or station.location_id, evse_uid=evse.uid,
            connector_id="1", currency="EUR", status="COMPLETED", total_cost_excl_vat=cost[0],
            total_cost_incl_vat=cost[1],
            tariffs=[{"id": "AC-1"}],
            cdr_location={"id": location_id or station.location_id, "name": station.location.name,
                          "evse_uid": evse.uid, "evse_id": evse.evse_id, "connector_id": "1"},
        )


def make_cdr(session: Session, *, issued: datetime, fixed=(Decimal("1.00"), Decimal("1.21")),
             energy=(Decimal("7.00"), Decimal("8.47")), credit_of: Cdr | None = None) -> Cdr:
    sign = -1 if credit_of else 1
    total = (sign * (fixed[0] + energy[0]), sign * (fixed[1] + energy[1]))
    with clock(issued):
        return Cdr.objects.create(
            country_code="NL", party_id="CPO", id=f"{session.id}-C" if credit_of else f"CDR-{session.id}",
            session=session, emsp_country_code=session.emsp_country_code, emsp_party_id=session.emsp_party_id,
            start_date_time=session.start_date_time, end_date_time=session.end_date_time,
            cdr_token=session.cdr_token, auth_method=session.auth_method, cdr_location=session.cdr_location,
            currency="EUR", tariffs=session.tariffs,
            charging_periods=[{"start_date_time": session.start_date_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "dimensions": [{"type": "ENERGY", "volume": session.kwh}], "tariff_id": "AC-1"}],
            total_cost_excl_vat=total[0], total_cost_incl_vat=total[1],
            total_fixed_cost_excl_vat=sign * fixed[0], total_fixed_cost_incl_vat=sign * fixed[1],
            total_energy=session.kwh, total_energy_cost_excl_vat=sign * energy[0],
            total_energy_cost_incl_vat=sign * energy[1], total_time=Decimal("1"), total_parking_time=Decimal("0"),
            credit=credit_of is not None, credit_reference=credit_of,
        )


T0 = datetime(2026, 3, 10, 8, tzinfo=UTC)
