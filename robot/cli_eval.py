"""Success rate of a policy on a task, with train or test objects, over fresh held-out resets.

Examples::

    deft-robot eval --task pick_cup --policy deft --objects train --trials 10
    deft-robot eval --task pick_cup --policy affordance --objects test --checkpoint runs/affordance/model
    deft-robot eval --task pick_cup --policy real-world-only --objects both
    deft-robot eval --task pick_cup --policy mlp --run runs/pick_cup/oracle

What each policy executes on every trial (ξ = the prior of that trial's fresh reset):

- ``affordance``: ξ alone — the prior with no residual (the run's prior: ``--checkpoint DIR``,
  ``--prior oracle``, or the prior of the task's DEFT run);
- ``deft``, ``mlp``, ``transformer``, ``direct``, ``mean``: ξ + δ̂ with δ̂ from the policy distilled from the
  run (``<run>/policies/<kind>``; the cVAE samples z ~ N(0, I) seeded per trial, ``--zero-latent`` for z = 0);
- ``real-world-only``: the §5 baseline after the same CEM budget — ξ = the real-world-only prior of the
  reset (object box centre, a random downward wrist rotation, half-closed hand) + δ̂ from the cVAE
  distilled from the ``real-world-only`` run (``deft-robot finetune --prior real-world-only`` then
  ``deft-robot distill --prior real-world-only``).

Trial resets are drawn from ``--eval-seed`` and skip every reset seed of the fine-tuning log, so no
evaluated scene was practised on; every policy evaluated with the same ``--eval-seed`` meets the same
scenes. Results: ``<run>/eval/<policy>_<objects>.json`` (summary + per-trial seed, success, reward, ξ).

Each finished trial is first appended durably to ``<run>/eval/<policy>_<objects>.partial.jsonl``: if the
evaluation is interrupted (Ctrl-C, a crash, the operator's stdin closing on a lab robot), re-running the
same command resumes after the last finished trial — no trial is run (or judged) twice — and the result is
the same as an uninterrupted run's; the partial log is deleted once the result is written (with ``--objects
both``, once both results are written, so a finished split is not run again either). A partial log of
a different evaluation (other --eval-seed, --zero-latent, --trials, or a re-distilled policy) is refused.

A run records the absolute path of the affordance model it was made from (and a lab run its robot YAML's).
After moving or copying runs together with their model (another machine, a renamed data folder), pass
``--checkpoint`` with the model's new folder: it is used when its digest equals the one the run recorded, and
refused otherwise; likewise ``--robot`` with a lab run's YAML at its new path (its executor and retarget
settings are checked against the run's).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HELP = "success rate of a policy on train/test objects over held-out resets (JSON under the run dir)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from deft_core.cli_util import seed_arg

    from robot.evaluation import EVAL_POLICIES

    parser.add_argument("--task", required=True, help="task name")
    parser.add_argument("--policy", required=True, choices=EVAL_POLICIES, help="what to evaluate (see above)")
    parser.add_argument("--objects", default="train", choices=("train", "test", "both"), help="object split")
    parser.add_argument("--trials", type=int, default=10, help="trials per split (default 10)")
    parser.add_argument("--checkpoint", help="affordance model directory: policy 'affordance' without a run; for an "
                             "existing run, where its model is now if the run was moved or copied (the same model: "
                             "its digest is checked)")
    parser.add_argument("--prior", help="the run's name under OUT/<task>/ (e.g. oracle), or the prior for 'affordance'")
    parser.add_argument("--run", help="run directory (default: found under --out from --policy / --prior)")
    parser.add_argument("--out", default="runs", help="runs root (default runs/)")
    parser.add_argument("--robot", default="sim",
                        help="when 'affordance' creates a new run: 'sim', 'toy' or a robot YAML (a run fine-tuned on a "
                             "lab robot is evaluated on that robot, the operator judging each trial; give its YAML's "
                             "new path here if the YAML has moved since)")
    parser.add_argument("--size", default="224x224", help="image size WxH when 'affordance' creates a new run")
    parser.add_argument("--trajectory", help="post-grasp τ .npz when 'affordance' creates a new run (a fine-tuned run "
                                             "is always evaluated with the τ it practised with)")
    parser.add_argument("--eval-seed", type=seed_arg, default=1000, help="seed of the evaluation resets (default 1000)")
    parser.add_argument("--zero-latent", action="store_true", help="cVAE/direct: z = 0 instead of z ~ N(0, I)")
    parser.add_argument("--verbose", action="store_true", help="show the simulator's safety-clamp warnings")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    from robot.cli_operator import add_robot_arguments

    add_robot_arguments(parser)


def _resolve(args, tau=None):
    """(run dir, run meta, policy checkpoint dir or None, description of what is evaluated, whether the run
    is new): a run this command creates (``--policy affordance --checkpoint``, with ``tau`` = its
    ``--trajectory``) has its meta and τ written only once the environment opens, so a bad checkpoint or an
    unreachable robot leaves nothing behind that would refuse the corrected command."""
    from deft_core.cli_util import CommandError
    from robot.cli_finetune import parse_size
    from robot.runs import (CHECKPOINT_DIGEST, RunDir, RunError, RunMeta, checkpoint_digest, relocate_checkpoint,
                            relocate_robot, resolve_run)

    def existing(rd, checkpoint=None, meta=None):
        """An existing run's meta (``meta``: already read), with its model and robot YAML where they are now."""
        meta = meta or rd.read_meta()
        return relocate_robot(relocate_checkpoint(meta, rd.path, checkpoint), rd.path, args.robot)

    try:
        if args.policy == "affordance":
            named = RunDir(Path(args.out) / args.task / args.prior) if args.prior and not args.run else None
            if args.checkpoint and named is not None and named.has_meta():  # --prior names the run, moved or not
                meta = existing(named, args.checkpoint)
                return named, meta, None, f"the {meta.prior} prior ξ alone, no residual", False
            if args.checkpoint or (named is not None and not named.path.exists()):
                prior = "affordance" if args.checkpoint else args.prior
                if prior not in ("affordance", "oracle", "real-world-only", "toy"):
                    raise CommandError(f"--prior {prior!r}: choose oracle or real-world-only, or give --checkpoint DIR")
                if prior == "affordance" and not args.checkpoint:
                    raise CommandError("--prior affordance needs --checkpoint DIR")
                robot, extra = _robot_arg(args.robot, prior)
                if prior == "oracle" and robot not in ("sim", "toy"):
                    raise CommandError("--prior oracle reads the simulator's state; on a robot use --checkpoint DIR")
                ckpt = str(Path(args.checkpoint).resolve()) if args.checkpoint else None
                if ckpt and not Path(ckpt, "config.json").is_file():
                    raise CommandError(f"--checkpoint {args.checkpoint}: not an exported affordance model (no config.json)")
                rd = RunDir(args.run or Path(args.out) / args.task / prior)
                if rd.has_meta():  # the same model, possibly moved since (its digest is checked)
                    meta = existing(rd, ckpt)
                    return rd, meta, None, f"the {meta.prior} prior ξ alone, no residual", False
                if ckpt is not None:  # which export: one exported again into the same folder is another prior
                    extra = {**extra, CHECKPOINT_DIGEST: checkpoint_digest(ckpt)}
                meta = RunMeta(task=args.task, prior=prior, reward="sim" if robot in ("sim", "toy") else "operator", robot=robot,
                               image_size=parse_size(args.size), checkpoint=ckpt,
                               trajectory=tau.digest() if tau is not None else None, extra=extra)
                return rd, meta, None, f"the {meta.prior} prior ξ alone, no residual", True
            rd = resolve_run(args.out, args.task, args.run, args.prior)
            meta = existing(rd)
            return rd, meta, None, f"the {meta.prior} prior ξ alone, no residual", False
        if args.policy == "real-world-only":
            rd = resolve_run(args.out, args.task, args.run, args.prior or "real-world-only")
            stored = rd.read_meta()
            if stored.prior not in ("real-world-only", "toy"):  # before the relocation, which would ask for a model
                raise CommandError(f"{rd.path} is a {stored.prior!r} run; policy 'real-world-only' needs the "
                                   "real-world-only run (deft-robot finetune --prior real-world-only)")
            meta = existing(rd, args.checkpoint, stored)
            kind, what = "deft", ("real-world-only prior (box centre, random wrist rotation, half-closed hand) + the cVAE "
                                  f"distilled from {meta.episodes} CEM episodes from that prior")
        else:
            rd = resolve_run(args.out, args.task, args.run, args.prior)
            meta = existing(rd, args.checkpoint)
            kind, what = args.policy, f"the {meta.prior} prior ξ + δ̂ of the '{args.policy}' policy distilled from {rd.path.name}"
    except RunError as exc:
        raise CommandError(str(exc)) from None
    ckpt_dir = rd.policy_dir(kind)
    if not (ckpt_dir / "config.json").is_file():
        raise CommandError(f"no distilled '{kind}' policy in {ckpt_dir}; run: deft-robot distill --task {args.task} "
                           f"--kind {kind} --run {rd.path}")
    return rd, meta, ckpt_dir, what, False


