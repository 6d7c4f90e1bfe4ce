"""Invariants the database keeps for the gateway, on SQLite (the embedded default) as on PostgreSQL."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from ocpp_gateway.models import MeterValue
from ocpp_gateway.services.meter_values import Sample, meter_values_record

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_a_repeated_sample_without_transaction_or_evse_is_stored_once(station_factory):
    """The empty transaction and EVSE count as equal, so a retransmitted MeterValues outside a transaction
    stores nothing twice; a different EVSE, phase or time is another sample."""
    station, _ = station_factory("CP-MV-DEDUP")
    sample = Sample(timestamp=T0, value=Decimal("100"), unit="Wh")
    for _ in range(2):
        meter_values_record(station_pk=station.pk, ocpp_evse_id=None, transaction_pk=None, samples=[sample])
        meter_values_record(station_pk=station.pk, ocpp_evse_id=1, transaction_pk=None, samples=[sample])
        meter_values_record(
            station_pk=station.pk,
            ocpp_evse_id=None,
            transaction_pk=None,
            samples=[
                Sample(timestamp=T0, value=Decimal("30"), unit="A", measurand="Current.Import", phase="L1"),
                Sample(timestamp=T0 + timedelta(minutes=1), value=Decimal("200"), unit="Wh"),
            ],
        )
    assert MeterValue.objects.filter(station=station).count() == 4


def test_the_models_pass_the_system_checks_on_this_database():
    """No constraint the database cannot enforce (models.W047 on SQLite meant repeated samples were kept)."""
    call_command("check", "--database", "default", "--fail-level", "WARNING")
