"""What a curious or hostile person meets on the web side: security headers, a strict Content-Security-Policy, login
throttling, and deployment settings taken from the environment."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dashboard.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_dashboard_pages_carry_a_strict_csp_and_refuse_framing(client, make_user):
    client.force_login(make_user("vera", "viewer"))
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "'unsafe-inline'" not in policy and "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_no_dashboard_template_has_inline_script_or_style():
    """The CSP forbids them: an inline handler or style attribute would silently stop working."""
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for needle in (
            " style=",
            "<style",
            " onclick=",
            " onload=",
            " onerror=",
            " onsubmit=",
            " onchange=",
            "javascript:",
        ):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle.strip()}")
        for chunk in text.split("<script")[1:]:
            head = chunk.split(">", 1)[0]
            if "src=" not in head and "application/json" not in head:
                offenders.append(f"{path.relative_to(ROOT)}: inline <script>")
    assert offenders == []


@pytest.mark.django_db
def test_the_login_locks_a_username_on_an_address_after_five_failures(client, make_user):
    make_user("olga", "operator")
    answers = [client.post("/login/", {"username": "olga", "password": "wrong"}).status_code for _ in range(5)]
    assert answers == [200, 200, 200, 200, 429]  # the form again with its error, then the lockout page
    locked = client.post("/login/", {"username": "olga", "password": PASSWORD})
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    # Another username from the same address is not locked.
    make_user("vera", "viewer")
    assert client.post("/login/", {"username": "vera", "password": PASSWORD}).status_code == 302


def _deploy_check(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG"}}
    clean.update(SECRET_KEY="x" * 64 + "-a-long-random-production-secret", ALLOWED_HOSTS="cpo.example", **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = _deploy_check()
    assert result.returncode == 0, result.stdout + result.stderr


def test_security_settings_come_from_the_environment():
    result = _deploy_check(SECURE_SSL_REDIRECT="0", SESSION_COOKIE_SECURE="0", SECURE_HSTS_SECONDS="0")
    assert result.returncode != 0
    for check in ("security.W008", "security.W012", "security.W004"):
        assert check in result.stdout + result.stderr
