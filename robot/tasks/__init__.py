"""The nine DEFT tasks (paper §4, Appendix F): objects by split, success criteria from simulator state,
shaped rewards, scripted default post-grasp trajectories. Imports nothing heavy (no MuJoCo)."""

from __future__ import annotations

from deft_core.tasks import TASK_NAMES
from robot.tasks.base import BodyState, OperatorOutcome, Snapshot, Task, TaskOutcome, contact_pairs
from robot.tasks.definitions import TASK_CLASSES

TASKS: dict[str, Task] = {cls.name: cls() for cls in TASK_CLASSES}
assert tuple(TASKS) == TASK_NAMES or set(TASKS) == set(TASK_NAMES), "robot tasks must match deft_core.tasks"


def get_task_definition(name: str) -> Task:
    """The :class:`Task` called ``name`` (e.g. ``"pick_cup"``); unknown names list the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


__all__ = ["TASKS", "get_task_definition", "Task", "TaskOutcome", "OperatorOutcome", "Snapshot", "BodyState",
           "contact_pairs"]
