#!/usr/bin/env python
"""Django's command-line utility for administrative tasks. Reads the development .env that `make run` writes
(cpo/envfile.py), so commands pasted into a new shell see the server's settings."""

import os
import sys

from cpo.envfile import env_file_load


def main() -> None:
    env_file_load()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cpo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
