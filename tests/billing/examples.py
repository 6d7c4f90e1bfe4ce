"""The OCPI 2.2.1 example objects of the steering repo's shared/ocpi-2.2.1-examples (see its README)."""

import json

from tests.support import ocpi_examples_dir

EXAMPLES = ocpi_examples_dir()


def example(name: str) -> dict:
    with open(EXAMPLES / name) as f:
        return json.load(f)


def tariff_example_names() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("tariff*_*.json") if "put" not in p.name)
