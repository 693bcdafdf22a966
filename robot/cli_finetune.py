"""DEFT fine-tuning (paper §3.2, Algorithm 1, Table 4 defaults) of a task's grasps, from a prior.

Examples::

    deft-robot finetune --task pick_cup --checkpoint runs/affordance/model        # sim, sim reward
    deft-robot finetune --task pick_cup --prior real-world-only                    # the §5 baseline
    deft-robot finetune --task pick_cup --prior oracle --reward operator           # you score each episode
    deft-robot finetune --task pick_cup --prior oracle --reward r3m --reward-weights ~/.r3m/model.pt \\
        --demo-root data/synth                                                      # goal = last demo frame
    deft-robot finetune --task pick_cup --checkpoint runs/affordance/model \
        --robot robot/configs/lab_xarm6.yaml --out runs/lab                         # the lab robot

The run goes to ``--out/<task>/<prior>[-<reward>][-<split>-split]/`` (or ``--run DIR``): ``run_meta.json``, the episode
log ``finetune/``, ``finetune.png`` (curves) and ``episodes.png`` (every episode's images, reward and
outcome; ``deft-robot show``). Re-running the same command resumes the log: no episode is lost
or repeated; different settings on an existing run are refused. Priors: ``--checkpoint DIR`` (the
affordance model), ``--prior oracle`` (the simulator's scripted grasp: development only),
``--prior real-world-only`` (box centre, random wrist rotation, half-closed hand). ``--robot toy`` is a
simulator-free test environment (deft_core.finetune.toy_env); ``--robot CONFIG.yaml`` runs on the robot of
that file (robot.real_env: operator prompts for the scene reset and, when the segmenter finds nothing, the
object box; the robot is left safe on any error; docs/finetune-cli.md "On the lab robot"). Rewards: ``sim`` (the task reward),
``operator`` (type a score in [0, 1] after each episode, or ``v`` to void and redo it), ``r3m``/``resnet``
(−‖φ(final) − φ(goal)‖ with local weights).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HELP = "fine-tune a task's grasps with CEM (Algorithm 1) from a prior; resumable, live display"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from deft_core.cli_util import seed_arg

    parser.add_argument("--task", required=True, help="task name (see 'deft-robot tasks')")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="exported affordance model directory (prior 'affordance'); resuming a run "
                                          "moved since, the model's new folder (its digest must be the run's)")
    src.add_argument("--prior", choices=("affordance", "oracle", "real-world-only"),
                     help="prior without a checkpoint: oracle (sim's scripted grasp) or real-world-only (§5 baseline)")
    parser.add_argument("--robot", default="sim", help="'sim', 'toy' (no simulator; tests) or a robot YAML (default sim; "
                                                       "resuming a lab run whose YAML moved, its new path)")
    parser.add_argument("--reward", choices=("operator", "sim", "r3m", "resnet"),
                        help="reward source (default: sim in simulation, operator on a robot)")
    parser.add_argument("--trajectory", help="post-grasp τ .npz from the task's human demo ('deft data trajectory'); "
                                             "copied into the run, and evaluation uses it too (default: the task's scripted τ)")
    parser.add_argument("--episodes", type=int, default=30, help="N, total episodes (Table 4: 30)")
    parser.add_argument("--warmup", type=int, default=10, help="M, warm-up episodes (10): as in Algorithm 1, D is first refitted after episode M + 1")
    parser.add_argument("--elites", type=int, default=10, help="E, elites per refit (10)")
    parser.add_argument("--sigma", type=sigma_arg, metavar="MU,THETA,HAND",
                        help=f"σ₀ of D: metres, radians, radians (Table 4: {_table4_sigma()}); recorded in the run")
    parser.add_argument("--seed", type=seed_arg, default=0, help="run seed: resets and CEM samples (default 0)")
    parser.add_argument("--split", choices=("train", "test"), default="train", help="objects to practise on")
    parser.add_argument("--out", default="runs", help="runs root (default runs/)")
    parser.add_argument("--run", help="run directory (default OUT/<task>/<prior>[-<reward>])")
    parser.add_argument("--size", default="224x224", help="camera image size WxH (default 224x224)")
    parser.add_argument("--goal-image", help="goal image PNG for r3m/resnet rewards")
    parser.add_argument("--demo-root", help="synthetic data root: goal = last frame of ROOT/_demos/<task>.mp4")
    parser.add_argument("--reward-weights", help="r3m: R3M model.pt / .safetensors; resnet: torchvision-format "
                                                 ".safetensors, or 'random' (random features)")
    parser.add_argument("--r3m-arch", default="resnet50", choices=("resnet18", "resnet34", "resnet50"))
    parser.add_argument("--verbose", action="store_true", help="show the simulator's safety-clamp warnings")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: shared machine)")
    parser.add_argument("--no-live", action="store_true", help="plain line per episode instead of the live table")
    from robot.cli_operator import add_robot_arguments

    add_robot_arguments(parser)


def sigma_arg(text: str) -> tuple[float, float, float]:
    """argparse ``type`` of ``--sigma``: three finite numbers > 0, 'MU,THETA,HAND'."""
    import math

    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"must be three numbers > 0, 'MU,THETA,HAND' (metres, radians, radians; "
                                         f"Table 4: {_table4_sigma()}), got {text!r}")
    return values


def _table4_sigma() -> str:
    """Table 4's σ₀ as ``--sigma`` writes it: '0.02,0.2,0.05'."""
    from robot.runs import TABLE4_SIGMA

    return ",".join(f"{v:g}" for v in TABLE4_SIGMA)


