"""The on-disk layout of DEFT runs (fine-tuning, distilled policies, evaluations) and how to open the
environment a run was made in.

One run = one fine-tuning of one task with one prior and one reward source::

    runs/<task>/<name>/                 name = <prior>[-<reward>][-test-split], e.g. oracle, real-world-only,
                                        affordance-r3m (see :func:`run_name`)
      run_meta.json                     what the run is: task, prior, checkpoint, reward, robot, split, seed,
                                        image size, CEM sizes (a resumed command must match it)
      finetune/                         the durable episode log (deft_core.finetune.episode_log)
      finetune.png                      reward / elite mean / σ curves of the run
      episodes.png                      every episode's initial and final image, reward and outcome
      policies/<kind>/                  distilled residual policies (deft, mlp, transformer, direct, mean)
      eval/<policy>_<objects>.json      evaluation results (robot.evaluation), objects = train | test
      eval/images/<policy>_<objects>/   each trial's initial and final image (since 2026-11-27)

``affordance`` evaluations (the prior alone) are stored in the run whose prior they evaluate;
``real-world-only`` evaluations in the ``real-world-only`` run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deft_core.grasp import SIGMA_HAND, SIGMA_MU, SIGMA_THETA

#: the priors a run can start from (robot.sim_env.PRIORS; ``toy`` runs use the toy env's own prior)
PRIOR_NAMES = ("affordance", "oracle", "real-world-only")
REWARDS = ("operator", "sim", "r3m", "resnet")
#: reward sources whose runs count as the main DEFT result (the others are Table 3's reward ablation)
MAIN_REWARDS = ("sim", "operator")
#: ``RunMeta.extra`` key of a σ₀ other than Table 4's (``deft-robot finetune --sigma``): [μ m, θ rad, hand rad]
CEM_SIGMA = "cem_sigma"
TABLE4_SIGMA = (SIGMA_MU, SIGMA_THETA, SIGMA_HAND)
META_FILE = "run_meta.json"
META_FORMAT = "deft-robot-run"


class RunError(ValueError):
    """A run directory is missing, ambiguous or does not match the command's settings."""


@dataclass
class RunMeta:
    """What a run is. ``prior``: affordance | oracle | real-world-only (| toy); ``checkpoint``: the
    affordance export directory (prior ``affordance``); ``reward``: operator | sim | r3m | resnet;
    ``robot``: sim | toy | a robot YAML path; ``split``: objects practised on; ``seed``: the run seed
    (resets, CEM samples); ``image_size``: (width, height) px of I₀ and the final image;
    ``episodes``/``warmup``/``elites``: N, M, E of Table 4; ``trajectory``: the post-grasp τ the episodes
    execute — None for the task's scripted τ, else the digest (:meth:`PostGraspTrajectory.digest`) of the
    τ copied into the run as ``trajectory.npz`` (``deft-robot finetune --trajectory``)."""

    task: str
    prior: str
    reward: str
    robot: str = "sim"
    split: str = "train"
    seed: int = 0
    image_size: tuple[int, int] = (224, 224)
    checkpoint: str | None = None
    episodes: int = 30
    warmup: int = 10
    elites: int = 10
    trajectory: str | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_size"] = list(self.image_size)
        return {"format": META_FORMAT, **d}

    @classmethod
    def from_dict(cls, d: dict, source: str = "<meta>") -> "RunMeta":
        if not isinstance(d, dict) or d.get("format") != META_FORMAT:
            raise RunError(f"{source}: not a deft-robot run description "
                           f"({'format ' + repr(d.get('format')) if isinstance(d, dict) else 'not a JSON object'})")
        fields = {k: v for k, v in d.items() if k != "format"}
        unknown = set(fields) - set(cls.__dataclass_fields__)
        if unknown:
            raise RunError(f"{source}: unknown fields {sorted(unknown)}")
        fields["image_size"] = tuple(int(x) for x in fields.get("image_size", (224, 224)))
        return cls(**fields)

    def cem_config(self):
        """Algorithm 1's settings of this run (:class:`deft_core.finetune.cem.CEMConfig`): N, M, E and σ₀
        (Table 4's unless ``extra["cem_sigma"]`` says otherwise)."""
        from deft_core.finetune.cem import CEMConfig

        mu, theta, hand = self.extra.get(CEM_SIGMA) or TABLE4_SIGMA
        return CEMConfig(num_elites=self.elites, warmup_episodes=self.warmup, total_episodes=self.episodes,
                         sigma_mu=float(mu), sigma_theta=float(theta), sigma_hand=float(hand))

    @property
    def is_main(self) -> bool:
        """A DEFT run for Table 2 (a learnt or oracle prior, a main reward, train objects)."""
        return self.prior != "real-world-only" and self.reward in MAIN_REWARDS and self.split == "train"


