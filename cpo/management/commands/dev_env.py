"""`manage.py dev_env --host 127.0.0.1 --port 8000`: what `make run` writes to .env (see cpo/envfile.py)."""

import secrets

from django.core.management.base import BaseCommand, CommandError

from cpo.envfile import env_file_path, env_file_read, env_file_update
from cpo.services import station_secret_generate

HEADER = """Development settings written by `make run` and read by manage.py, daphne and Celery (cpo/envfile.py).
Variables set in the environment win over these. Kept across runs: SECRET_KEY, DEMO_STATION_SECRET (the demo
charger's secret) and your own lines; OCPI_BASE_URL follows make run's HOST and PORT (or its OCPI_BASE_URL)."""


def base_url_for(*, host: str, port: int) -> str:
    """http://HOST:PORT as a partner on this machine would reach a server listening there."""
    if host in {"", "0.0.0.0", "::"}:  # noqa: S104 - listening everywhere: this machine reaches it on loopback
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = (
        "Write development settings to .env: DEBUG=1, a SECRET_KEY and a demo charger secret generated once, "
        "and OCPI_BASE_URL for --host/--port (or --base-url), so commands in other shells match the server."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="the address daphne listens on")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--base-url", default="", help="the public URL partners use, if not http://HOST:PORT")

    def handle(self, *args, host: str, port: int, base_url: str, **options) -> None:
        path = env_file_path()
        if path is None:
            raise CommandError("CPO_ENV_FILE is set but empty: there is no env file to write")
        current = env_file_read(path=path)
        values = {"OCPI_BASE_URL": (base_url or base_url_for(host=host, port=port)).rstrip("/")}
        if "DEBUG" not in current:
            values["DEBUG"] = "1"
        if not current.get("SECRET_KEY"):
            values["SECRET_KEY"] = secrets.token_urlsafe(50)  # shell-safe characters: the file may be sourced
        if not current.get("DEMO_STATION_SECRET"):
            values["DEMO_STATION_SECRET"] = station_secret_generate()
        env_file_update(path=path, values=values, header=HEADER)
        self.stdout.write(f"development settings in {path}: OCPI_BASE_URL={values['OCPI_BASE_URL']}")