def parse_size(text: str) -> tuple[int, int]:
    from deft_core.cli_util import CommandError

    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise CommandError(f"--size must look like 224x224, got {text!r}") from None
    if w < 16 or h < 16:
        raise CommandError(f"--size {text}: each side must be at least 16 px")
    return w, h


def limit_threads(n: int) -> None:
    """Cap CPU threads (OpenMP/MKL now; torch if it is or gets imported by the caller)."""
    from deft_core.cli_util import CommandError

    if n < 1:
        raise CommandError(f"--threads must be >= 1, got {n}")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def build_meta(args):
    """(RunMeta, τ or None) from the command line (the checks a user gets before anything heavy starts)."""
    from deft_core.cli_util import CommandError
    from robot.runs import CEM_SIGMA, CHECKPOINT_DIGEST, TABLE4_SIGMA, RunMeta, checkpoint_digest

    _check_task(args.task)
    for name in ("episodes", "warmup", "elites"):
        if getattr(args, name) < (0 if name == "warmup" else 1):
            raise CommandError(f"--{name} must be >= {0 if name == 'warmup' else 1}, got {getattr(args, name)}")
    if args.checkpoint:
        if not Path(args.checkpoint, "config.json").is_file():
            raise CommandError(f"--checkpoint {args.checkpoint}: not an exported affordance model (no config.json)")
        prior, checkpoint = "affordance", str(Path(args.checkpoint).resolve())
    elif args.prior == "affordance":
        raise CommandError("--prior affordance needs --checkpoint DIR (the exported affordance model) instead")
    elif args.prior:
        prior, checkpoint = args.prior, None
    elif args.robot == "toy":
        prior, checkpoint = "toy", None
    else:
        raise CommandError("choose a prior: --checkpoint DIR (affordance model), --prior oracle or --prior real-world-only")
    robot, extra = args.robot, {}
    if robot not in ("sim", "toy"):
        if not Path(robot).is_file():
            raise CommandError(f"--robot {robot!r}: 'sim', 'toy' or an existing robot YAML file")
        from robot.base import ConfigError
        from robot.config import geometry_record, load_robot_config

        try:
            config = load_robot_config(robot)  # validated before anything starts
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        if prior == "oracle":
            raise CommandError("--prior oracle reads the simulator's state; on a robot use --checkpoint DIR or "
                               "--prior real-world-only")
        robot = str(Path(robot).resolve())
        extra = geometry_record(config, prior)  # the YAML's executor/retarget settings that act on this prior
    reward = args.reward or ("operator" if robot not in ("sim", "toy") else "sim")
    if reward == "sim" and robot not in ("sim", "toy"):
        raise CommandError("--reward sim needs the simulator; on a robot use operator, r3m or resnet")
    if args.robot == "toy" and args.trajectory:
        raise CommandError("--trajectory: the toy environment has no arm to move; use --robot sim or a robot YAML")
    tau = load_trajectory_arg(args.trajectory, args.task) if args.trajectory else None
    if args.warmup >= args.episodes - 1:
        print(f"warning: --warmup {args.warmup} with --episodes {args.episodes}: no episode samples a refitted D, "
              "every one draws from the initial σ₀ (Algorithm 1 refits after each episode k > M, for the next)",
              file=sys.stderr, flush=True)
    if args.elites >= args.episodes:
        print(f"warning: --elites {args.elites} >= --episodes {args.episodes}: every episode is an elite",
              file=sys.stderr, flush=True)
    if checkpoint is not None:  # which export: one exported again into the same folder is another prior
        extra = {**extra, CHECKPOINT_DIGEST: checkpoint_digest(checkpoint)}
    if args.sigma is not None and tuple(args.sigma) != TABLE4_SIGMA:  # Table 4's σ₀ is not recorded: old runs match
        extra = {**extra, CEM_SIGMA: list(args.sigma)}
    meta = RunMeta(task=args.task, prior=prior, reward=reward, robot=robot, split=args.split, seed=args.seed,
                   image_size=parse_size(args.size), checkpoint=checkpoint, episodes=args.episodes,
                   warmup=args.warmup, elites=args.elites, trajectory=tau.digest() if tau is not None else None,
                   extra=extra)  # a robot YAML's executor/retarget sections: not resumed or evaluated under others
    return meta, tau