def run_name(prior: str, reward: str, split: str = "train") -> str:
    """The default directory name of a run: ``<prior>[-<reward>][-test-split]`` (the reward is named
    only for Table 3's reward ablation: r3m, resnet)."""
    name = prior
    if reward not in MAIN_REWARDS:
        name += f"-{reward}"
    if split != "train":
        name += f"-{split}-split"
    return name


class RunDir:
    """Paths of one run directory (see the module docstring); nothing is created until written."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def meta_path(self) -> Path:
        return self.path / META_FILE

    @property
    def finetune_dir(self) -> Path:
        return self.path / "finetune"

    @property
    def curve_png(self) -> Path:
        return self.path / "finetune.png"

    @property
    def sheet_png(self) -> Path:
        """The episodes' contact sheet (:mod:`deft_core.finetune.sheet`)."""
        return self.path / "episodes.png"

    @property
    def trajectory_path(self) -> Path:
        """The run's own copy of its post-grasp τ (only when ``RunMeta.trajectory`` is set)."""
        return self.path / "trajectory.npz"

    def store_trajectory(self, tau) -> None:
        """Copy τ into the run (before its meta names it), so evaluation never depends on the user's file."""
        if self.trajectory_path.is_file():
            from deft_core.trajectory import PostGraspTrajectory

            try:
                if PostGraspTrajectory.load(self.trajectory_path).digest() == tau.digest():
                    return
            except ValueError:
                pass
        tau.save(self.trajectory_path)

    def load_trajectory(self, meta: RunMeta):
        """The τ a run's episodes executed: None for the task's scripted τ, else the run's copy, checked
        against the digest in its meta."""
        if meta.trajectory is None:
            return None
        from deft_core.trajectory import PostGraspTrajectory

        try:
            tau = PostGraspTrajectory.load(self.trajectory_path)
        except (FileNotFoundError, ValueError) as exc:
            raise RunError(f"{self.path} was fine-tuned with a post-grasp trajectory (digest {meta.trajectory}) but its "
                           f"copy cannot be read: {exc}") from None
        if tau.digest() != meta.trajectory:
            raise RunError(f"{self.trajectory_path} has digest {tau.digest()}, the run's meta says {meta.trajectory}: "
                           "the file was changed after fine-tuning")
        return tau

    def policy_dir(self, kind: str) -> Path:
        return self.path / "policies" / kind

    def eval_path(self, policy: str, objects: str) -> Path:
        return self.path / "eval" / f"{policy}_{objects}.json"

    def eval_paths(self) -> list[Path]:
        return sorted((self.path / "eval").glob("*.json"))

    def has_meta(self) -> bool:
        return self.meta_path.is_file()

    def read_meta(self) -> RunMeta:
        if not self.meta_path.is_file():
            name, task = self.path.name, self.path.parent.name
            prior = next((f"--prior {p}" for p in ("real-world-only", "oracle") if name.startswith(p)),
                         "--checkpoint MODEL_DIR" if name.startswith("affordance") else None)
            from deft_core.tasks import TASKS

            task = f" --task {task}" if task in TASKS else ""  # a --run folder need not sit in <task>/
            command = f"deft-robot finetune{task} {prior}" if prior else "deft-robot finetune"
            raise RunError(f"{self.path} is not a run directory (no {META_FILE}); run '{command}' first")
        try:
            data = json.loads(self.meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise RunError(f"{self.meta_path} is not valid JSON: {exc}") from None
        return RunMeta.from_dict(data, str(self.meta_path))

    def write_or_check_meta(self, meta: RunMeta) -> RunMeta:
        """Write ``meta`` for a new run, or check it equals the stored one (resume): a difference is an
        error naming the differing fields."""
        if self.has_meta():
            stored = self.read_meta().to_dict()
            new = meta.to_dict()
            diff = sorted(k for k in set(stored) | set(new) if stored.get(k) != new.get(k))
            if diff:
                details = "; ".join(f"{k}: run has {stored.get(k)!r}, command has {new.get(k)!r}" for k in diff)
                raise RunError(f"{self.meta_path} belongs to a different run ({details}); use the same settings "
                               "to resume, or another --run directory")
            return meta
        write_json(self.meta_path, meta.to_dict())
        return meta


CHECKPOINT_DIGEST = "checkpoint_digest"  #: RunMeta.extra key: the affordance export the run was made from


def checkpoint_digest(ckpt_dir: str | Path) -> str:
    """SHA-256 (16 hex digits) of a checkpoint folder's ``config.json`` and ``model.safetensors`` (an
    affordance export, or a distilled policy: :func:`robot.evaluation.policy_digest`): a model exported or
    distilled again into the same folder is another model, even at the same path."""
    import hashlib

    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        path = Path(ckpt_dir) / name
        h.update(name.encode() + b"\0")
        if path.is_file():
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:16]


