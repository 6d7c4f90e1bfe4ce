"""Tariffs Sender interface: partners pull our tariffs (billing's), paginated, in the shape of the spec."""

from datetime import UTC, datetime, timedelta

import pytest

from billing.models import Tariff
from billing.services import tariff_upsert_from_ocpi
from tests.ocpi_api.shapes import example, shape_differences

pytestmark = pytest.mark.django_db
EXAMPLES = [
    "tariff_1_simple_2hour.json",
    "tariff_4_complex.json",
    "tariff_8_simple_025kwh.json",
    "tariff_12_025kwh_min_price.json",
]


@pytest.fixture
def tariffs(db):
    for index, name in enumerate(EXAMPLES):
        tariff = tariff_upsert_from_ocpi(data=example(name))
        Tariff.objects.filter(pk=tariff.pk).update(
            last_updated=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=index)
        )
    return [example(name) for name in EXAMPLES]


def test_tariffs_have_the_shape_of_the_spec_examples(client, headers, tariffs):
    response = client.get("/ocpi/2.2.1/tariffs", **headers)
    body = response.json()
    assert response.status_code == 200 and body["status_code"] == 1000
    assert response["X-Total-Count"] == "4"
    assert [t["id"] for t in body["data"]] == [t["id"] for t in tariffs]  # oldest first
    for ours, spec in zip(body["data"], tariffs, strict=True):
        assert shape_differences(ours, spec) == [], spec["id"]
        assert ours["elements"] == spec["elements"]


def test_tariffs_paginate_with_filters(client, headers, tariffs):
    response = client.get("/ocpi/2.2.1/tariffs", {"limit": 1, "date_from": "2024-01-01T01:00:00Z"}, **headers)
    assert [t["id"] for t in response.json()["data"]] == [tariffs[1]["id"]]
    assert response["X-Total-Count"] == "3" and response["X-Limit"] == "1"
    assert "date_from=2024-01-01T01%3A00%3A00Z" in response["Link"] and "offset=1" in response["Link"]


def test_tariffs_need_a_registered_partner_and_valid_parameters(client, headers, tariffs):
    assert client.get("/ocpi/2.2.1/tariffs").status_code == 401
    response = client.get("/ocpi/2.2.1/tariffs", {"offset": "x"}, **headers)
    assert response.status_code == 200 and response.json()["status_code"] == 2001