def load_trajectory_arg(path: str, task: str):
    """The τ of a ``--trajectory`` argument, made for ``task`` (a τ tagged with another task is refused:
    pouring's τ would tip a cup that should only be lifted). A clean error for anything else."""
    from deft_core.cli_util import CommandError
    from deft_core.trajectory import PostGraspTrajectory

    try:
        tau = PostGraspTrajectory.load(path)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(f"--trajectory: {exc}") from None
    if tau.task and tau.task != task:
        raise CommandError(f"--trajectory {path} was made for task {tau.task!r}, not {task!r} "
                           f"(re-run 'deft data trajectory ... --task {task}')")
    return tau


def _check_task(task: str) -> None:
    from deft_core.cli_util import CommandError
    from deft_core.tasks import TASKS

    if task not in TASKS:
        raise CommandError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")


def load_goal_image(args):
    """The goal image (RGB uint8) for embedding rewards: --goal-image PNG or the demo's last frame."""
    import numpy as np

    from deft_core.cli_util import CommandError

    if args.goal_image:
        import cv2

        bgr = cv2.imread(args.goal_image, cv2.IMREAD_COLOR)
        if bgr is None:
            raise CommandError(f"--goal-image {args.goal_image}: missing or not an image")
        return np.ascontiguousarray(bgr[:, :, ::-1])
    if not args.demo_root:
        raise CommandError(f"--reward {args.reward} needs a goal image: --goal-image PNG or --demo-root ROOT "
                           f"(ROOT/_demos/{args.task}.mp4 from 'deft data synth')")
    video = Path(args.demo_root) / "_demos" / f"{args.task}.mp4"
    if not video.is_file():
        raise CommandError(f"demo video {video} not found (write it with 'deft data synth', or pass --goal-image)")
    import av

    last = None
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            last = frame
    if last is None:
        raise CommandError(f"demo video {video} has no frames")
    return last.to_ndarray(format="rgb24")


