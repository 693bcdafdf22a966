"""The MuJoCo simulator as a fine-tuning environment (:class:`deft_core.finetune.loop.FinetuneEnv`).

:class:`SimFinetuneEnv` gives Algorithm 1 the three methods it needs:

- ``reset(episode, seed)``: a new scene for the task with object variants drawn from the split
  (``train``/``test`` objects) and placement randomised from ``seed`` (deterministic in the seed, so a
  resumed run replays exactly); returns the overhead camera's RGB image I₀ with ``extras``: ``depth``
  (H×W metres), ``mask`` (role ids, :data:`robot.sim.world.SEGMENT_IDS`), ``K`` (3×3), ``T_base_camera``
  (4×4, OpenCV camera → robot base), ``object_box`` (x1, y1, x2, y2 px of the grasped object, from the
  segmentation mask), ``seed``, ``variants``.
- ``prior(obs)``: grasp parameters ξ (robot base frame) from one of the priors of :data:`PRIORS`:

  * ``affordance``: an exported affordance checkpoint (``deft_core.affordance.load_affordance``):
    ``predict(I₀, object_box, task text)`` → the heatmap's expected contact pixel, wrist rotation and
    hand pose → :func:`deft_core.retarget.affordance_to_grasp` with the sim camera's depth, ``K`` and
    ``T_base_camera`` and :data:`R_MANO_ROBOT` (robot wrist frame → MANO wrist frame), the hand pose
    retargeted so that the robot's fingertips land where the human's are (this hand is 1.32× a human's;
    :class:`robot.sim.retarget_fit.FingertipRetargeter`);
  * ``real-world-only``: the paper's §5 baseline — contact μ = the 3-D point under the object box's
    centre pixel, a random wrist rotation (uniform over rotations whose palm faces the lower hemisphere:
    a hand cannot approach from under the table), a half-closed hand (½ × the oracle's power grasp);
    the randomness is seeded by (``prior_seed``, reset seed);
  * ``oracle``: the scripted grasp from the object's grasp-region site (:mod:`robot.sim.oracle`) — uses
    simulator state a real robot does not have; for development and tests only.
- ``execute(ξ)``: the episode runner (:class:`robot.episode.SimEpisodeRunner`) executes ξ and the task's
  τ (default: the scripted one of :mod:`robot.tasks`), scores it with Appendix F's criterion, and
  returns success, the shaped task reward in [0, 1] and the final image. An unreachable or blocked pose
  is a failed episode (reward 0), not a void one: it is the grasp's fault, and re-sampling would bias D.
"""

from __future__ import annotations

import numpy as np

from deft_core.geometry import matrix_to_euler_xyz
from deft_core.grasp import GraspParams

#: priors that :class:`SimFinetuneEnv` knows
PRIORS = ("affordance", "real-world-only", "oracle")

#: the robot's wrist frame (the sim arm's ``palm_center``: x fingers, y away from the thumb, z palm
#: normal) expressed in MANO's wrist frame (fingers −x, palm normal −y, thumb +z; :mod:`deft_core.mano`)
R_MANO_ROBOT = np.array([[-1.0, 0.0, 0.0],
                         [0.0, 0.0, -1.0],
                         [0.0, -1.0, 0.0]])


