"""Distil a fine-tuning run into a residual policy (the last line of Algorithm 1; Table 3's ablations).

Examples::

    deft-robot distill --task pick_cup                              # the task's only DEFT run, cVAE
    deft-robot distill --task pick_cup --kind all                   # deft, mlp, transformer, direct, mean
    deft-robot distill --task pick_cup --prior real-world-only      # the baseline's run
    deft-robot distill --task pick_cup --run runs/pick_cup/oracle --kind mlp
    deft-robot distill --task pick_cup --encoder resnet18 --encoder-weights resnet18_imagenet.safetensors

Kinds: ``deft`` (conditional VAE on the top-10 episodes, c = (φ(I₀), ξ)), ``mlp`` (residual regressor),
``transformer`` (reward-conditioned, all episodes, queried with the best reward), ``direct`` (VAE over ξ
itself), ``mean`` (the top-10 mean residual). Each is written to ``<run>/policies/<kind>/``
(config.json, model.safetensors, metrics.json).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "distil a fine-tuning run's best episodes into a residual policy (cVAE or an ablation)"
KINDS = ("deft", "mlp", "transformer", "direct", "mean")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from deft_core.cli_util import seed_arg

    parser.add_argument("--task", required=True, help="task name")
    parser.add_argument("--kind", default="deft", choices=(*KINDS, "all"), help="policy kind (default deft; all = every kind)")
    parser.add_argument("--run", help="run directory (default: the task's only DEFT run under --out)")
    parser.add_argument("--prior", help="pick the run by its name under OUT/<task>/ (e.g. real-world-only, oracle)")
    parser.add_argument("--out", default="runs", help="runs root (default runs/)")
    parser.add_argument("--steps", type=int, help="training steps (default: the kind's default, 600)")
    parser.add_argument("--seed", type=seed_arg, default=0, help="training seed (default 0)")
    parser.add_argument("--encoder", choices=("small_cnn", "resnet18"), default="small_cnn",
                        help="φ(I₀), the image encoder of the policies that read the image: small_cnn (default, "
                             "trained with the policy) or resnet18 (frozen; torchvision's ResNet-18 trunk)")
    parser.add_argument("--encoder-weights", metavar="FILE",
                        help="resnet18: a local .safetensors of torchvision's resnet18 (e.g. ImageNet); without it "
                             "the weights are random. Never downloaded; stored in the policy checkpoint")
    parser.add_argument("--freeze-encoder", action="store_true",
                        help="small_cnn: keep its random initialisation instead of training it with the policy")
    parser.add_argument("--allow-partial", action="store_true", help="distil a run that has not finished its N episodes")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")


def run(args: argparse.Namespace) -> int:
    from deft_core.cli_util import CommandError
    from robot.cli_finetune import _check_task, limit_threads
    from robot.runs import RunError, open_run_episodes

    _check_task(args.task)
    if args.steps is not None and args.steps < 1:
        raise CommandError(f"--steps must be >= 1, got {args.steps}")
    if args.encoder != "resnet18" and args.encoder_weights:
        raise CommandError("--encoder-weights is for --encoder resnet18 (the small CNN starts from random weights)")
    if args.encoder == "resnet18" and args.freeze_encoder:
        raise CommandError("--freeze-encoder is for --encoder small_cnn (resnet18 is always frozen)")
    if args.encoder_weights and not Path(args.encoder_weights).is_file():
        raise CommandError(f"--encoder-weights {args.encoder_weights}: no such file (a .safetensors state dict of "
                           "torchvision's resnet18)")
    limit_threads(args.threads)
    try:
        rd, meta, records = open_run_episodes(args.out, args.task, args.run, args.prior)
    except RunError as exc:
        raise CommandError(str(exc)) from None
    done = sum(r.status == "ok" for r in records)
    if done < meta.episodes and not args.allow_partial:
        raise CommandError(f"{rd.finetune_dir} has {done} of {meta.episodes} episodes; finish it by re-running the "
                           "finetune command (it resumes), or pass --allow-partial")
    import torch

    torch.set_num_threads(args.threads)
    from dataclasses import replace

    from deft_core.finetune.distill import distill_from_log
    from deft_core.finetune.policies import policy_class
    from robot.evaluation import older_policy_evaluations

    for kind in (KINDS if args.kind == "all" else (args.kind,)):
        config = replace(policy_class(kind).default_config(), seed=args.seed)
        if args.steps is not None:
            config = replace(config, steps=args.steps)
        if (args.encoder == "resnet18" or args.freeze_encoder) and policy_class(kind).needs_training:  # not `mean`
            config = replace(config, encoder=replace(
                config.encoder, kind=args.encoder, trainable=not args.freeze_encoder,
                weights=str(Path(args.encoder_weights).resolve()) if args.encoder_weights else None))
        t0 = time.perf_counter()
        try:
            policy, metrics = distill_from_log(rd.finetune_dir, rd.policy_dir(kind), kind=kind, config=config)
        except ValueError as exc:
            raise CommandError(f"{rd.finetune_dir}: {exc}") from None
        loss = metrics.get("final_loss")
        print(f"{args.task} {kind}: trained on {rd.finetune_dir} in {time.perf_counter() - t0:.1f} s"
              + (f", final loss {loss:.4f}" if isinstance(loss, float) else "") + f" → {rd.policy_dir(kind)}")
        note = training_note(policy.training_summary.get("episodes"), records,
                             reward_conditioned=policy.reward_conditioned)
        if note:
            print(f"  {note}")
        stale = older_policy_evaluations(rd.path, rd.policy_dir(kind))
        if stale:
            print(f"  warning: {', '.join(p.name for p in stale)} in {stale[0].parent} evaluated the policy this "
                  f"replaces; run deft-robot eval again for numbers of this one (the report marks them until then)")
    return 0


#: below this share of successful training episodes ``distill`` warns that the policy learns mostly failures
FEW_SUCCESSES = 0.5


def training_note(used, records, reward_conditioned: bool = False) -> str | None:
    """One line on what a policy was fitted on: how many of its training episodes (``used``, 1-based
    episode numbers; None for kinds that train on every episode) succeeded, with a warning when fewer
    than :data:`FEW_SUCCESSES` of them did — the residual policy then reproduces mostly failed grasps,
    and can score below the prior it corrects (squeeze_lemon in the demo: 2 of 10, DEFT 0/10 against
    the prior's 6/10). A ``reward_conditioned`` policy (Table 3's transformer) learns from every episode
    by design and is queried at the best reward: it is warned about only when no episode succeeded."""
    from deft_core.finetune.episode_log import successes_recorded

    done = [r for r in records if r.status == "ok"]
    ok = {r.episode: bool(r.success) for r in done}
    used = list(used) if used is not None else sorted(ok)
    if not used:
        return None
    if not successes_recorded(done):
        reward = {r.episode: float(r.reward) for r in done}
        return (f"learned from {len(used)} episode(s), mean reward {sum(reward.get(int(e), 0.0) for e in used) / len(used):.2f} "
                "(operator scores: successes not recorded)")
    wins = sum(ok.get(int(e), False) for e in used)
    line = f"learned from {len(used)} episode(s), {wins} of them successful"
    if reward_conditioned:
        line += ", conditioned on the reward and queried at the best one"
        if wins == 0:
            line += ("; warning: no fine-tuning episode succeeded, so the best reward it is queried at is a "
                     "failure's — compare with 'deft-robot eval --policy affordance'")
        return line
    if wins < FEW_SUCCESSES * len(used):
        line += (f"; warning: the policy mostly reproduces the residuals of failed episodes ({sum(ok.values())} of "
                 f"{len(ok)} fine-tuning episodes succeeded) and may do worse than the prior alone — compare with "
                 "'deft-robot eval --policy affordance'")
    return line
