"""The OCPI 2.2.1 specification's example objects (tests/fixtures/ocpi-2.2.1-examples, see its README)."""

import json

from tests.support import OCPI_EXAMPLES


def example(name: str) -> dict:
    with open(OCPI_EXAMPLES / name) as f:
        return json.load(f)


def tariff_example_names() -> list[str]:
    return sorted(p.name for p in OCPI_EXAMPLES.glob("tariff*_*.json") if "put" not in p.name)
