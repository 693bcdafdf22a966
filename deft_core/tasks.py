"""The nine DEFT tasks (paper §4) and their vocabulary, shared by the synthetic-data generator, the
pipeline's text handling and the robot's task definitions.

Each task names the object kind that is grasped, the verb a narration uses, and how the grasp
depends on the task (the affordance model must learn this from data: e.g. a cup is grasped by its
body to pick it up but by its handle to pour).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    name: str             #: identifier, e.g. "pick_cup"
    verb: str             #: narration verb, e.g. "pick up"
    noun: str             #: the grasped object's noun, e.g. "cup"
    object_kind: str      #: object kind in deft_core.world.objects, e.g. "cup"
    grasp_region: str     #: which part of the object a human grasps for this task
    support_kind: str | None = None  #: a second object the task needs (pot to stir in, juicer, ...)
    text: str = ""        #: canonical task description T given to the affordance model

    def __post_init__(self) -> None:
        if not self.text:
            object.__setattr__(self, "text", f"{self.verb} the {self.noun}")


TASKS: dict[str, TaskSpec] = {t.name: t for t in [
    TaskSpec("pick_cup", "pick up", "cup", "cup", "body"),
    TaskSpec("pour_cup", "pour", "cup", "cup", "handle"),
    TaskSpec("open_drawer", "open", "drawer", "drawer", "handle"),
    TaskSpec("pick_spoon", "pick up", "spoon", "spoon", "handle"),
    TaskSpec("scoop_grape", "scoop", "grape", "spoon", "handle_back", support_kind="grapes", text="scoop the grape with the spoon"),
    TaskSpec("stir_spoon", "stir", "spoon", "spoon", "handle_top", support_kind="pot", text="stir the pot with the spoon"),
    TaskSpec("pick_grape", "pick up", "grapes", "grapes", "stem"),
    TaskSpec("flip_bagel", "flip", "bagel", "spatula", "handle", support_kind="bagel", text="flip the bagel with the spatula"),
    TaskSpec("squeeze_lemon", "squeeze", "lemon", "lemon", "top", support_kind="juicer"),
]}

TASK_NAMES: tuple[str, ...] = tuple(TASKS)


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASK_NAMES)}") from None
