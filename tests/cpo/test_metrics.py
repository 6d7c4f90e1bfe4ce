"""/metrics: Prometheus text for the process's scraper, and nothing for anyone else."""

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ocpi_api.models import OutboxStatus
from tests.dashboard.factories import PARTNER_T0, push, registered_partner


def samples(text: str) -> dict:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.django_db
def test_the_outbox_backlog_and_its_oldest_age_are_computed_when_scraped(client):
    partner = registered_partner()
    push(partner, OutboxStatus.PENDING, key="cdr:1")
    push(partner, OutboxStatus.PENDING, key="cdr:2")
    push(partner, OutboxStatus.SENT, sent_at=PARTNER_T0, key="cdr:3")
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain")
    values = samples(answer.content.decode())
    assert values[("ocpi_outbox_backlog", ())] == 2
    assert values[("ocpi_outbox_oldest_age_seconds", ())] > 3600  # due since PARTNER_T0, long ago
    for name in ("ocpp_chargers_connected", "process_open_fds"):
        assert (name, ()) in values


@pytest.mark.django_db
def test_gateway_processes_leave_the_platform_gauges_to_the_web_process(client, settings):
    """METRICS_PLATFORM_GAUGES off (deploy/Procfile's gateways): no outbox query per scrape on N processes."""
    settings.METRICS_PLATFORM_GAUGES = False
    text = client.get("/metrics").content.decode()
    assert "ocpp_chargers_connected" in text
    assert not re.search(r"^(ocpi_outbox_backlog|celery_queue_length)", text, re.MULTILINE)


@pytest.mark.django_db
def test_metrics_are_not_shown_outside_the_allowed_networks_without_the_token(client, settings):
    outside = {"REMOTE_ADDR": "203.0.113.7"}
    assert client.get("/metrics", **outside).status_code == 404
    settings.METRICS_ALLOWED_NETWORKS = ["203.0.113.0/24"]
    assert client.get("/metrics", **outside).status_code == 200
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **outside).status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret", **outside).status_code == 200
