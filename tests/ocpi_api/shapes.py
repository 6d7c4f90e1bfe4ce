"""Compare our OCPI objects with the specification's example objects: same field names, same JSON types."""

import json

from tests.support import OCPI_EXAMPLES


def example(name: str):
    return json.loads((OCPI_EXAMPLES / name).read_text())


def json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    return type(value).__name__


def shape_differences(ours, theirs, path="$") -> list[str]:
    """Differences of field names and JSON types, recursively. List items are compared item by item when both lists
    have the same length, else each with the example's first item."""
    if json_type(ours) != json_type(theirs):
        return [f"{path}: {json_type(ours)} where the example has {json_type(theirs)}"]
    if isinstance(ours, dict):
        problems = [f"{path}.{k}: not in the example" for k in ours.keys() - theirs.keys()]
        problems += [f"{path}.{k}: missing" for k in theirs.keys() - ours.keys()]
        for key in ours.keys() & theirs.keys():
            problems += shape_differences(ours[key], theirs[key], f"{path}.{key}")
        return problems
    if isinstance(ours, list) and theirs:
        pairs = zip(ours, theirs, strict=True) if len(ours) == len(theirs) else ((item, theirs[0]) for item in ours)
        return [p for mine, spec in pairs for p in shape_differences(mine, spec, f"{path}[]")]
    return []
