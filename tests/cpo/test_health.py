"""Load balancers ask /healthz (is the process alive) and /readyz (can it serve: database and Redis answer)."""

import pytest


@pytest.mark.django_db
def test_liveness_and_readiness_answer_when_everything_is_up(client, settings):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["database"]["ok"] is True
    assert ("redis" in checks) == bool(settings.REDIS_URL)


@pytest.mark.django_db
def test_readiness_is_503_naming_redis_when_redis_does_not_answer(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}
    assert ready.json()["checks"]["database"]["ok"] is True
    assert client.get("/healthz").status_code == 200  # alive all the same: not a reason to restart it
