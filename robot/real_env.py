"""The lab robot as a fine-tuning environment (:class:`deft_core.finetune.loop.FinetuneEnv`), the
real-world counterpart of :class:`robot.sim_env.SimFinetuneEnv`.

:class:`RealFinetuneEnv` opens the arm, hand and camera named in a robot YAML (:mod:`robot.config`,
backends from :mod:`robot.registry`: ``xarm``/``dynamixel``/``realsense`` in the lab, ``fake`` in tests)
and gives Algorithm 1 its three methods:

- ``reset(episode, seed)``: after a warning (``operator.confirm``) releases what the last episode left in
  the hand (open hand, lift the wrist straight up to ``hover_z_m``), asks the operator to reset the
  scene (``operator.confirm``), homes the arm,
  captures the RGB-D image I₀ and finds the object box: the locator (:mod:`robot.locate`, text prompt
  = the task's object noun unless overridden), else the operator's box (``operator.ask_box``). ``seed``
  only seeds the real-world-only prior's randomness: a real scene cannot be replayed. ``extras``:
  ``depth`` (H×W m), ``K`` (3×3), ``T_base_camera`` (4×4, OpenCV camera → base, from the YAML),
  ``object_box`` (x1, y1, x2, y2 px), ``box_source``, ``box_score``, ``seed``, ``episode``.
- ``prior(obs)``: ξ in the robot base frame — ``affordance`` (the exported model → contact pixel +
  depth → base frame through ``T_base_camera`` and :func:`deft_core.retarget.affordance_to_grasp`) or
  ``real-world-only`` (§5: box centre, random downward wrist rotation, half-closed hand). ``oracle``
  needs simulator state and is refused.
- ``execute(ξ)``: :class:`robot.executor.GraspExecutor` runs ξ then τ under the driver-side safety
  limits of the YAML; then the final image is captured. A controller error (collision, unreachable
  pose: the driver has already stopped the arm) is a failed episode, as in simulation; the operator
  clears the fault before the next reset. With ``operator.judge`` (evaluation) the operator's
  :class:`robot.tasks.OperatorOutcome` gives success and task reward.

On any other exception (including Ctrl-C) inside ``reset``/``execute``, and in :meth:`close`, the robot
is left safe: hand opened, wrist lifted, arm stopped (motion disabled), devices disconnected. Library
code never prints or reads the terminal: every question goes through :class:`Operator` callbacks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from deft_core.grasp import GraspParams
from robot.base import ConfigError, ControllerError, DeviceError, Pose
from robot.executor import ExecutorConfig, GraspExecutor
from robot.locate import Detection, ObjectLocator, check_box
from robot.sim_env import _jsonable, affordance_prior, hand_text_note, real_world_only_prior

log = logging.getLogger(__name__)

#: priors the lab robot supports (``oracle`` reads simulator state)
REAL_PRIORS = ("affordance", "real-world-only")


class NoObjectBox(RuntimeError):
    """Neither the locator nor the operator gave an object box in ``max_locate_tries`` captures. The CLIs
    stop the session with a one-line message; the robot is left safe and the run resumes where it stopped."""


class RobotConnectionError(ConnectionError):
    """A device of the robot YAML could not be connected; the message names the device, its backend,
    its address (ip / serial port / camera serial) and the YAML file."""


@dataclass
class Operator:
    """How the environment talks to the person at the robot (the CLI supplies terminal versions).

    ``confirm(message)``: show ``message`` and return when the operator is ready (Enter); raise to abort.
    ``ask_box(image, reason)``: the object box (x1, y1, x2, y2 px of ``image``) typed/drawn by the
    operator, or None to re-capture the scene. ``judge(task)``: the episode's
    :class:`robot.tasks.OperatorOutcome` (evaluation only; fine-tuning asks the reward source instead).
    """

    confirm: Callable[[str], None]
    ask_box: Callable[[np.ndarray, str], Sequence[float] | None] | None = None
    judge: Callable[[str], object] | None = None


def device_address(dev) -> str:
    """'ip=…' / 'port=…' / 'serial=…' of a :class:`robot.config.DeviceConfig` (what to check when it fails)."""
    opts = dev.options if isinstance(dev.options, dict) else vars(dev.options)
    parts = [f"{k}={opts[k]}" for k in ("ip", "host", "port", "serial", "baudrate") if k in opts]
    return ", ".join(parts) or "no address"


class RealFinetuneEnv:
    """Algorithm 1's environment on a robot described by a YAML file (see the module docstring).

    ``config``: a :class:`robot.config.RobotConfig` or a YAML path; ``task``: a task name; ``prior``: one
    of :data:`REAL_PRIORS`; ``checkpoint``: the affordance export (prior ``affordance``); ``operator``:
    :class:`Operator` callbacks; ``locator``: an :class:`robot.locate.ObjectLocator` (None: the operator
    gives every box); ``object_prompt``: the locator's text (default: the task's object noun);
    ``executor_config``: hand geometry and pacing (default: the YAML's ``executor`` section, else
    :data:`robot.config.LAB_EXECUTOR_DEFAULTS` — wrist frame = palm centre, μ 1 cm in front of the palm along
    the approach axis, as the simulated hand; the YAML's ``retarget`` section corrects the prior's hand
    pose); ``trajectory``: τ (default: the task's);
    ``prior_seed``: seeds the real-world-only prior; ``clock``: the executor's time source (default wall
    clock). Devices are connected here; a failure raises
    :class:`RobotConnectionError` after disconnecting whatever was already connected.
    """

    def __init__(self, config, task: str, operator: Operator, prior: str = "affordance", checkpoint=None,
                 locator: ObjectLocator | None = None, object_prompt: str | None = None,
                 executor_config: ExecutorConfig | None = None, trajectory=None, prior_seed: int = 0,
                 text_encoder=None, max_locate_tries: int = 3, clock=None):
        from deft_core.tasks import get_task
        from robot.config import RobotConfig, load_robot_config
        from robot.tasks import get_task_definition

        self.config = config if isinstance(config, RobotConfig) else load_robot_config(config)
        self.task_def = get_task_definition(task)
        if prior not in REAL_PRIORS:
            raise ValueError(f"prior {prior!r} is not available on a real robot; choose one of {REAL_PRIORS} "
                             "('oracle' reads the simulator's state)")
        if prior == "affordance" and checkpoint is None:
            raise ValueError("prior 'affordance' needs checkpoint=<exported affordance model directory>")
        self.T_base_camera = self.config.camera.T_base_camera
        if self.T_base_camera is None:
            raise ConfigError(f"{self.config.path or self.config.name}: camera.T_base_camera is required on a real "
                              "robot (4x4 camera→base, metres); measure it with 'deft-robot calibrate-camera'")
        self.task, self.prior_name, self.prior_seed = task, prior, int(prior_seed)
        self.operator, self.locator, self.trajectory = operator, locator, trajectory
        self.object_prompt = object_prompt or get_task(task).noun
        self.executor_config = executor_config or self.config.executor_config()
        #: the YAML's ``retarget`` correction of the prior's hand pose (None: Appendix C's joint map as is)
        self.retarget = self.config.retarget
        self.max_locate_tries = int(max_locate_tries)
        self.clock = clock  # robot.executor.Clock (None: wall clock); tests pass one that does not sleep
        self._predictor = None
        if prior == "affordance":  # load before touching the robot: a bad checkpoint fails fast
            from deft_core.affordance import load_affordance

            self._predictor = load_affordance(checkpoint, text_encoder=text_encoder)
        #: a warning when the task's text is unlike the hand heads' training texts (``None``: no concern)
        self.hand_text_note = hand_text_note(self._predictor, get_task(task).text) if self._predictor else None
        self._obs = None
        self._fault: str | None = None   # controller error of the last episode, cleared at the next reset
        self._dirty = True               # release before a reset: after an episode, and at start (a killed run)
        self.arm = self.hand = self.camera = None
        self._connect()

    # ------------------------------------------------------------------ devices
    def _connect(self) -> None:
        cfg, opened = self.config, []
        try:
            for kind, make in (("camera", cfg.make_camera), ("hand", cfg.make_hand), ("arm", cfg.make_arm)):
                dev_cfg = getattr(cfg, kind)
                try:
                    dev = make()
                    dev.connect()
                except Exception as exc:
                    raise RobotConnectionError(
                        f"cannot connect the {kind} ({dev_cfg.backend!r} backend, {device_address(dev_cfg)}, from "
                        f"{cfg.path or cfg.name}): {exc}") from exc
                opened.append(dev)
                setattr(self, kind, dev)
        except BaseException:
            for dev in reversed(opened):
                _quietly(dev.disconnect, f"disconnect {type(dev).__name__}")
            raise

    def make_safe(self) -> None:
        """Open the hand, lift the wrist straight up to ``hover_z_m`` and stop the arm (motion disabled).
        Every step is attempted even if an earlier one fails; nothing raises. Done once until the robot
        is commanded again (a failed episode makes it safe, then ``close`` must not try to move a
        stopped arm)."""
        if getattr(self, "_made_safe", False):
            return
        if self.hand is not None and self.hand.is_connected:
            _quietly(self.hand.open, "open the hand")
        if self.arm is not None and self.arm.is_connected:
            _quietly(self._retreat, "retreat the arm")
            _quietly(self.arm.stop, "stop the arm")
        self._made_safe = True

    def close(self) -> None:
        """Leave the robot safe (:meth:`make_safe`) and disconnect every device. Idempotent."""
        self.make_safe()
        for dev in (self.arm, self.hand, self.camera):
            if dev is not None:
                _quietly(dev.disconnect, f"disconnect {type(dev).__name__}")

    def _retreat(self) -> None:
        pose = self.arm.get_state().pose
        p = pose.position.copy()
        p[2] = max(p[2], self.executor_config.hover_z_m)
        self.arm.move_to(Pose(p, pose.rotation), self.executor_config.transit_speed_m_s)

    def _guarded(self, fn, *args):
        self._made_safe = False  # fn commands the robot again
        try:
            return fn(*args)
        except BaseException:
            self.make_safe()
            raise

    # ------------------------------------------------------------------ FinetuneEnv
    def reset(self, episode: int, seed: int):
        """Release, home, let the operator reset the scene, capture I₀ and find the object box."""
        return self._guarded(self._reset, int(episode), int(seed))

    def _reset(self, episode: int, seed: int):
        from deft_core.finetune.loop import Observation

        if self._dirty:  # the last episode may still hold the object: warn before the hand opens
            what = "the hand will open" + ("" if self._fault else " and the wrist lift")
            self.operator.confirm(f"episode {episode}: {what}; support the object if it is held, keep clear, press Enter")
            self.hand.open()
            if self._fault is None:
                self._retreat()
        fault = f"the arm stopped on a controller error ({self._fault}); clear its cause, then " if self._fault else ""
        self.operator.confirm(f"episode {episode}: {fault}reset the scene for '{self.task}' (object: "
                              f"{self.object_prompt}), keep clear of the robot, press Enter to home the arm")
        if self._fault is not None:  # re-enable motion and leave the fault pose upwards before homing
            self.arm.recover()
            self._retreat()
        self.arm.home()  # backends' home() clears a stop (re-enables motion) and moves in safe steps
        self._fault, self._dirty = None, False
        frame, det = self._capture_with_box(episode)
        self._obs = Observation(image=frame.rgb, extras={
            "depth": frame.depth, "K": np.asarray(frame.K, dtype=np.float64), "T_base_camera": self.T_base_camera,
            "object_box": det.box, "box_source": det.source, "box_score": float(det.score), "seed": seed,
            "episode": episode, "object_prompt": self.object_prompt})
        return self._obs

    def _capture_with_box(self, episode: int):
        reason = ""
        for _ in range(self.max_locate_tries):
            frame = self.camera.read()
            h, w = frame.rgb.shape[:2]
            det = self.locator.locate(frame.rgb, self.object_prompt) if self.locator is not None else None
            if det is not None:
                try:
                    return frame, Detection(check_box(det.box, w, h), det.score, det.source)
                except ValueError as exc:
                    reason = f"the locator's box is unusable: {exc}"
            else:
                reason = (f"the locator found no '{self.object_prompt}'" if self.locator is not None
                          else "no locator: give the object box")
            if self.operator.ask_box is not None:
                box = self.operator.ask_box(frame.rgb, reason)
                if box is not None:
                    return frame, Detection(check_box(box, w, h), 1.0, "operator")
            self.operator.confirm(f"episode {episode}: {reason}; fix the scene, press Enter to capture again")
        raise NoObjectBox(f"episode {episode}: no object box after {self.max_locate_tries} captures ({reason})")

    def prior(self, obs) -> GraspParams:
        """ξ (robot base frame) for the observation from :meth:`reset` (see :data:`REAL_PRIORS`)."""
        ex = obs.extras
        if self.prior_name == "real-world-only":
            return real_world_only_prior(ex, self.prior_seed)
        return affordance_prior(self._predictor, obs.image, ex, self.task_def.text, retarget=self.retarget)

    def execute(self, grasp: GraspParams):
        """Run ξ and τ from the last reset → :class:`deft_core.finetune.loop.EpisodeResult`."""
        if self._obs is None:
            raise RuntimeError("RealFinetuneEnv.execute needs a reset first")
        return self._guarded(self._execute, grasp)

    def _execute(self, grasp: GraspParams):
        import time

        from deft_core.finetune.loop import EpisodeResult

        traj = self.trajectory or self.task_def.default_trajectory()
        t0, error, report = time.perf_counter(), None, {}
        self._dirty = True
        try:
            report = GraspExecutor(self.arm, self.hand, self.executor_config, self.clock).execute(grasp, traj).to_dict()
        except ControllerError as exc:  # the driver already stopped the arm: a failed grasp, not a void one
            # the hand stays as it is: it may hold the object, and the next reset warns the operator
            # ("the hand will open; support the object") before opening it
            error, self._fault = str(exc), str(exc)
        final = None
        try:
            final = self.camera.read().rgb
        except DeviceError as exc:
            log.warning("final image not captured: %s", exc)
        success, task_reward = (False if error else None), None
        if self.operator.judge is not None:
            outcome = self.operator.judge(self.task)
            success, task_reward = bool(outcome.success) and error is None, float(outcome.reward)
        info = {"execution": report, "error": error, "wall_s": time.perf_counter() - t0, "prior": self.prior_name,
                "robot": self.config.name, "box_source": self._obs.extras["box_source"]}
        return EpisodeResult(success=success, final_image=final, task_reward=task_reward, info=_jsonable(info))


def _quietly(fn, what: str) -> None:
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 — leaving the robot safe must not be interrupted by one failure
        log.warning("while leaving the robot safe: could not %s: %s", what, exc)  # one line; the traceback at debug
        log.debug("traceback", exc_info=True)


__all__ = ["RealFinetuneEnv", "Operator", "RobotConnectionError", "REAL_PRIORS", "real_world_only_prior",
           "device_address"]
