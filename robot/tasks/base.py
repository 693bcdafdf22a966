"""Task definitions shared by the simulator and the real robot.

A :class:`Task` names its objects (train and test variants), Appendix F's success criterion in words,
a default post-grasp trajectory τ, and — in simulation — how to score an episode from a **trace** of
:class:`Snapshot` records taken by the episode runner (initial state, after the grasp, after each of
the 40 trajectory steps). Scoring never touches MuJoCo: a snapshot is plain numpy, so the criteria are
unit-testable with hand-written traces and the same code scores any simulator that fills snapshots.

Roles name the parts of a scene a criterion talks about: ``"object"`` (the grasped object, all its
bodies), ``"support"`` (the second object: pot, juicer, bagel, loose grape), ``"hand"`` (the robot
hand's geoms), ``"arm"``, ``"table"``. All positions are metres in the robot base frame (z up, the
table top at ``table_z``), rotations are 3×3 matrices (``p_base = R @ p_body``).

On the real robot the same :class:`Task` is used with success and reward entered by the operator
(:class:`OperatorOutcome` built by the CLI's prompt callback); :meth:`Task.evaluate` is sim-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deft_core.tasks import TaskSpec, get_task
from deft_core.trajectory import TRAJECTORY_STEPS, PostGraspTrajectory
from deft_core.world.objects import object_variants

PHASES = ("initial", "grasp", "trajectory", "final")


@dataclass(frozen=True)
class BodyState:
    """Pose of one body: ``position`` (3, m, base frame) and ``rotation`` (3×3, body → base)."""

    position: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    @property
    def up(self) -> np.ndarray:
        """The body's +z axis in the base frame (for a cup: base → rim)."""
        return np.asarray(self.rotation)[:, 2]


@dataclass(frozen=True)
class Snapshot:
    """The task-relevant simulator state at one instant.

    ``bodies``: named poses — ``"object"`` (root body of the grasped object), ``"support"`` and any task
    extras; ``points``: named points (m, base frame), e.g. ``"object:body"`` (a site of the grasped
    object), ``"support:center"``; ``joints``: named joint positions (``"drawer"``: opening in m);
    ``contacts``: unordered role pairs in contact, each stored as a sorted tuple, e.g.
    ``("hand", "object")``; ``lowest_z``: per role, the lowest point of its geoms (m) where known.
    """

    phase: str
    time_s: float
    bodies: dict[str, BodyState] = field(default_factory=dict)
    points: dict[str, np.ndarray] = field(default_factory=dict)
    joints: dict[str, float] = field(default_factory=dict)
    contacts: frozenset = frozenset()
    lowest_z: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"Snapshot.phase must be one of {PHASES}, got {self.phase!r}")

    def touching(self, a: str, b: str) -> bool:
        return tuple(sorted((a, b))) in self.contacts


def contact_pairs(*pairs: tuple[str, str]) -> frozenset:
    """Helper: a ``contacts`` set from role pairs in any order."""
    return frozenset(tuple(sorted(p)) for p in pairs)


@dataclass(frozen=True)
class TaskOutcome:
    """``success`` (Appendix F), ``reward`` in [0, 1] (1.0 exactly when successful, shaped below),
    ``metrics``: the measured quantities the decision used (JSON-serialisable)."""

    success: bool
    reward: float
    metrics: dict

    def to_dict(self) -> dict:
        return {"success": bool(self.success), "reward": float(self.reward), "metrics": self.metrics}


@dataclass(frozen=True)
class OperatorOutcome:
    """Real-robot result entered by the operator: ``success`` and a ``reward`` in [0, 1]."""

    success: bool
    reward: float

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.reward) <= 1.0:
            raise ValueError(f"operator reward must be in [0, 1], got {self.reward!r}")


#: Share of the reward a failed episode can reach, so any success outranks any failure in CEM.
FAILED_REWARD_CAP = 0.9


