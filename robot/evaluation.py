"""Policy evaluation (paper Table 2 / 3): K trials of a policy on a task, with train or test objects,
on fresh seeded resets that the fine-tuning run never saw.

A policy here is "prior ξ from the environment, plus a residual δ": ``affordance`` adds nothing (the
prior alone), a distilled policy (``deft``, ``mlp``, ``transformer``, ``direct``, ``mean``) adds
``policy.act(I₀, ξ, rng)``. Every policy evaluated with the same ``eval_seed`` meets the same scenes
(placements and object variants), so success rates are paired comparisons.

Trial seeds are drawn from ``(eval_seed, trial)`` and any seed the fine-tuning log used for a reset is
skipped, so evaluation scenes are held out from practice.

An evaluation in progress keeps a durable per-trial log next to its result (:class:`TrialLog`,
``<policy>_<objects>.partial.jsonl``): one JSON line per finished trial, appended with ``write`` +
``flush`` + ``os.fsync`` before the next trial starts. Re-running the same command resumes after the
last logged trial (a lab-robot trial is a physical reset the operator judged: it is never asked twice);
the final JSON is the same as an uninterrupted run's, and the log is deleted once it is written.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from deft_core.finetune.episode_log import append_durably, fsync_dir, json_default, read_jsonl, truncate_durably
from deft_core.grasp import GRASP_DIM

#: policies ``deft-robot eval`` knows: the prior alone, the real-world-only baseline, distilled kinds
EVAL_POLICIES = ("deft", "affordance", "real-world-only", "mlp", "transformer", "direct", "mean")
DISTILLED_KINDS = ("deft", "mlp", "transformer", "direct", "mean")
#: residual policy: (observation, prior ξ (22,), trial index) → δ (22,), units of ξ (robot base frame)
PolicyFn = Callable[[object, np.ndarray, int], np.ndarray]


@dataclass
class TrialResult:
    """One evaluation trial: reset ``seed``, ``success`` (the task criterion), ``reward`` (the task's
    shaped reward in [0, 1]), prior ``xi`` and executed ξ + δ (22 each, robot base frame), ``variants``
    (object variant per role), ``error`` (controller error text, if any), ``wall_s``; ``images``
    (``initial``/``final`` names relative to the run's ``eval/`` folder) and ``camera`` (I₀'s ``K`` and
    ``T_base_camera``) when the evaluation kept them (since 2026-11-27; ``deft-robot show --eval``)."""

    trial: int
    seed: int
    success: bool
    reward: float
    xi: list[float]
    executed: list[float]
    variants: dict = field(default_factory=dict)
    error: str | None = None
    wall_s: float = 0.0
    images: dict = field(default_factory=dict)
    camera: dict | None = None


def eval_seeds(eval_seed: int, trials: int, exclude: Iterable[int] = ()) -> list[int]:
    """``trials`` distinct reset seeds from ``eval_seed``, none of them in ``exclude`` (the fine-tuning
    log's reset seeds). Deterministic: trial i's seed depends on (eval_seed, i) and the exclusions only."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    banned, seeds = set(int(s) for s in exclude), []
    i = 0
    while len(seeds) < trials:
        s = int(np.random.default_rng([int(eval_seed), i, 5]).integers(0, 2**31 - 1))
        i += 1
        if s not in banned and s not in seeds:
            seeds.append(s)
    return seeds


def zero_residual(obs, xi: np.ndarray, trial: int) -> np.ndarray:
    """The ``affordance`` policy: execute the prior ξ unchanged."""
    return np.zeros(GRASP_DIM)


def distilled_policy_fn(ckpt_dir: str | Path, eval_seed: int, sample_latent: bool = True) -> PolicyFn:
    """A residual policy from a distilled checkpoint (``deft_core.finetune.policy_checkpoint``).
    Stochastic kinds draw z ~ N(0, I) from a generator seeded by (eval_seed, trial) when
    ``sample_latent`` (the paper's test-time rule), else use z = 0."""
    from deft_core.finetune.policy_checkpoint import load_policy

    policy = load_policy(ckpt_dir)

    def act(obs, xi: np.ndarray, trial: int) -> np.ndarray:
        rng = np.random.default_rng([int(eval_seed), int(trial), 17]) if sample_latent else None
        return np.asarray(policy.act(obs.image, xi, rng=rng), dtype=np.float64)

    act.policy = policy  # type: ignore[attr-defined]
    return act


def trial_image_saver(eval_dir: str | Path, policy: str, objects: str) -> Callable[[int, str, np.ndarray], str]:
    """``save(trial, which, rgb) -> name``: writes a trial's ``which`` (initial/final) image durably as
    ``eval_dir/images/<policy>_<objects>/t0003_initial.png`` and returns that name relative to ``eval_dir``."""
    from deft_core.finetune.episode_log import write_png

    def save(trial: int, which: str, rgb: np.ndarray) -> str:
        name = f"images/{policy}_{objects}/t{int(trial):04d}_{which}.png"
        write_png(Path(eval_dir) / name, rgb, f"trial {trial} {which} image")
        return name

    return save


def evaluate(env, policy_fn: PolicyFn, seeds: Sequence[int],
             progress: Callable[[TrialResult], None] | None = None,
             done: Mapping[int, TrialResult] | None = None,
             record: Callable[[TrialResult], None] | None = None,
             save_image: Callable[[int, str, np.ndarray], str] | None = None) -> list[TrialResult]:
    """Run one trial per seed: ``env.reset(trial, seed)``, ξ = ``env.prior(obs)``, execute ξ + δ.
    ``env`` follows :class:`deft_core.finetune.loop.FinetuneEnv`; ``progress`` sees each trial.

    ``done`` (trial number → result, e.g. :attr:`TrialLog.done`): trials already finished by an earlier,
    interrupted run of the same evaluation; they are not run again and appear in the returned list in
    their place. ``record`` sees each newly finished trial before ``progress`` (e.g. :meth:`TrialLog.append`,
    the commit point). Every trial depends only on its number and seed, so resuming gives the same results.
    ``save_image`` (e.g. :func:`trial_image_saver`) keeps each new trial's initial and final image, written
    before the trial is recorded; the trial also keeps I₀'s camera when the environment reports one."""
    from deft_core.finetune.loop import camera_of
    from deft_core.grasp import GraspParams

    done = dict(done or {})
    results = []
    for trial, seed in enumerate(seeds, start=1):
        if trial in done:
            if int(done[trial].seed) != int(seed):
                raise ValueError(f"trial {trial}: the finished trial was reset with seed {done[trial].seed}, "
                                 f"this evaluation's trial {trial} uses seed {seed}")
            results.append(done[trial])
            continue
        t0 = time.perf_counter()
        obs = env.reset(trial, int(seed))
        xi = env.prior(obs)
        if not isinstance(xi, GraspParams):
            raise TypeError(f"env.prior must return GraspParams, got {type(xi).__name__}")
        delta = np.asarray(policy_fn(obs, xi.to_vector(), trial), dtype=np.float64)
        if delta.shape != (GRASP_DIM,) or not np.all(np.isfinite(delta)):
            raise ValueError(f"trial {trial}: the policy returned a residual of shape {delta.shape} "
                             f"(need a finite ({GRASP_DIM},) vector)")
        grasp = xi + delta
        out = env.execute(grasp)
        info = out.info or {}
        reward = out.task_reward if out.task_reward is not None else float(bool(out.success))
        images = {}
        if save_image is not None:
            images["initial"] = save_image(trial, "initial", obs.image)
            if out.final_image is not None:
                images["final"] = save_image(trial, "final", out.final_image)
        res = TrialResult(trial=trial, seed=int(seed), success=bool(out.success), reward=float(reward),
                          xi=xi.to_vector().tolist(), executed=grasp.to_vector().tolist(),
                          variants=dict(info.get("variants") or obs.extras.get("variants") or {}),
                          error=info.get("error"), wall_s=time.perf_counter() - t0, images=images,
                          camera=camera_of(obs))
        results.append(res)
        if record is not None:
            record(res)
        if progress is not None:
            progress(res)
    return results


# ------------------------------------------------------------------ durable log of an evaluation in progress

PARTIAL_FORMAT = "deft-eval-partial"
PARTIAL_VERSION = 1


class EvalLogError(ValueError):
    """The partial evaluation log on disk is damaged or belongs to a different evaluation."""


def partial_path(final_path: str | Path) -> Path:
    """``<run>/eval/<policy>_<objects>.json`` → ``<run>/eval/<policy>_<objects>.partial.jsonl``."""
    final_path = Path(final_path)
    return final_path.with_name(final_path.stem + ".partial.jsonl")


def policy_digest(ckpt_dir: str | Path | None) -> str | None:
    """SHA-256 (16 hex digits) of a distilled checkpoint's ``config.json`` and ``model.safetensors``: a
    policy re-distilled into the same directory is a different policy. None for no checkpoint."""
    from robot.runs import checkpoint_digest  # the same two files as an affordance export's

    return None if ckpt_dir is None else checkpoint_digest(ckpt_dir)


class TrialLog:
    """The durable log of one evaluation in progress: ``path`` (see :func:`partial_path`), one JSON line per
    finished trial — ``format``, ``version``, the evaluation's ``identity`` (task, policy, objects,
    eval_seed, latent, policy_checkpoint, policy_digest, trials: whatever the caller passes) and the
    trial's :class:`TrialResult` under ``result``.

    Opening an existing log resumes it: a half-written last line (the process was killed while writing it)
    is dropped and cut off the file, with :attr:`dropped` saying so; any other malformed line, a line of
    another evaluation (its identity differs: the error names each differing field), or a trial whose seed
    is not this evaluation's seed for that trial raises :class:`EvalLogError`; a ``policy_checkpoint`` path
    that differs while ``policy_digest`` is the same is the same policy, moved with its run, and resumes.
    :attr:`done` maps trial number → result of the trials already finished (trials 1..k in order)."""

    def __init__(self, path: str | Path, identity: dict, seeds: Sequence[int]) -> None:
        self.path = Path(path)
        self.identity = json.loads(json.dumps(identity, default=json_default))
        self.seeds = [int(s) for s in seeds]
        self.dropped: str | None = None
        self.done: dict[int, TrialResult] = {}
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        def parse(doc):
            if not (isinstance(doc, dict) and doc.get("format") == PARTIAL_FORMAT and isinstance(doc.get("result"), dict)):
                raise ValueError(f"not a {PARTIAL_FORMAT} line")
            return doc

        docs, good_bytes, torn = read_jsonl(self.path, parse, EvalLogError, "trial record")
        if torn:
            self.dropped = (f"{self.path}: dropped a half-written last line ({torn} bytes) left by "
                            "an interrupted evaluation; that trial will be run again")
            truncate_durably(self.path, good_bytes)
        for lineno, doc in enumerate(docs, start=1):
            self._check(lineno, doc)

    def _check(self, lineno: int, doc: dict) -> None:
        where = f"{self.path}:{lineno}"
        if doc.get("version") != PARTIAL_VERSION:
            raise EvalLogError(f"{where}: partial evaluation log version {doc.get('version')!r} is not supported "
                               f"(expected {PARTIAL_VERSION})")
        stored = doc.get("identity") or {}
        diff = [k for k in sorted(set(stored) | set(self.identity)) if stored.get(k) != self.identity.get(k)]
        if stored.get("policy_digest") and stored.get("policy_digest") == self.identity.get("policy_digest"):
            diff = [k for k in diff if k != "policy_checkpoint"]  # the same policy, moved with its run
        if diff:
            details = "; ".join(f"{k}: log has {stored.get(k)!r}, this command has {self.identity.get(k)!r}" for k in diff)
            raise EvalLogError(f"{self.path} holds finished trials of a different evaluation ({details}); re-run with "
                               f"the same settings to resume it, or move {self.path.name} away to start this one over")
        try:
            res = TrialResult(**{k: v for k, v in doc["result"].items() if k in TrialResult.__dataclass_fields__})
        except TypeError as exc:
            raise EvalLogError(f"{where}: malformed trial record ({exc})") from None
        expected = len(self.done) + 1
        if res.trial != expected:
            raise EvalLogError(f"{where}: expected trial {expected}, found trial {res.trial}")
        if res.trial > len(self.seeds):
            raise EvalLogError(f"{where}: trial {res.trial} is beyond this evaluation's {len(self.seeds)} trials")
        if int(res.seed) != self.seeds[res.trial - 1]:
            raise EvalLogError(f"{where}: trial {res.trial} was reset with seed {res.seed}, but this command's trial "
                               f"{res.trial} uses seed {self.seeds[res.trial - 1]} (the fine-tuning log's seeds, "
                               "which evaluation skips, changed since); move the partial log away to start over")
        self.done[res.trial] = res

    def append(self, result: TrialResult) -> None:
        """Append one finished trial durably (one ``write``, ``flush``, ``os.fsync`` of the file and of its
        directory) before returning."""
        expected = len(self.done) + 1
        if result.trial != expected:
            raise EvalLogError(f"{self.path}: cannot append trial {result.trial}; next is trial {expected}")
        line = json.dumps({"format": PARTIAL_FORMAT, "version": PARTIAL_VERSION, "identity": self.identity,
                           "result": asdict(result)}, default=json_default, allow_nan=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append_durably(self.path, line)
        self.done[result.trial] = result

    def remove(self) -> None:
        """Delete the log (the final result is written)."""
        if self.path.exists():
            self.path.unlink()
            fsync_dir(self.path.parent)


def summarise(trials: Sequence[TrialResult]) -> dict:
    """``trials`` (count), ``successes``, ``success_rate`` in [0, 1], ``mean_reward``, ``std_reward``."""
    if not trials:
        raise ValueError("no trials to summarise")
    rewards = np.array([t.reward for t in trials], dtype=np.float64)
    successes = int(sum(t.success for t in trials))
    return {"trials": len(trials), "successes": successes, "success_rate": successes / len(trials),
            "mean_reward": float(rewards.mean()), "std_reward": float(rewards.std())}


def eval_record(task: str, policy: str, objects: str, trials: Sequence[TrialResult], **context) -> dict:
    """The JSON document ``deft-robot eval`` writes (``format: deft-eval``, version 1): task, policy,
    objects, the summary of :func:`summarise`, ``per_trial`` and whatever ``context`` says (run dir,
    prior, checkpoint, eval seed, what exactly was evaluated)."""
    return {"format": "deft-eval", "version": 1, "task": task, "policy": policy, "objects": objects,
            **summarise(trials), **context, "per_trial": [asdict(t) for t in trials]}


def partial_progress(final_path: str | Path) -> tuple[int, int | None] | None:
    """(finished trials, trials asked for) of an evaluation stopped part-way — its ``.partial.jsonl`` next to
    the missing ``final_path`` — read leniently for the report (a torn last line is not counted); None
    when there is none."""
    partial = partial_trials(final_path)
    return None if partial is None else (len(partial[0]), partial[1])


def partial_trials(final_path: str | Path) -> tuple[list[dict], int | None] | None:
    """The finished trials (``TrialResult`` fields as a dict, in log order) and the trials asked for of an
    evaluation stopped part-way or still running, read leniently (a torn last line is left out); None when
    ``final_path`` exists or there is no partial log."""
    path = partial_path(final_path)
    if not path.is_file() or Path(final_path).is_file():
        return None
    trials, total = [], None
    for line in path.read_text(errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("format") == PARTIAL_FORMAT:
            trials.append(doc.get("result") or {})
            total = (doc.get("identity") or {}).get("trials", total)
    return trials, total


def evaluated_an_older_policy(doc: dict, path: str | Path, by_file_time: bool = False) -> bool:
    """Whether the evaluation ``doc`` (read from ``path``, ``<run>/eval/<file>.json``) ran a distilled
    policy that has since been distilled again: its recorded ``policy_digest`` differs from that of the
    policy folder of the same name in the evaluation's own run (not the recorded path, which a copied run
    still points elsewhere). An evaluation written before the digest was recorded is not judged, unless
    ``by_file_time`` (``distill``, right after writing the policy): then a policy newer than the file is."""
    ckpt = doc.get("policy_checkpoint")
    if not ckpt:
        return False  # the prior alone: no residual policy
    local = Path(path).parent.parent / "policies" / Path(ckpt).name
    weights = local / "model.safetensors"
    if not ((local / "config.json").is_file() and weights.is_file()):
        return False  # the policy is gone, or was copied without its weights: nothing to compare
    if doc.get("policy_digest"):
        return doc["policy_digest"] != policy_digest(local)
    return by_file_time and weights.stat().st_mtime > Path(path).stat().st_mtime


def older_policy_evaluations(run_path: str | Path, ckpt_dir: str | Path) -> list[Path]:
    """The finished evaluations under ``run_path/eval/`` of the policy in ``ckpt_dir`` (``run_path/policies/
    <kind>``) that ran an earlier distillation of it (see :func:`evaluated_an_older_policy`)."""
    kind = Path(ckpt_dir).name
    out = []
    for path in sorted((Path(run_path) / "eval").glob("*.json")):
        try:
            doc = load_eval(path)
        except ValueError:
            continue  # damaged files are the report's to name
        if doc.get("policy_checkpoint") and Path(doc["policy_checkpoint"]).name == kind \
                and evaluated_an_older_policy(doc, path, by_file_time=True):
            out.append(path)
    return out


def load_eval(path: str | Path) -> dict:
    """Read and check an evaluation JSON written by :func:`eval_record` (errors name the file)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read evaluation {path}: {exc}") from None
    if data.get("format") != "deft-eval":
        raise ValueError(f"{path} is not a deft-robot evaluation (format {data.get('format')!r})")
    for key in ("task", "policy", "objects", "trials", "successes", "success_rate", "mean_reward"):
        if key not in data:
            raise ValueError(f"{path}: missing field {key!r}")
    return data


def open_env(meta, objects: str | None = None, runner=None, real: dict | None = None, trajectory=None,
             run: str | None = None):
    """The environment of a run (:class:`robot.runs.RunMeta`): ``sim`` → :class:`robot.sim_env.SimFinetuneEnv`
    with the run's prior (``objects`` overrides the run's split), ``toy`` → the simulator-free
    :class:`deft_core.finetune.toy_env.ToyEnv` (tests and demos; its own prior, no object split), a robot
    YAML path → :class:`robot.real_env.RealFinetuneEnv` built with the keyword arguments in ``real``
    (``operator`` callbacks, ``locator``, ``object_prompt``, ...; the operator places the objects, so
    ``objects`` does not apply). Without ``real`` a robot run is refused: only a CLI can talk to the operator.
    ``trajectory``: the post-grasp τ to execute (:meth:`robot.runs.RunDir.load_trajectory`; None = the
    task's scripted τ); the toy environment has no τ."""
    from robot.runs import check_checkpoint

    check_checkpoint(meta, run or f"{meta.task}/{meta.prior}")  # a RunError (ValueError) if its model changed
    split = objects or meta.split
    if meta.robot == "toy":
        from deft_core.finetune.toy_env import ToyEnv

        w, h = meta.image_size
        return ToyEnv(image_size=(h, w))
    if meta.robot != "sim":
        if real is None:
            raise NotImplementedError(
                f"robot {meta.robot!r}: the lab robot needs operator callbacks (scene reset, object box, outcome); "
                "'deft-robot finetune' and 'deft-robot eval' supply them from the terminal; a caller of "
                "robot.evaluation.evaluate must pass real= (see robot/cli_eval.py), or evaluate in sim")
        from robot.config import check_geometry, load_robot_config
        from robot.real_env import RealFinetuneEnv

        config = load_robot_config(meta.robot)
        # a ConfigError (ValueError) naming the sections; ``run``: the run directory, for the message
        check_geometry(config, meta.extra, meta.prior, run or f"{meta.task}/{meta.prior}")
        return RealFinetuneEnv(config, meta.task, prior=meta.prior, checkpoint=meta.checkpoint,
                               prior_seed=meta.seed, trajectory=trajectory, **real)
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    _import_torchvision_before_rendering()
    from robot.sim_env import SimFinetuneEnv

    prior = meta.prior if meta.prior in ("affordance", "oracle", "real-world-only") else "oracle"
    return SimFinetuneEnv(meta.task, split=split, prior=prior, checkpoint=meta.checkpoint,
                          image_size=tuple(meta.image_size), trajectory=trajectory, prior_seed=meta.seed, runner=runner)


def _import_torchvision_before_rendering() -> None:
    """torchvision.models segfaults when first imported after MuJoCo's EGL rendering ran in the
    process (seen in tests/robot_sim): import it first when it is installed."""
    try:
        import torchvision.models  # noqa: F401
    except ImportError:
        pass


__all__ = ["EVAL_POLICIES", "DISTILLED_KINDS", "TrialResult", "eval_seeds", "zero_residual", "distilled_policy_fn",
           "evaluate", "TrialLog", "EvalLogError", "partial_path", "policy_digest", "summarise", "eval_record",
           "load_eval", "open_env"]
