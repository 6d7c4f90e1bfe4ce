"""The OCPI 2.2.1 example objects in /work/shared/ocpi-2.2.1-examples (see its README)."""

import json
import os
from pathlib import Path

EXAMPLES = Path(os.environ.get("OCPI_EXAMPLES_DIR", "/work/shared/ocpi-2.2.1-examples"))


def example(name: str) -> dict:
    with open(EXAMPLES / name) as f:
        return json.load(f)


def tariff_example_names() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("tariff*_*.json") if "put" not in p.name)