def check_checkpoint(meta: RunMeta, run: str | Path, now: str | None = None) -> None:
    """Refuse (:class:`RunError`) a run whose affordance export has changed since the run was made: its
    episodes and evaluations belong to the model it recorded. Runs made before the digest was recorded
    (no ``checkpoint_digest`` in ``extra``) are not checked. ``now``: the export's digest when the caller
    has just computed it (the model is not read again)."""
    recorded = (meta.extra or {}).get(CHECKPOINT_DIGEST)
    if not (meta.checkpoint and recorded) or not Path(meta.checkpoint, "config.json").is_file():
        return
    now = now or checkpoint_digest(meta.checkpoint)
    if now != recorded:
        raise RunError(f"{run} was made from the affordance model in {meta.checkpoint} as it was then (digest "
                       f"{recorded}); the files there now are another model (digest {now}), exported again since. "
                       "Give the new model its own --out (or --run), or restore the earlier export; if the run's "
                       "model was moved elsewhere, pass --checkpoint with its new folder")


def relocate_checkpoint(meta: RunMeta, run: str | Path, given: str | Path | None = None) -> RunMeta:
    """``meta`` with ``checkpoint`` naming where the run's affordance export is now.

    A run records its export's absolute path and digest (:func:`checkpoint_digest`). Runs moved or copied
    with their model (another machine, a renamed data folder) still name the old path: given ``--checkpoint
    DIR`` whose files have the recorded digest, the run carries on with DIR (its ``run_meta.json`` keeps the
    path it was made with; the digest is what identifies the model). A DIR holding another model, or a run
    that recorded no digest, is refused; so is a recorded path that is gone when no DIR is given, with the
    flag to pass. Runs without a model (oracle, real-world-only) are returned as they are; ``given`` does not
    apply to them and is refused."""
    from dataclasses import replace

    recorded = (meta.extra or {}).get(CHECKPOINT_DIGEST)
    if not meta.checkpoint:
        if given:
            raise RunError(f"{run} is a {meta.prior!r} run and uses no affordance model; drop --checkpoint")
        return meta
    if given is None or str(Path(given).resolve()) == meta.checkpoint:
        if not Path(meta.checkpoint, "config.json").is_file():
            where = (f"pass --run {run} --checkpoint DIR with the same model (its digest, {recorded}, is checked)"
                     if recorded else "it records no digest (made before 2026-11-27), so only the model put back "
                     "at that path can be used")
            raise RunError(f"{run} was made from the affordance model in {meta.checkpoint}, which is not there any "
                           f"more (the run was moved or copied, or the model deleted): {where}")
        return meta
    given = str(Path(given).resolve())
    if not Path(given, "config.json").is_file():
        raise RunError(f"--checkpoint {given}: not an exported affordance model (no config.json)")
    if not recorded:
        raise RunError(f"{run} was made with checkpoint {meta.checkpoint}, not {given}, and records no digest "
                       "(made before 2026-11-27) that would tell whether they hold the same model: use the model "
                       f"at {meta.checkpoint}, or evaluate {given} as a new run (another --out or --run)")
    now = checkpoint_digest(given)
    if now != recorded:
        raise RunError(f"{run} was made from the affordance model in {meta.checkpoint} (digest {recorded}); "
                       f"{given} holds another model (digest {now}). Give the new model its own --out (or --run)")
    return replace(meta, checkpoint=given)


