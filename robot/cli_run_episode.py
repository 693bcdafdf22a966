"""Execute one grasp episode (reset → observe → ξ and τ → success/reward) and save its images.

Examples::

    deft-robot run-episode --task pick_cup --robot sim --params auto --seed 3 --out runs/ep --video runs/ep/ep.mp4
    deft-robot run-episode --task pour_cup --robot sim --params grasp.json --trajectory pour_tau.npz

``--params`` is a JSON file in ``GraspParams.to_dict()`` form (``{"mu": [3], "theta": [3], "hand": [16]}``,
robot base frame, metres / radians) or ``auto`` (the scripted oracle from the object's grasp-region site).
``--robot`` is ``sim`` or a robot YAML file; with a real robot the operator is asked for success and
reward after the episode.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "execute one grasp (ξ from a JSON file or 'auto') and save initial/final images, optional MP4"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from deft_core.cli_util import seed_arg

    parser.add_argument("--task", required=True, help="task name (see 'deft-robot tasks')")
    parser.add_argument("--robot", default="sim", help="'sim' or a robot config YAML (default: sim)")
    parser.add_argument("--params", required=True, help="grasp parameters JSON file, or 'auto' (sim only)")
    parser.add_argument("--trajectory", help="post-grasp trajectory .npz (default: the task's scripted τ)")
    parser.add_argument("--seed", type=seed_arg, default=0, help="scene seed: object variant and placement (sim)")
    parser.add_argument("--split", choices=("train", "test"), default="train", help="object split (sim)")
    parser.add_argument("--video", help="write an MP4 of the episode here (sim)")
    parser.add_argument("--out", default="runs/episode", help="output directory (images, result.json)")
    parser.add_argument("--size", default="320x240", help="image size WxH (default 320x240)")


def _load_params(path: str):
    from deft_core.cli_util import CommandError
    from deft_core.grasp import GraspParams

    p = Path(path)
    if not p.is_file():
        raise CommandError(f"--params: file {path!r} does not exist (or use --params auto)")
    try:
        return GraspParams.from_dict(json.loads(p.read_text()))
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise CommandError(f"--params {path}: not valid grasp parameters: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from deft_core.cli_util import CommandError
    from robot.tasks import get_task_definition

    try:
        get_task_definition(args.task)
    except KeyError as exc:
        raise CommandError(str(exc.args[0])) from None
    from robot.cli_finetune import load_trajectory_arg, parse_size

    w, h = parse_size(args.size)
    traj = load_trajectory_arg(args.trajectory, args.task) if args.trajectory else None
    if args.robot != "sim":
        return _run_real(args, traj)
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    from PIL import Image

    from robot.episode import SimEpisodeRunner, VideoRecorder
    from robot.sim.oracle import oracle_grasp

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with SimEpisodeRunner(image_size=(w, h)) as runner:
        runner.reset(args.task, args.seed, args.split)
        grasp = oracle_grasp(runner.world, args.task) if args.params == "auto" else _load_params(args.params)
        video = VideoRecorder(fps=20, size=(w, h)) if args.video else None
        result = runner.run(grasp, traj, video=video)
    Image.fromarray(result.initial_image).save(out / "initial.png")
    Image.fromarray(result.final_image).save(out / "final.png")
    summary = {**result.summary(), "grasp": grasp.to_dict(), "split": args.split}
    if video is not None:
        summary["video"] = str(video.save(args.video))
    (out / "result.json").write_text(json.dumps(summary, indent=2, default=float))
    print(f"task {args.task} seed {args.seed}: success={result.success} reward={result.reward:.3f} "
          f"(simulated {result.sim_s:.1f} s in {result.wall_s:.2f} s wall){' ERROR: ' + result.error if result.error else ''}")
    print(f"metrics: {json.dumps(result.metrics, default=float)}")
    print(f"wrote {out / 'initial.png'}, {out / 'final.png'}, {out / 'result.json'}" + (f", {args.video}" if args.video else ""))
    return 0


def _ask_operator(task: str):
    """The operator's outcome (y/n, as ``eval`` asks it) and score in [0, 1]; bad answers are re-asked with
    the reason, a closed stdin is a one-line error (:class:`robot.cli_operator.StdinClosed`)."""
    from deft_core.finetune.rewards import OperatorInputError, parse_operator_score
    from robot.cli_operator import judge, read_line
    from robot.tasks import OperatorOutcome

    success = judge(task).success
    while True:
        print("reward in [0, 1] > ", end="", flush=True)
        text = read_line("the reward")
        try:
            score = parse_operator_score(text)
            if not isinstance(score, float):  # 'v': there is no run here to redo an episode in
                raise OperatorInputError(f"{text.strip()!r}: a single episode cannot be voided; type a score from 0 to 1")
            return OperatorOutcome(success, score)
        except OperatorInputError as exc:
            print("  " + str(exc).replace(", or 'v' to void", ""), flush=True)


def _run_real(args, traj) -> int:
    from deft_core.cli_util import CommandError
    from robot.config import load_robot_config
    from robot.episode import run_operator_episode

    if args.params == "auto":
        raise CommandError("--params auto needs the simulator (it reads the object's pose from the scene)")
    cfg = load_robot_config(args.robot)
    grasp = _load_params(args.params)
    from robot.cli_operator import StdinClosed

    try:
        with cfg.make_arm() as arm, cfg.make_hand() as hand, cfg.make_camera() as cam:
            res = run_operator_episode(arm, hand, cam, args.task, grasp, _ask_operator, traj,
                                       executor_config=cfg.executor_config())  # the YAML's grasp geometry, as finetune uses
    except StdinClosed as exc:
        raise CommandError(f"standard input closed while waiting for {exc.what}; nothing was written") from None
    from PIL import Image

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(res["initial"].rgb).save(out / "initial.png")
    Image.fromarray(res["final"].rgb).save(out / "final.png")
    (out / "result.json").write_text(json.dumps({k: res[k] for k in ("success", "reward", "report")}, indent=2, default=float))
    print(f"task {args.task}: success={res['success']} reward={res['reward']:.3f}; wrote {out}")
    return 0
