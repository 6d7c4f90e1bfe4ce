"""Static files in production: with DEBUG off, daphne serves what collectstatic wrote to STATIC_ROOT (WhiteNoise),
under content-hashed names that browsers may cache for ever, compressed for clients that accept it."""

import os
import re
import subprocess
import sys

import httpx
import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from tests.support import ROOT, server_env, start_daphne, stop

pytestmark = pytest.mark.live


@pytest.fixture
def production_daphne(django_db_setup, django_db_blocker, tmp_path):
    # Plain HTTP on loopback, as behind a TLS-terminating proxy: no redirect to https.
    env = {"DEBUG": "0", "SECRET_KEY": "test-only-secret", "CPO_VAR_DIR": str(tmp_path), "SECURE_SSL_REDIRECT": "0"}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=server_env(**env),
        check=True,
        timeout=120,
    )
    server = start_daphne("static", **env)
    yield server
    stop(server)


def test_daphne_serves_hashed_compressed_static_files_without_debug(production_daphne):
    base = production_daphne.http_url
    login = httpx.get(f"{base}/login/")
    assert login.status_code == 200
    css = re.search(r'href="(/static/dashboard/dashboard\.[0-9a-f]{12}\.css)"', login.text)
    assert css, "the page refers to the stylesheet by its content hash"
    response = httpx.get(base + css.group(1), headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200 and ".card" in response.text
    assert response.headers["content-encoding"] == "gzip"
    assert "immutable" in response.headers["cache-control"]
    chart = httpx.get(f"{base}/static/vendor/chartjs/chart.umd.min.js")
    assert chart.status_code == 200 and len(chart.content) > 100_000
    assert httpx.get(f"{base}/static/dashboard/nope.js").status_code == 404
    assert os.path.exists(production_daphne.log_path)


def test_every_page_has_a_favicon(client_as):
    html = client_as("viewer").get(reverse("dashboard:overview")).content.decode()
    assert '<link rel="icon" href="/static/dashboard/favicon.svg" type="image/svg+xml">' in html
    assert finders.find("dashboard/favicon.svg")