def relocate_robot(meta: RunMeta, run: str | Path, given: str | None = None) -> RunMeta:
    """``meta`` with ``robot`` naming where the lab robot's YAML is now. A lab run records its YAML's absolute
    path (and, in ``extra``, the YAML's executor/retarget settings that act on its prior). After the YAML moved
    (a new checkout of the repository, a renamed folder), ``given`` (``--robot NEW.yaml``) is used instead;
    its settings are still checked against the recorded ones when the robot opens
    (:func:`robot.config.check_geometry`). A recorded YAML that is gone, with no other given, is an error
    naming the flag. Simulator runs, and ``given`` ``None``/``"sim"``/``"toy"``, leave ``meta`` as it is."""
    from dataclasses import replace

    if meta.robot in ("sim", "toy"):
        return meta
    if given not in (None, "sim", "toy"):
        if not Path(given).is_file():
            raise RunError(f"--robot {given}: no such robot YAML")
        new = str(Path(given).resolve())
        return meta if new == meta.robot else replace(meta, robot=new)
    if not Path(meta.robot).is_file():
        raise RunError(f"{run} ran on the robot of {meta.robot}, which is not there any more (moved or renamed): "
                       "pass --robot with the YAML's new path (its executor and retarget settings are checked "
                       "against the run's)")
    return meta


def write_json(path: str | Path, data) -> Path:
    """Write JSON atomically and durably (temp file, fsync, rename, fsync of the directory), creating parent
    directories: an evaluation's result is written just before its partial log is deleted, so a power
    loss in between must not leave an empty file with the trials gone."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from deft_core.finetune.episode_log import json_default, write_json_durable

    write_json_durable(path, data, indent=2, default=json_default)
    return path


def discover_runs(root: str | Path) -> list[tuple[RunDir, RunMeta]]:
    """Every run under ``root`` (``root/<task>/<name>/run_meta.json``), sorted by path. Unreadable run
    descriptions raise :class:`RunError` naming the file."""
    root = Path(root)
    if not root.is_dir():
        raise RunError(f"runs directory {root} does not exist")
    return [(RunDir(p.parent), RunDir(p.parent).read_meta()) for p in sorted(root.glob(f"*/*/{META_FILE}"))]


def resolve_run(root: str | Path, task: str, run: str | None = None, name: str | None = None) -> RunDir:
    """The run directory a distill/eval command means: ``run`` if given; else ``root/task/name``; else
    the only main run (see :attr:`RunMeta.is_main`) of the task — several are an error listing them."""
    if run:
        rd = RunDir(run)
        meta = rd.read_meta()
        if meta.task != task:
            raise RunError(f"{rd.meta_path} is a run of task {meta.task!r}, not {task!r}")
        return rd
    if name:
        rd = RunDir(Path(root) / task / name)
        rd.read_meta()
        return rd
    task_dir = Path(root) / task
    runs = [RunDir(p.parent) for p in sorted(task_dir.glob(f"*/{META_FILE}"))]
    mains = [rd for rd in runs if rd.read_meta().is_main]
    if len(mains) == 1:
        return mains[0]
    if not mains:
        if runs:  # only baselines / ablations / test-split runs: name them, the user must pick one
            raise RunError(f"no DEFT run of {task!r} under {task_dir} (a prior other than real-world-only, reward sim or "
                           f"operator, train objects); the runs there: {', '.join(rd.path.name for rd in runs)} — choose "
                           "one with --prior NAME or --run DIR")
        raise RunError(f"no fine-tuning run of {task!r} under {task_dir}; run 'deft-robot finetune --task {task}' first "
                       "or pass --run DIR")
    raise RunError(f"several runs of {task!r}: {', '.join(str(m.path) for m in mains)}; choose one with --run DIR or --prior")


def open_run_episodes(root: str | Path, task: str, run: str | None = None, name: str | None = None):
    """:func:`resolve_run`, its meta and its episode log: ``(RunDir, RunMeta, records)``. A run without a
    log, or with a damaged one, is a :class:`RunError` naming it and what to do."""
    from deft_core.finetune.episode_log import EpisodeLogError, open_run

    rd = resolve_run(root, task, run, name)
    meta = rd.read_meta()
    try:
        _, records = open_run(rd.finetune_dir)
    except FileNotFoundError as exc:
        raise RunError(f"{exc}; run 'deft-robot finetune' for this run first") from None
    except EpisodeLogError as exc:
        raise RunError(str(exc)) from None  # names the line and what to do
    return rd, meta, records


__all__ = ["CEM_SIGMA", "TABLE4_SIGMA", "PRIOR_NAMES", "REWARDS", "MAIN_REWARDS", "RunMeta", "RunDir", "RunError", "run_name", "write_json",
           "discover_runs", "relocate_checkpoint", "relocate_robot", "resolve_run", "open_run_episodes"]
