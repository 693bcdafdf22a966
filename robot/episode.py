"""One episode: reset → observe → execute ξ and τ → success / reward → images (and video).

:class:`SimEpisodeRunner` runs episodes in the MuJoCo workcell through the ``sim`` backends of a robot
configuration (``robot/configs/sim.yaml`` by default) — the same :class:`robot.executor.GraspExecutor`
and driver-side safety as on the lab robot — and scores them with the task's Appendix F criterion
(:mod:`robot.tasks`). :func:`run_operator_episode` is the real-robot counterpart: success and reward
come from an operator callback (the CLI prompts; library code never does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from deft_core.grasp import GraspParams
from deft_core.trajectory import PostGraspTrajectory
from robot.base import ControllerError
from robot.executor import ExecutorConfig, GraspExecutor
from robot.tasks import OperatorOutcome, get_task_definition

#: μ sits 1 cm in front of the palm centre along the palm normal (see docs/robot-sim.md)
PALM_STANDOFF_M = 0.01


@dataclass
class EpisodeOutcome:
    """Result of one episode. Images are (H, W, 3) uint8; ``sim_s`` is the simulated (≈ real-robot)
    duration, ``wall_s`` the wall-clock time it took; ``error`` is set when the arm refused a pose."""

    task: str
    seed: int
    success: bool
    reward: float
    metrics: dict
    initial_image: np.ndarray
    final_image: np.ndarray
    report: dict = field(default_factory=dict)
    wall_s: float = 0.0
    sim_s: float = 0.0
    error: str | None = None
    variants: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {"task": self.task, "seed": self.seed, "success": self.success, "reward": self.reward,
                "metrics": self.metrics, "variants": self.variants, "wall_s": self.wall_s, "sim_s": self.sim_s,
                "error": self.error, "execution": self.report}


def default_executor_config(world, **overrides) -> ExecutorConfig:
    """Executor geometry of the simulated hand: the arm's wrist frame is the palm centre (``SimArm``), so
    μ = palm centre + ``PALM_STANDOFF_M`` along the palm normal (wrist +z), the approach axis."""
    return ExecutorConfig(approach_axis=(0.0, 0.0, 1.0), contact_offset=(0.0, 0.0, PALM_STANDOFF_M), **overrides)


class SimEpisodeRunner:
    """Episodes in simulation. ``image_size`` (w, h) of the initial/final images; the camera renders
    RGB-D + mask for the initial observation and RGB for the final image."""

    def __init__(self, robot_config=None, image_size=(320, 240), executor_overrides: dict | None = None):
        from robot.config import example_config_path, load_robot_config

        self.config = robot_config or load_robot_config(example_config_path("sim"))
        for dev in (self.config.arm, self.config.hand, self.config.camera):
            if dev.backend != "sim":
                raise ValueError(f"SimEpisodeRunner needs 'sim' backends; the {dev.kind} backend is {dev.backend!r}")
        self.config.camera.options.width, self.config.camera.options.height = image_size
        self.arm, self.hand, self.camera = self.config.make_arm(), self.config.make_hand(), self.config.make_camera()
        for dev in (self.arm, self.hand, self.camera):
            dev.connect()
        from robot.sim.world import SimClock

        self.world = self.arm.world
        self.clock = SimClock(self.world)
        self.executor_overrides = dict(executor_overrides or {})
        self.task: str | None = None

    def close(self) -> None:
        for dev in (self.arm, self.hand, self.camera):
            dev.disconnect()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def reset(self, task: str, seed: int, split: str = "train", variant_names=None):
        """New scene for ``task`` from ``seed``; returns the initial :class:`robot.base.Frame`."""
        get_task_definition(task)
        self.world.reset(task, seed, split, variant_names)
        self.arm._enabled = True
        self.task = task
        return self.capture_initial()

    def capture_initial(self):
        """I₀ with the arm folded aside (:data:`deft_core.world.robot_scene.CAPTURE_Q`): the egocentric
        camera looks over the robot, whose home pose would hide the objects. Kinematic only: the arm is
        put back at its reset pose before anything runs."""
        from deft_core.world.robot_scene import CAPTURE_Q

        w = self.world
        q_home = w.data.qpos[w.arm_qadr].copy()
        w.data.qpos[w.arm_qadr] = CAPTURE_Q
        w.mj.mj_forward(w.model, w.data)
        try:
            return self.camera.read()
        finally:
            w.data.qpos[w.arm_qadr] = q_home
            w.mj.mj_forward(w.model, w.data)

    def run(self, grasp: GraspParams, trajectory: PostGraspTrajectory | None = None,
            video: "VideoRecorder | None" = None, initial_image: np.ndarray | None = None) -> EpisodeOutcome:
        """Execute ξ (+ τ, default: the task's scripted one) from the current reset and score it."""
        if self.task is None:
            raise RuntimeError("call reset(task, seed) before run()")
        task = get_task_definition(self.task)
        traj = trajectory or task.default_trajectory()
        w = self.world
        if initial_image is None:
            initial_image = self.capture_initial().rgb
        trace = [w.snapshot("initial")]

        def on_event(phase: str, index: int) -> None:
            if phase == "close":
                trace.append(w.snapshot("grasp"))
            elif phase == "trajectory":
                trace.append(w.snapshot("trajectory"))

        if video is not None:
            video.attach(w)
        ex = GraspExecutor(self.arm, self.hand, default_executor_config(w, **self.executor_overrides), self.clock, on_event)
        t0, s0, error, report = time.perf_counter(), w.time, None, {}
        try:
            report = ex.execute(grasp, traj).to_dict()
        except ControllerError as exc:  # unreachable pose: the episode fails, the arm is stopped
            error = str(exc)
        finally:
            if video is not None:
                video.detach(w)
        trace.append(w.snapshot("final"))
        outcome = task.evaluate(trace)
        final = w.render(self.camera.config.width, self.camera.config.height, False, False)[0]
        variants = {r: o.variant for r, o in w.info.objects.items()}
        return EpisodeOutcome(self.task, w.seed, outcome.success and error is None, outcome.reward if error is None else 0.0,
                              outcome.metrics, initial_image, final, report, time.perf_counter() - t0, w.time - s0, error, variants)


class VideoRecorder:
    """Collects RGB frames from the simulated camera every ``1/fps`` simulated seconds while attached."""

    def __init__(self, fps: int = 20, size=(320, 240)):
        self.fps, self.size, self.frames = int(fps), tuple(size), []
        self._next = 0.0

    def _hook(self, world) -> None:
        if world.time + 1e-9 >= self._next:
            self.frames.append(world.render(self.size[0], self.size[1], False, False)[0])
            self._next = world.time + 1.0 / self.fps

    def attach(self, world) -> None:
        self._next = world.time
        world.add_frame_hook(self._hook)

    def detach(self, world) -> None:
        world.remove_frame_hook(self._hook)

    def save(self, path: str | Path) -> Path:
        """Encode the frames as an MP4 (H.264 when PyAV has libx264) with :func:`deft_core.video.write_video`:
        the same frames give the same bytes."""
        from robot.base import require_package

        require_package("av", "av")
        from deft_core.video import write_video

        if not self.frames:
            raise ValueError("no video frames were recorded")
        path = Path(path)
        write_video(path, self.frames, self.fps)
        return path


def run_operator_episode(arm, hand, camera, task: str, grasp: GraspParams, ask: Callable[[str], OperatorOutcome],
                         trajectory: PostGraspTrajectory | None = None, executor_config: ExecutorConfig | None = None) -> dict:
    """Real robot: capture I₀, execute ξ and τ, capture the final image, then ``ask(task_name)`` for the
    operator's :class:`OperatorOutcome`. Returns a dict with images, outcome and the execution report."""
    t = get_task_definition(task)
    first = camera.read()
    report = GraspExecutor(arm, hand, executor_config or ExecutorConfig()).execute(grasp, trajectory or t.default_trajectory())
    last = camera.read()
    answer = ask(task)
    return {"initial": first, "final": last, "success": bool(answer.success), "reward": float(answer.reward),
            "report": report.to_dict()}