def object_box_from_mask(mask: np.ndarray, role_id: int, min_pixels: int = 4) -> np.ndarray:
    """Tight (x1, y1, x2, y2) pixel box (x2/y2 exclusive) of the pixels of ``mask == role_id``."""
    ys, xs = np.nonzero(np.asarray(mask) == role_id)
    if len(xs) < min_pixels:
        raise ValueError(f"the grasped object covers {len(xs)} pixels of the segmentation mask (need {min_pixels}): "
                         "it is out of view or hidden")
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def random_downward_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation (3×3) uniform over SO(3) conditioned on its z axis (the palm normal / approach axis)
    pointing into the lower hemisphere (z·ẑ ≤ 0), by rejection sampling of uniform quaternions."""
    while True:
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        w, x, y, z = q
        zz = 1 - 2 * (x * x + y * y)  # R[2, 2]
        if zz <= 0:
            break
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), zz]])


def affordance_prior(predictor, image: np.ndarray, extras: dict, text: str, retarget=None) -> GraspParams:
    """ξ (robot base frame) from the affordance model, shared by the simulator and the lab robot: the
    predicted mean contact pixel lifted with ``extras['depth']``/``K``/``T_base_camera``, the predicted wrist
    (camera frame) through :data:`R_MANO_ROBOT`, the 45-d pose retargeted (:func:`deft_core.retarget.affordance_to_grasp`)
    with ``retarget`` (a :class:`deft_core.retarget.RetargetConfig` or a callable 45 → 16; ``None`` = the
    identity joint map; the simulator passes its hand's fingertip retargeter,
    :func:`robot.sim.retarget_fit.sim_retargeter`)."""
    from deft_core.retarget import affordance_to_grasp

    pred = predictor.predict(image, extras["object_box"], text)
    return affordance_to_grasp({"contact_pixel": pred.contact_mean, "wrist_rotation": pred.wrist_rotation,
                                "hand_pose": pred.hand_pose}, extras["depth"], extras["K"], extras["T_base_camera"],
                               R_mano_robot=R_MANO_ROBOT, retarget=retarget)


#: a task text whose cosine similarity to every text that supervised the affordance model's wrist and pose
#: heads is below this gets a warning (:func:`hand_text_note`); with MiniLM on the embedded default the cup and
#: drawer texts (≥ 0.68) got wrists 11–22° from the human's, the spoon and lemon texts (0.34–0.52) 48–131°
#: (the grape text, 0.37, 13°: a low similarity warns of a risk, it does not prove an error; docs/finetune-cli.md)
HAND_TEXT_MIN_SIMILARITY = 0.6


def hand_text_note(predictor, text: str) -> str | None:
    """A warning when ``text`` is unlike every text the checkpoint's wrist and pose heads were trained on
    (:meth:`deft_core.affordance.AffordancePredictor.hand_text_support`), else ``None`` (also for
    checkpoints that do not record those texts). Shared by the simulator and the lab robot."""
    support = predictor.hand_text_support(text)
    if support is None or support["similarity"] >= HAND_TEXT_MIN_SIMILARITY:
        return None
    return (f"the affordance model's wrist and hand heads were not trained on any text close to {text!r} (nearest: "
            f"{support['nearest']!r}, cosine {support['similarity']:.2f} < {HAND_TEXT_MIN_SIMILARITY}): its wrist rotation "
            "and hand pose for this task are extrapolated and may be far off (train with hand-labelled clips of this "
            "task, or give a hand-pose source that covers it a weight: --hand-label-weight)")


def real_world_only_prior(extras: dict, prior_seed: int) -> GraspParams:
    """§5 baseline ξ (robot base frame), shared by the simulator and the lab robot
    (:class:`robot.real_env.RealFinetuneEnv`): μ = the 3-D point under the object box's centre pixel,
    θ = a random rotation with the palm facing down (seeded by (``prior_seed``, ``extras['seed']``)),
    hand = ½ × the power grasp. ``extras``: ``object_box`` (px), ``depth`` (m), ``K``, ``T_base_camera``, ``seed``."""
    from deft_core.geometry import deproject_pixel, transform_points
    from deft_core.retarget import robust_depth
    from robot.sim.oracle import POWER_GRASP  # numpy only: no simulator is needed for the constant

    x1, y1, x2, y2 = extras["object_box"]
    uv = np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0])
    z = robust_depth(extras["depth"], uv)
    mu = transform_points(np.asarray(extras["T_base_camera"]), deproject_pixel(uv, z, np.asarray(extras["K"])))
    rng = np.random.default_rng([int(prior_seed), int(extras["seed"]), 11])
    theta = matrix_to_euler_xyz(random_downward_rotation(rng))
    return GraspParams(mu=np.asarray(mu, dtype=np.float64).reshape(3), theta=theta, hand=0.5 * POWER_GRASP)


class SimFinetuneEnv:
    """Algorithm 1's environment in the MuJoCo workcell (see the module docstring).

    ``task``: one of the nine task names; ``split``: ``train``/``test`` objects; ``prior``: one of
    :data:`PRIORS`; ``checkpoint``: the affordance export directory (required by ``affordance``);
    ``image_size`` (w, h) of I₀, depth, mask and the final image; ``trajectory``: τ (default: the task's);
    ``prior_seed``: seeds the ``real-world-only`` prior's randomness; ``runner``: an existing
    :class:`robot.episode.SimEpisodeRunner` to share (else one is made from ``robot/configs/sim.yaml``).
    """

    def __init__(self, task: str, split: str = "train", prior: str = "oracle", checkpoint=None,
                 image_size=(224, 224), trajectory=None, prior_seed: int = 0, runner=None, text_encoder=None):
        from robot.tasks import get_task_definition

        self.task_def = get_task_definition(task)
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if prior not in PRIORS:
            raise ValueError(f"unknown prior {prior!r}; choose one of {PRIORS}")
        if prior == "affordance" and checkpoint is None:
            raise ValueError("prior 'affordance' needs checkpoint=<exported affordance model directory>")
        self.task, self.split, self.prior_name, self.prior_seed = task, split, prior, int(prior_seed)
        self.trajectory = trajectory
        self._predictor = None
        if prior == "affordance":
            from deft_core.affordance import load_affordance

            self._predictor = load_affordance(checkpoint, text_encoder=text_encoder)
        #: :func:`hand_text_note` for this task's text (``None``: no concern, or no affordance prior)
        self.hand_text_note = hand_text_note(self._predictor, self.task_def.text) if self._predictor else None
        if runner is None:
            from robot.episode import SimEpisodeRunner

            runner = SimEpisodeRunner(image_size=tuple(image_size))
        self.runner = runner
        self._obs = None
        from robot.sim.retarget_fit import sim_retargeter

        #: MANO → robot hand of the affordance prior: fingertips where the human's are (this hand is larger)
        self.retarget = sim_retargeter()

    def close(self) -> None:
        self.runner.close()

    # ------------------------------------------------------------------ FinetuneEnv
    def reset(self, episode: int, seed: int):
        """New scene from ``seed`` (episode is informational: placement depends on the seed only)."""
        from deft_core.finetune.loop import Observation
        from robot.sim.world import SEGMENT_IDS

        frame = self.runner.reset(self.task, int(seed), self.split)
        box = object_box_from_mask(frame.mask, SEGMENT_IDS["object"])
        cam = self.runner.camera
        variants = {r: o.variant for r, o in self.runner.world.info.objects.items()}
        self._obs = Observation(image=frame.rgb, extras={
            "depth": frame.depth, "mask": frame.mask, "K": np.asarray(frame.K), "T_base_camera": cam.T_base_camera,
            "object_box": box, "seed": int(seed), "episode": int(episode), "variants": variants, "split": self.split})
        return self._obs

    def prior(self, obs) -> GraspParams:
        """ξ (robot base frame) for the observation from :meth:`reset` (see :data:`PRIORS`)."""
        ex = obs.extras
        if self.prior_name == "oracle":
            from robot.sim.oracle import oracle_grasp

            return oracle_grasp(self.runner.world, self.task)
        if self.prior_name == "real-world-only":
            return self._real_world_only(ex)
        return affordance_prior(self._predictor, obs.image, ex, self.task_def.text, retarget=self.retarget)

    def _real_world_only(self, ex: dict) -> GraspParams:
        return real_world_only_prior(ex, self.prior_seed)

    def execute(self, grasp: GraspParams):
        """Run ξ and τ from the last reset → :class:`deft_core.finetune.loop.EpisodeResult`."""
        from deft_core.finetune.loop import EpisodeResult

        if self._obs is None:
            raise RuntimeError("SimFinetuneEnv.execute needs a reset first")
        out = self.runner.run(grasp, self.trajectory, initial_image=self._obs.image)
        info = {"metrics": out.metrics, "variants": out.variants, "sim_s": out.sim_s, "wall_s": out.wall_s,
                "error": out.error, "split": self.split, "prior": self.prior_name}
        return EpisodeResult(success=bool(out.success), final_image=out.final_image, task_reward=float(out.reward),
                             info=_jsonable(info))


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


__all__ = ["SimFinetuneEnv", "PRIORS", "affordance_prior", "real_world_only_prior", "R_MANO_ROBOT", "object_box_from_mask", "random_downward_rotation"]
