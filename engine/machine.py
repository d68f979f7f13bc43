"""One `transitions` Machine per stored definition version: it decides which moves exist.

The machine is model-less and shared by every case of that version; the store, not the
machine, records whether a move happened.
"""
from __future__ import annotations

from transitions import Machine


def build_machine(definition) -> Machine:
    return Machine(
        model=None,
        states=definition.state_names,
        transitions=[
            {"trigger": t.trigger, "source": list(t.sources), "dest": t.dest} for t in definition.transitions
        ],
        initial=definition.open.dest,
        auto_transitions=False,
        ignore_invalid_triggers=False,
    )


def triggers_from(machine: Machine, state: str) -> list[str]:
    return machine.get_triggers(state)


def destination(machine: Machine, trigger: str, state: str) -> str | None:
    """Where `trigger` leads from `state`, or None when it does not leave that state."""
    event = machine.events.get(trigger)
    if event is None:
        return None
    moves = event.transitions.get(state)
    return moves[0].dest if moves else None
