"""Settings read from the environment (each case in a fresh interpreter, as a process would start)."""

import json
import subprocess
import sys

from tests.support import ROOT

PROBE = """
import json, django
from django.conf import settings
django.setup()
db = settings.DATABASES["default"]
print(json.dumps({"allowed_hosts": settings.ALLOWED_HOSTS, "options": db.get("OPTIONS", {}),
                  "broker": settings.CELERY_BROKER_URL}))
"""


def settings_with(**env: str) -> dict:
    base = {"PATH": "/usr/bin:/bin", "CPO_ENV_FILE": "", "DJANGO_SETTINGS_MODULE": "cpo.settings", "DEBUG": "1"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_the_host_partners_reach_us_at_is_allowed():
    """`make run HOST=192.168.1.5` advertises http://192.168.1.5:PORT/ocpi/versions: requests to it are served."""
    assert settings_with(OCPI_BASE_URL="http://192.168.1.5:8106")["allowed_hosts"] == [
        "localhost",
        "127.0.0.1",
        "[::1]",
        "192.168.1.5",
    ]
    assert settings_with(OCPI_BASE_URL="http://[::1]:8000")["allowed_hosts"] == ["localhost", "127.0.0.1", "[::1]"]
    assert settings_with(OCPI_BASE_URL="https://cpo.example.com", ALLOWED_HOSTS="cpo.internal")["allowed_hosts"] == [
        "cpo.internal"
    ]


def test_sqlite_queues_writers_whether_it_is_the_default_or_a_database_url(tmp_path):
    """Servers the tests start get a sqlite:/// DATABASE_URL: the same busy timeout, WAL and IMMEDIATE
    transactions as the embedded default (without them a charger got InternalError: database is locked)."""
    expected = {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    assert settings_with(CPO_VAR_DIR=str(tmp_path))["options"] == expected
    assert settings_with(DATABASE_URL=f"sqlite:///{tmp_path}/other.sqlite3")["options"] == expected


def test_the_in_process_broker_names_a_host():
    """kombu warns "No hostname was supplied" on every start for a bare memory://."""
    assert settings_with()["broker"] == "memory://localhost/"
