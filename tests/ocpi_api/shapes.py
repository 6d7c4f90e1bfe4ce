"""Compare our OCPI objects with the specification's example objects: same field names, same JSON types."""

import json
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "ocpi-2.2.1-examples"
if not EXAMPLES.exists():
    EXAMPLES = Path("/work/shared/ocpi-2.2.1-examples")


def example(name: str):
    return json.loads((EXAMPLES / name).read_text())


def json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    return type(value).__name__


def shape_differences(ours, theirs, path="$") -> list[str]:
    """Differences of field names and JSON types, recursively; list items are compared with the example's first."""
    if json_type(ours) != json_type(theirs):
        return [f"{path}: {json_type(ours)} where the example has {json_type(theirs)}"]
    if isinstance(ours, dict):
        problems = [f"{path}.{k}: not in the example" for k in ours.keys() - theirs.keys()]
        problems += [f"{path}.{k}: missing" for k in theirs.keys() - ours.keys()]
        for key in ours.keys() & theirs.keys():
            problems += shape_differences(ours[key], theirs[key], f"{path}.{key}")
        return problems
    if isinstance(ours, list) and theirs:
        return [p for item in ours for p in shape_differences(item, theirs[0], f"{path}[]")]
    return []