def _check_same_trajectory(rd, meta, tau) -> None:
    """A ``--trajectory`` given for an existing run must be the one it practised with (evaluation always
    uses the run's own τ)."""
    from deft_core.cli_util import CommandError

    if tau is not None and tau.digest() != meta.trajectory:
        have = "the task's scripted τ" if meta.trajectory is None else f"τ digest {meta.trajectory}"
        raise CommandError(f"{rd.path} was fine-tuned with {have}, not this --trajectory (digest {tau.digest()}); "
                           "a run is evaluated with its own τ: drop --trajectory, or fine-tune a new run with it")


def run(args: argparse.Namespace) -> int:
    from deft_core.cli_util import CommandError
    from robot.cli_finetune import _check_task, limit_threads
    from robot.cli_operator import StdinClosed
    from robot.real_env import NoObjectBox
    from robot.evaluation import (EvalLogError, TrialLog, distilled_policy_fn, eval_record, eval_seeds, evaluate,
                                  open_env, partial_path, policy_digest, summarise, trial_image_saver,
                                  zero_residual)
    from robot.runs import write_json

    _check_task(args.task)
    if args.trials < 1:
        raise CommandError(f"--trials must be >= 1, got {args.trials}")
    limit_threads(args.threads)
    from robot.cli_finetune import load_trajectory_arg
    from robot.runs import RunError

    arg_tau = load_trajectory_arg(args.trajectory, args.task) if args.trajectory else None
    rd, meta, ckpt_dir, what, new = _resolve(args, arg_tau)
    _check_same_trajectory(rd, meta, arg_tau)  # (a new run is made with it)
    try:
        tau = arg_tau if new else rd.load_trajectory(meta)
    except RunError as exc:
        raise CommandError(str(exc)) from None
    if meta.robot in ("sim", "toy") and not args.verbose:  # joint-limit clamps are frequent under CEM noise
        import logging

        logging.getLogger("robot.safety").setLevel(logging.ERROR)
    exclude = _finetune_seeds(rd)
    policy_fn, digest = zero_residual, policy_digest(ckpt_dir)
    if ckpt_dir is not None:
        import torch

        torch.set_num_threads(args.threads)
        from deft_core.finetune.policy_checkpoint import CheckpointError

        try:
            policy_fn = distilled_policy_fn(ckpt_dir, args.eval_seed, sample_latent=not args.zero_latent)
        except CheckpointError as exc:
            raise CommandError(f"{exc}; distil it again: deft-robot distill --task {args.task} --run {rd.path} "
                               f"--kind {ckpt_dir.name}") from None
    seeds = eval_seeds(args.eval_seed, args.trials, exclude)
    splits = ("train", "test") if args.objects == "both" else (args.objects,)
    runner, real = None, None
    if meta.robot not in ("sim", "toy"):  # the lab robot: the operator resets the scene and judges each trial
        if args.objects == "both":
            raise CommandError("on a lab robot the operator places the objects: evaluate one split at a time "
                               "(--objects train, then --objects test)")
        from robot.cli_operator import make_locator, make_operator

        real = {"operator": make_operator(rd.path, with_judge=True), "locator": make_locator(args),
                "object_prompt": args.object_prompt}
    else:
        from robot.cli_operator import warn_unused_robot_arguments

        warn_unused_robot_arguments(args)
    # finished trials of an interrupted run of this same evaluation (checked before the robot starts)
    logs = {}
    for objects in splits:
        identity = {"task": args.task, "policy": args.policy, "objects": objects, "eval_seed": args.eval_seed,
                    "latent": "zero" if args.zero_latent else "sampled",
                    "policy_checkpoint": None if ckpt_dir is None else str(Path(ckpt_dir).resolve()),
                    "policy_digest": digest, "trials": len(seeds)}
        try:
            logs[objects] = TrialLog(partial_path(rd.eval_path(args.policy, objects)), identity, seeds)
        except EvalLogError as exc:
            raise CommandError(str(exc)) from None
        if logs[objects].dropped:
            print(f"warning: {logs[objects].dropped}", file=sys.stderr, flush=True)
    for objects in splits:
        try:
            env = open_env(meta, objects, runner=runner, real=real, trajectory=tau, run=str(rd.path))
        except (NotImplementedError, ValueError, FileNotFoundError, ConnectionError, OSError) as exc:
            raise CommandError(str(exc)) from None  # e.g. a bad checkpoint, an unreachable robot
        if new:  # the environment opened: now the new run exists
            if tau is not None:
                rd.store_trajectory(tau)
            rd.write_or_check_meta(meta)
            new = False
        runner = getattr(env, "runner", None)
        if getattr(env, "hand_text_note", None) and objects == splits[0]:
            print(f"warning: {env.hand_text_note}", flush=True)
        final, log = rd.eval_path(args.policy, objects), logs[objects]
        try:
            resumed = sum(r.wall_s for r in log.done.values())
            if log.done:
                print(f"{args.task} {args.policy} [{objects}]: resuming after trial {len(log.done)}/{len(seeds)} "
                      f"(finished trials read from {log.path}, not run again)", flush=True)
            t0 = time.perf_counter()
            def progress(r, o=objects):
                print(f"{args.task} {args.policy} [{o}] trial {r.trial}/{len(seeds)}: "
                      f"{'success' if r.success else 'failure'} reward {r.reward:.3f}"
                      + (f" ({r.error})" if r.error else ""), flush=True)

            try:
                trials = evaluate(env, policy_fn, seeds, progress=progress, done=log.done, record=log.append,
                                  save_image=trial_image_saver(final.parent, args.policy, objects))
            except StdinClosed as exc:
                raise CommandError(f"standard input closed while waiting for {exc.what}; the robot was left safe; "
                                   f"{_kept(log, len(seeds))}") from None
            except NoObjectBox as exc:
                raise CommandError(f"{exc}; the robot was left safe; {_kept(log, len(seeds))}") from None
            except KeyboardInterrupt:
                print(f"\n{args.task} {args.policy} [{objects}]: {_kept(log, len(seeds))}", file=sys.stderr, flush=True)
                raise
            doc = eval_record(args.task, args.policy, objects, trials, run=str(rd.path), run_name=rd.path.name,
                              prior=meta.prior, prior_checkpoint=meta.checkpoint, reward_source=meta.reward,
                              policy_checkpoint=None if ckpt_dir is None else str(ckpt_dir), policy_digest=digest,
                              eval_seed=args.eval_seed,
                              latent="zero" if args.zero_latent else "sampled", evaluated=what,
                              excluded_finetune_seeds=len(exclude), wall_s=resumed + time.perf_counter() - t0)
            path = write_json(final, doc)
            sheet_note = _write_trial_sheet(doc, path)
            if len(splits) == 1:
                log.remove()
            # with both splits, each split's log stays until both results are written: a re-run after an
            # interruption in the test split re-reads the finished train split instead of running it again
            s = summarise(trials)
            print(f"{args.task} {args.policy} [{objects} objects]: success {s['successes']}/{s['trials']} "
                  f"({100 * s['success_rate']:.0f} %), mean reward {s['mean_reward']:.3f} → {path}{sheet_note}")
        finally:
            if real is not None:
                env.close()  # hand open, arm stopped, devices disconnected
    for log in logs.values():
        log.remove()
    if runner is not None:
        runner.close()
    return 0