def shaped(success: bool, partial: float) -> float:
    """1.0 on success, otherwise ``FAILED_REWARD_CAP × partial`` (partial clipped to [0, 1])."""
    return 1.0 if success else FAILED_REWARD_CAP * float(np.clip(partial, 0.0, 1.0))


def ramp(x: float, full: float) -> float:
    """``x / full`` clipped to [0, 1]."""
    return float(np.clip(x / full, 0.0, 1.0)) if full > 0 else float(x > 0)


class Task:
    """One of the nine tasks. Subclasses set ``name``, ``criterion`` and implement :meth:`evaluate`
    and :meth:`default_trajectory_deltas`.

    ``grasp_hold_fraction``: share of trajectory snapshots that must show hand–object contact for
    "grasped throughout the trial" (contacts flicker for a step in any simulator; 0.9 tolerates that).
    """

    name: str = ""
    criterion: str = ""
    reward_terms: str = ""
    grasp_hold_fraction: float = 0.9
    #: variant-name filters per role: kind → shape(s) allowed (e.g. loose grapes for scooping)
    support_shapes: tuple[str, ...] | None = None
    object_shapes: tuple[str, ...] | None = None

    @property
    def spec(self) -> TaskSpec:
        return get_task(self.name)

    @property
    def text(self) -> str:
        return self.spec.text

    def objects(self, split: str) -> dict[str, list[str]]:
        """Variant names per role for a split ("train"/"test"): ``{"object": [...], "support": [...]}``."""
        out = {"object": [v.name for v in object_variants(self.spec.object_kind, split)
                          if self.object_shapes is None or v.shape in self.object_shapes]}
        if self.spec.support_kind:
            out["support"] = [v.name for v in object_variants(self.spec.support_kind, split)
                              if self.support_shapes is None or v.shape in self.support_shapes]
        return out

    def pick_variants(self, split: str, rng: np.random.Generator) -> dict[str, str]:
        """One variant name per role, drawn with ``rng``."""
        return {role: names[int(rng.integers(len(names)))] for role, names in self.objects(split).items()}

    def default_trajectory_deltas(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def default_trajectory(self) -> PostGraspTrajectory:
        """The scripted τ (40 × 6, robot base frame) used when no demonstration file is given."""
        d = np.asarray(self.default_trajectory_deltas(), dtype=np.float64)
        return PostGraspTrajectory(d, task=self.name, meta={"source": "scripted default (robot/tasks)"})

    def evaluate(self, trace: list[Snapshot]) -> TaskOutcome:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name, "text": self.text, "grasp_region": self.spec.grasp_region,
                "objects": {s: self.objects(s) for s in ("train", "test")}, "success": self.criterion,
                "reward": self.reward_terms}

    # --- helpers for criteria ---------------------------------------------------------------
    @staticmethod
    def split_trace(trace: list[Snapshot]) -> tuple[Snapshot, list[Snapshot], Snapshot]:
        """(initial, post-grasp snapshots [grasp, trajectory...], final). Raises on an unusable trace."""
        if not trace or trace[0].phase != "initial":
            raise ValueError("a task trace starts with an 'initial' snapshot")
        after = [s for s in trace if s.phase in ("grasp", "trajectory", "final")]
        if not after:
            raise ValueError("a task trace needs snapshots after the grasp")
        return trace[0], after, trace[-1]

    def hold_fraction(self, after: list[Snapshot], role: str = "object") -> float:
        """Share of post-grasp snapshots in which the hand touches ``role``."""
        return float(np.mean([s.touching("hand", role) for s in after]))

    def held_throughout(self, after: list[Snapshot], role: str = "object") -> bool:
        return self.hold_fraction(after, role) >= self.grasp_hold_fraction and after[-1].touching("hand", role)


def steps_profile(total: float, start: int = 0, stop: int = TRAJECTORY_STEPS) -> np.ndarray:
    """Per-step increments (length 40) that move ``total`` smoothly (cosine ramp) over steps [start, stop)."""
    n = stop - start
    s = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n + 1))
    out = np.zeros(TRAJECTORY_STEPS)
    out[start:stop] = np.diff(s) * total
    return out
