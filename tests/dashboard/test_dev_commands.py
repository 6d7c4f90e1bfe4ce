"""The project's development commands: `make run` writes .env (dev_env) and seeds the demo (seed_demo); the
README's commands then work in a new shell, with nothing but that .env."""

import io
import re
import subprocess
import sys

import pytest
from django.core.management import call_command

from cpo.dashboard.management.commands.seed_demo import DEMO_IDENTITY
from cpo.envfile import env_file_read
from cpo.models import ChargingStation
from cpo.services import station_secret_check
from tests.support import ROOT, database_url_for_tests


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_dev_env_generates_its_secrets_once_and_follows_host_and_port(tmp_path, monkeypatch):
    monkeypatch.setenv("CPO_ENV_FILE", str(tmp_path / ".env"))
    run("dev_env", "--host", "127.0.0.1", "--port", "8000")
    first = env_file_read(path=tmp_path / ".env")
    run("dev_env", "--host", "192.168.1.5", "--port", "8106")
    second = env_file_read(path=tmp_path / ".env")
    assert first["DEBUG"] == "1" and len(first["SECRET_KEY"]) >= 50 and len(first["DEMO_STATION_SECRET"]) >= 16
    assert (first["OCPI_BASE_URL"], second["OCPI_BASE_URL"]) == ("http://127.0.0.1:8000", "http://192.168.1.5:8106")
    assert (second["SECRET_KEY"], second["DEMO_STATION_SECRET"]) == (first["SECRET_KEY"], first["DEMO_STATION_SECRET"])
    run("dev_env", "--host", "0.0.0.0", "--port", "8000")  # noqa: S104 - the argument under test
    assert env_file_read(path=tmp_path / ".env")["OCPI_BASE_URL"] == "http://127.0.0.1:8000"
    run("dev_env", "--host", "::1", "--port", "8000")
    assert env_file_read(path=tmp_path / ".env")["OCPI_BASE_URL"] == "http://[::1]:8000"
    run("dev_env", "--port", "8000", "--base-url", "https://cpo.example.com/")
    assert env_file_read(path=tmp_path / ".env")["OCPI_BASE_URL"] == "https://cpo.example.com"


@pytest.mark.django_db
def test_seed_demo_again_keeps_the_demo_stations_secret(settings):
    settings.DEMO_STATION_SECRET = ""
    secret = re.search(r"station secret: (\S+)", run("seed_demo")).group(1)
    assert "station secret: unchanged" in run("seed_demo")
    station = ChargingStation.objects.get(identity=DEMO_IDENTITY)
    assert station_secret_check(secret_hash=station.secret_hash, secret=secret)


@pytest.mark.django_db
def test_seed_demo_with_the_secret_make_run_keeps_in_env_shows_it_every_time_and_never_rewrites_it(settings):
    settings.DEMO_STATION_SECRET = "demo-secret-of-this-checkout-1"
    outputs = [run("seed_demo")]
    secret_hash = ChargingStation.objects.get(identity=DEMO_IDENTITY).secret_hash
    outputs.append(run("seed_demo"))
    assert all("station secret: demo-secret-of-this-checkout-1" in out for out in outputs)
    assert ChargingStation.objects.get(identity=DEMO_IDENTITY).secret_hash == secret_hash
    settings.DEMO_STATION_SECRET = "another-secret-set-by-hand-2"
    run("seed_demo")
    station = ChargingStation.objects.get(identity=DEMO_IDENTITY)
    assert station_secret_check(secret_hash=station.secret_hash, secret="another-secret-set-by-hand-2")


@pytest.mark.timeout(300)  # five manage.py processes, each starting Django: slow on a busy machine
@pytest.mark.django_db(transaction=True)
def test_the_readme_commands_work_in_a_new_shell_that_has_only_the_env_file(tmp_path, location):
    """No DEBUG and no SECRET_KEY in the environment (a new shell after `make run PORT=8106`): manage.py takes them,
    and the advertised OCPI URL, from .env."""
    env_file = tmp_path / ".env"
    subprocess.run(
        [sys.executable, "manage.py", "dev_env", "--port", "8106"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "CPO_ENV_FILE": str(env_file), "DEBUG": "1"},
    )
    shell = {"PATH": "/usr/bin:/bin", "CPO_ENV_FILE": str(env_file), "DATABASE_URL": database_url_for_tests()}

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=shell, capture_output=True, text=True, timeout=60
        )

    station = manage("add_station", "CP-42", "--location", location.id, "--evses", "2")
    assert station.returncode == 0, station.stderr
    assert "secret: " in station.stdout
    invite = manage("ocpi_invite", "--country-code", "NL", "--party-id", "EXM", "--name", "Example EMSP")
    assert invite.returncode == 0, invite.stderr
    assert "versions URL: http://127.0.0.1:8106/ocpi/versions" in invite.stdout
    settlement = manage("settlement", "--partner", "NL-EXM", "--month", "2026-11")
    assert settlement.returncode == 0, settlement.stderr
    call = manage("ocpp_call", "CP-42", "Reset", '{"type": "Soft"}')
    assert call.returncode == 1 and "REDIS_URL" in call.stderr and "Traceback" not in call.stderr


@pytest.mark.django_db
def test_add_station_puts_the_connectors_on_the_tariff_given_else_the_locations_default(location):
    from django.core.management.base import CommandError

    from tests.billing.factories import component, tariff_make

    tariff_make("CLI-TARIFF", component("ENERGY", "0.30"))
    with pytest.raises(CommandError, match="no tariff with id 'NOPE'"):
        run("add_station", "CP-CLI-0", "--location", location.id, "--tariff", "NOPE")
    assert not ChargingStation.objects.filter(identity="CP-CLI-0").exists()
    assert "on tariff CLI-TARIFF" in run("add_station", "CP-CLI-1", "--location", location.id, "--tariff", "CLI-TARIFF")
    assert "WITHOUT a tariff" in run("add_station", "CP-CLI-2", "--location", location.id)
    location.default_tariff_id = "CLI-TARIFF"
    location.save()
    run("add_station", "CP-CLI-3", "--location", location.id)
    tariffs = {
        station.identity: station.evses.get().connectors.get().tariff_ids
        for station in ChargingStation.objects.filter(identity__startswith="CP-CLI")
    }
    assert tariffs == {"CP-CLI-1": ["CLI-TARIFF"], "CP-CLI-2": [], "CP-CLI-3": ["CLI-TARIFF"]}


@pytest.mark.django_db
def test_the_demo_station_and_its_location_have_the_demo_tariff():
    from django.utils import timezone

    from billing.selectors import tariff_for_connector
    from cpo.dashboard.management.commands.seed_demo import DEMO_TARIFF_ID

    run("seed_demo")
    station = ChargingStation.objects.get(identity=DEMO_IDENTITY)
    assert station.location.default_tariff_id == DEMO_TARIFF_ID
    for evse in station.evses.all():
        assert tariff_for_connector(connector=evse.connectors.get(), at=timezone.now()).id == DEMO_TARIFF_ID