def _write_trial_sheet(doc: dict, path: Path) -> str:
    """Draw the trials' contact sheet next to the evaluation (``<policy>_<objects>.png``; ``deft-robot show
    --eval`` draws it again with other options); returns what to print after the result's path."""
    from deft_core.finetune.sheet import save_sheet
    from robot.cli_show import trial_sheet

    if not any(t.get("images") for t in doc["per_trial"]):  # every trial resumed from a log made before 2026-11-27
        return " (no trial images kept: no contact sheet)"
    png = path.with_suffix(".png")
    unreadable = save_sheet(trial_sheet(doc, path), png)
    return f", {png}" + (f" ({len(unreadable)} image(s) drawn grey: {unreadable[0]} …)" if unreadable else "")


def _kept(log, trials: int) -> str:
    """What an interrupted evaluation keeps, and how it goes on."""
    k = len(log.done)
    if k == 0:
        return "no trial finished; re-running the same command starts the evaluation over"
    return (f"the {k} finished trial(s) of {trials} are kept in {log.path}; re-run the same command to resume "
            f"from trial {k + 1}" if k < trials else
            f"all {trials} trials finished and are kept in {log.path}; re-run the same command to write the result")


def _robot_arg(robot: str, prior: str) -> tuple[str, dict]:
    """('sim' | 'toy' | the absolute path of a robot YAML that validates, the ``RunMeta.extra`` a new run with
    ``prior`` records: the YAML's executor/retarget settings that act on that prior, ``{}`` in sim)."""
    from deft_core.cli_util import CommandError

    if robot in ("sim", "toy"):
        return robot, {}
    if not Path(robot).is_file():
        raise CommandError(f"--robot {robot!r}: 'sim', 'toy' or an existing robot YAML file")
    from robot.base import ConfigError
    from robot.config import geometry_record, load_robot_config

    try:
        config = load_robot_config(robot)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    return str(Path(robot).resolve()), geometry_record(config, prior)


def _finetune_seeds(rd) -> set[int]:
    """Reset seeds used by the run's fine-tuning log (empty when there is no log)."""
    from deft_core.cli_util import CommandError
    from deft_core.finetune.episode_log import EpisodeLogError, open_run

    if not (rd.finetune_dir / "run.json").is_file():
        return set()
    try:
        _, records = open_run(rd.finetune_dir)
    except EpisodeLogError as exc:
        raise CommandError(str(exc)) from None  # names the line and what to do
    return {int(r.env_seed) for r in records}
