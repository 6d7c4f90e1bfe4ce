"""The development `.env` file: settings `make run` writes so that commands pasted into a new shell (`manage.py
add_station`, `ocpi_invite`, ...) run with the same DEBUG, SECRET_KEY and OCPI_BASE_URL as the server.

Every entry point reads it (manage.py, asgi, wsgi, the Celery app); a variable set in the real environment always
wins. `CPO_ENV_FILE` names another file, or none when empty (`make test` runs with it empty, so a developer's
.env never changes what the tests see). Plain `KEY=VALUE` lines; `#` comments, `export ` and quotes are allowed.
No Django imports here: it runs before settings are loaded.
"""

import os
from pathlib import Path

ENV_FILE = Path(__file__).resolve().parent.parent / ".env"


def env_file_path() -> Path | None:
    name = os.environ.get("CPO_ENV_FILE")
    if name is None:
        return ENV_FILE
    return Path(name) if name else None


def env_file_read(*, path: Path) -> dict[str, str]:
    """The variables of an env file (empty when it does not exist)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def env_file_load() -> None:
    """Put the env file's variables into os.environ, leaving those already set alone."""
    path = env_file_path()
    if path is None:
        return
    for key, value in env_file_read(path=path).items():
        os.environ.setdefault(key, value)


def env_file_update(*, path: Path, values: dict[str, str], header: str = "") -> None:
    """Set `values` in the env file: lines of those keys are replaced in place, new keys appended, every other
    line (a developer's own settings and comments) kept."""
    lines = path.read_text().splitlines() if path.is_file() else [f"# {line}".rstrip() for line in header.splitlines()]
    pending = dict(values)
    for i, line in enumerate(lines):
        key = line.strip().removeprefix("export ").partition("=")[0].strip()
        if "=" in line and not line.lstrip().startswith("#") and key in pending:
            lines[i] = f"{key}={pending.pop(key)}"
    lines += [f"{key}={value}" for key, value in pending.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)  # it holds SECRET_KEY and the demo charger's secret