def make_reward(args, meta):
    """The reward callable for ``meta.reward`` (see the module docstring)."""
    from deft_core.cli_util import CommandError
    from deft_core.finetune.loop import task_reward

    unused = [flag for flag, v in (("--goal-image", args.goal_image), ("--reward-weights", args.reward_weights))
              if v and meta.reward not in ("r3m", "resnet")]
    if unused:
        print(f"warning: {' and '.join(unused)} {'is' if len(unused) == 1 else 'are'} used only by --reward r3m/resnet; "
              f"ignored with --reward {meta.reward}", file=sys.stderr, flush=True)
    if meta.reward == "sim":
        return task_reward
    if meta.reward == "operator":
        from deft_core.finetune.rewards import OperatorReward

        return OperatorReward(ask=_ask, tell=lambda msg: print(f"  {msg}", flush=True))
    from deft_core.finetune.rewards import EmbeddingReward, r3m_embedder, resnet18_embedder

    goal = load_goal_image(args)
    weights = args.reward_weights
    if not weights:
        raise CommandError(f"--reward {meta.reward} needs --reward-weights FILE (local weights; nothing is downloaded)"
                           + (" or 'random'" if meta.reward == "resnet" else ""))
    if weights != "random" and not Path(weights).is_file():  # before importing torch/torchvision (slow)
        raise CommandError(f"--reward-weights: {'R3M' if meta.reward == 'r3m' else 'ResNet-18'} weights not found: {weights}")
    if weights == "random" and meta.reward == "r3m":
        raise CommandError("--reward-weights random is for --reward resnet; R3M needs its model.pt")
    try:
        if meta.reward == "r3m":
            embed = r3m_embedder(weights, arch=args.r3m_arch)
        else:
            embed = resnet18_embedder(None if weights == "random" else weights, seed=meta.seed)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        raise CommandError(f"--reward-weights: {exc}") from None
    return EmbeddingReward(embed, goal)


