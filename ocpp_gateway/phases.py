"""Which phases of a grid connection a charging session draws on: pure functions, no database.

A charger numbers its own phases 1-3 (its meter's L1-L3, the pins of a Type 2 socket); its phase rotation says which
of the grid's phases each is wired to. OCPP writes a rotation as three letters, the grid phase of the charger's
phase 1, 2 and 3: R is L1, S is L2, T is L3 ("RST" standard, "STR" the charger's L1 on the grid's L2); 2.0.1 adds
"x" for a phase not connected ("Rxx": single-phase on L1). A single-phase car on a three-phase socket charges on the
charger's phase 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

# The grid phase (1 = L1 ... 3 = L3) of the charger's phase 1, 2 and 3; None: that phase is not connected.
Rotation = tuple[int | None, int | None, int | None]
STANDARD: Rotation = (1, 2, 3)
_LETTERS = {"R": 1, "S": 2, "T": 3, "x": None, "X": None}
# A phase drawing at least this much carries the car's current; below it, leakage or a meter's noise.
IN_USE_AMPS = Decimal(1)


def phase_rotation_parse(value: str) -> Rotation | None:
    """'RST', 'STR', 'Rxx' ...; None for NotApplicable, Unknown and anything else (the caller's default holds)."""
    value = (value or "").strip()
    if len(value) != 3 or any(letter not in _LETTERS for letter in value):
        return None
    r1, r2, r3 = (_LETTERS[letter] for letter in value)
    named = [phase for phase in (r1, r2, r3) if phase is not None]
    if not named or len(set(named)) != len(named):
        return None
    return (r1, r2, r3)


def phase_rotation_compose(outer: Rotation | None, inner: Rotation | None) -> Rotation:
    """`inner` relative to its parent, the parent's `outer` relative to the grid: the inner one relative to the grid
    (2.0.1: a Connector's in its EVSE's, in its ChargingStation's; 1.6: a connector's to the main meter's)."""
    outer, inner = outer or STANDARD, inner or STANDARD
    r1, r2, r3 = (outer[phase - 1] if phase is not None else None for phase in inner)
    return (r1, r2, r3)


def connector_phase_rotation_16(value: str, connector_id: int) -> Rotation:
    """A 1.6 connector's rotation to the grid from the ConnectorPhaseRotation key, a comma-separated list of
    '<connectorId>.<rotation>' ('0.RST,1.RST,2.STR'), where 0 is the main meter's to the grid connection and each
    connector's is to that meter. An entry without an index (a one-connector charger's 'RST') is every connector's."""
    entries: dict[int | None, Rotation | None] = {}
    for item in (value or "").split(","):
        index, _, rotation = item.strip().rpartition(".")
        try:
            key = int(index) if index else None
        except ValueError:
            continue
        entries[key] = phase_rotation_parse(rotation)
    own = entries.get(connector_id) or entries.get(None)
    return phase_rotation_compose(entries.get(0), own)


def charger_phases_wired(*, count: int, rotation: Rotation | None) -> tuple[int, ...]:
    """The charger's phases an EVSE wired to `count` phases (its connectors' power type) uses: its first ones, less
    those its rotation says are not connected ("Rxx")."""
    first = tuple(range(1, min(max(count, 1), 3) + 1))
    connected = tuple(n for n in first if (rotation or STANDARD)[n - 1] is not None)
    return connected or first


def charger_phases_in_use(
    *, wired: Sequence[int], ev_phases: int | None = None, currents: Sequence[Decimal | None] = ()
) -> tuple[int, ...]:
    """The charger's phases a session draws on: those its meter measured current on (when it reported every wired
    phase and the car draws at all), else as many as the car asked for, else all the EVSE is wired to. `currents`
    are the charger's phase 1, 2 and 3."""
    measured = [currents[n - 1] if n <= len(currents) else None for n in wired]
    if measured and all(amps is not None for amps in measured):
        drawing = tuple(n for n, amps in zip(wired, measured, strict=True) if amps is not None and amps >= IN_USE_AMPS)
        if drawing:
            return drawing
    return tuple(wired[: ev_phases or len(wired)]) or tuple(wired)


def grid_phases(*, rotation: Rotation | None, charger_phases: Sequence[int]) -> frozenset[int]:
    """The grid phases of the charger's phases, through its rotation; a phase wired to none is dropped (all of
    them: the rotation is not believed, the standard one holds)."""
    rotation = rotation or STANDARD
    mapped = frozenset(p for p in (rotation[n - 1] for n in charger_phases) if p is not None)
    return mapped or frozenset(p for p in (STANDARD[n - 1] for n in charger_phases) if p is not None)