def _ask(prompt: str) -> str:
    from deft_core.cli_util import CommandError

    print(prompt, end="", flush=True)
    line = sys.stdin.readline()
    if not line:
        raise CommandError("standard input closed while waiting for the operator's score; re-run the same "
                           "command to resume from the log")
    return line


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from deft_core.cli_util import CommandError
    from robot.runs import CHECKPOINT_DIGEST, RunDir, RunError, check_checkpoint, relocate_checkpoint, run_name

    meta, tau = build_meta(args)
    limit_threads(args.threads)
    rd = RunDir(args.run or Path(args.out) / args.task / run_name(meta.prior, meta.reward, meta.split))
    own = {"finetune", "trajectory.npz", "finetune.png", "episodes.png", "policies", "eval", "run_meta.json",
           "run_meta.json.tmp", "box_request.png"}  # a run's own files (a run killed before its meta was renamed resumes)
    if rd.path.is_file() or (rd.path.is_dir() and not rd.has_meta() and any(p.name not in own for p in rd.path.iterdir())):
        # e.g. --run pointed at a model export: the run's files would land among the model's
        raise CommandError(f"{rd.path} exists and is not a fine-tuning run (no run_meta.json); give a new folder")
    on_robot = meta.robot not in ("sim", "toy")
    recorded = meta  # what run_meta.json holds: a moved run keeps the model path it was made with
    try:
        if rd.has_meta():
            stored = rd.read_meta()
            # the run and its model moved since (another machine, a renamed folder): the same model, by digest,
            # resumes from where it is now; the stored meta keeps the path it was made with
            moved = bool(stored.checkpoint and meta.checkpoint and stored.checkpoint != meta.checkpoint)
            if moved:
                relocate_checkpoint(stored, rd.path, meta.checkpoint)  # another model is refused by name
            else:  # the export it was made from, changed since: refused by name (build_meta hashed it already)
                check_checkpoint(stored, rd.path, now=meta.extra.get(CHECKPOINT_DIGEST))
            if CHECKPOINT_DIGEST not in stored.extra:  # made before the digest was recorded: resumes as it was
                meta = replace(meta, extra={k: v for k, v in meta.extra.items() if k != CHECKPOINT_DIGEST})
            # a lab robot's YAML at a new path: the same run when the settings it records (extra) are the same
            yaml_moved = stored.robot not in ("sim", "toy") and meta.robot not in ("sim", "toy")
            recorded = replace(meta, checkpoint=stored.checkpoint if moved else meta.checkpoint,
                               robot=stored.robot if yaml_moved else meta.robot)
            rd.write_or_check_meta(recorded)
    except RunError as exc:
        raise CommandError(str(exc)) from None
    if not on_robot and not args.verbose:  # joint-limit clamps are frequent under CEM noise
        import logging

        logging.getLogger("robot.safety").setLevel(logging.ERROR)
    reward_fn = make_reward(args, meta)
    real = None
    if on_robot:
        from robot.cli_operator import make_locator, make_operator

        real = {"operator": make_operator(rd.path), "locator": make_locator(args), "object_prompt": args.object_prompt}
    else:
        from robot.cli_operator import warn_unused_robot_arguments

        warn_unused_robot_arguments(args)
    from robot.evaluation import open_env

    try:
        env = open_env(meta, real=real, trajectory=tau, run=str(rd.path))  # an unreachable robot fails here: nothing written
    except (NotImplementedError, ValueError, FileNotFoundError, ConnectionError) as exc:  # e.g. a bad checkpoint
        raise CommandError(str(exc)) from None
    limit_threads(args.threads)
    if getattr(env, "hand_text_note", None):
        print(f"warning: {env.hand_text_note}", flush=True)
    try:
        if tau is not None:
            rd.store_trajectory(tau)  # before the meta names it: a run's τ always travels with the run
        rd.write_or_check_meta(recorded)
        result = _run_loop(env, reward_fn, meta, rd, live=not args.no_live and meta.reward != "operator" and not on_robot)
    finally:
        if hasattr(env, "close"):
            env.close()  # the lab robot: hand opened, wrist lifted, arm stopped, devices disconnected
    from deft_core.finetune.episode_log import successes_recorded
    from deft_core.finetune.plots import plot_run
    from deft_core.finetune.sheet import write_sheet

    title = f"{meta.task}: {rd.path.name} (seed {meta.seed})"
    plot_run(result.records, meta.cem_config(), rd.curve_png, title=title)
    # every attempt, void ones included (result.records holds the 'ok' ones); at most 150 tiles (Table 4's N is
    # 30): `deft-robot show` draws a longer run whole
    write_sheet(rd.finetune_dir, result.attempts, meta.elites, rd.sheet_png, title=title, max_tiles=150)
    rewards = result.rewards
    ok = [r for r in result.records if r.status == "ok"]
    successes = (f"successes {sum(bool(r.success) for r in ok)}/{len(ok)}" if successes_recorded(ok)
                 else "successes not recorded (operator scores)")
    w = max(1, min(10, len(rewards) // 2))
    print(f"{meta.task}: {len(rewards)} episodes ({result.resumed_episodes} resumed), {successes}, "
          f"mean reward first {w} {rewards[:w].mean():.3f} → last {w} {rewards[-w:].mean():.3f}, "
          f"elite mean {rewards[[r.episode - 1 for r in result.elites]].mean():.3f}")
    print(f"wrote {rd.finetune_dir}/episodes.jsonl, {rd.curve_png}, {rd.sheet_png}; next: deft-robot distill --task {meta.task} --run {rd.path}")
    return 0


def _run_loop(env, reward_fn, meta, rd, live: bool):
    from deft_core.cli_util import CommandError
    from deft_core.finetune.episode_log import EpisodeLogError
    from deft_core.finetune.loop import FinetuneConfig, VoidLimitError, run_finetune
    from robot.real_env import NoObjectBox

    config = FinetuneConfig(task=meta.task, seed=meta.seed, cem=meta.cem_config())
    try:
        if live:
            from rich.live import Live

            from deft_core.finetune.display import FinetuneView

            view = FinetuneView(meta.task)
            with Live(view, refresh_per_second=4) as live:
                result = run_finetune(env, reward_fn, config, rd.finetune_dir, progress_callback=view.update)
            if not live.console.is_terminal:
                print()
            return result
        return run_finetune(env, reward_fn, config, rd.finetune_dir, progress_callback=_print_event)
    except (EpisodeLogError, VoidLimitError) as exc:
        raise CommandError(str(exc)) from None
    except NoObjectBox as exc:
        raise CommandError(f"{exc}. The robot was left safe and the finished episodes are kept: fix the scene "
                           "(or the segmenter) and run the same command again to resume") from None


def _print_event(e) -> None:
    reward = "void (redo)" if e.void else f"{e.reward:.3f}"
    success = "" if e.success is None else (" success" if e.success else " failure")
    print(f"episode {e.episode}/{e.total}: reward {reward}{success}; elite mean {e.elite_mean_reward:.3f}; "
          f"σ μ {1000 * e.sigma['mu']:.1f} mm, θ {e.sigma['theta']:.3f} rad, hand {e.sigma['hand']:.3f} rad", flush=True)
