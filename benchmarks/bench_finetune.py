"""Compute cost of DEFT fine-tuning on CPU: milliseconds per CEM update, seconds per distillation.

Prints one JSON object. Run: ``python benchmarks/bench_finetune.py [--threads 1] [--quick]``.

- ``cem``: one Algorithm 1 step after the warm-up (record ε_k, R_k → rank all k episodes → refit D)
  and one sample, timed over the episodes 11 … 30 of a default run (E = 10, M = 10, N = 30), repeated.
- ``distill``: ``policy.fit`` on the 10 elites of a 30-episode run (64 × 64 input images, the default
  PolicyConfig: 600 full-batch Adam steps) for the cVAE and each Table 3 ablation; ``act`` latency.
  ``resnet18`` rows use a frozen, randomly initialised ResNet-18 (weights are never downloaded).
- ``toy_quality`` (with ``--quality``): on :mod:`deft_core.finetune.toy_env`, three default 30-episode
  runs, then each policy kind (default config) distilled and evaluated on 20 held-out resets per run
  (mean task reward, z = 0), next to the prior alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np


def bench_cem(repeats: int) -> dict:
    from deft_core.finetune.cem import CEMConfig, CEMState

    rng = np.random.default_rng(0)
    rewards = rng.random(30)
    refit_ms, sample_ms = [], []
    for _ in range(repeats):
        state = CEMState(CEMConfig())
        for k in range(30):
            t0 = time.perf_counter()
            eps = state.sample(seed=0)
            t1 = time.perf_counter()
            refit = state.record(eps, rewards[k])
            t2 = time.perf_counter()
            if refit:
                sample_ms.append((t1 - t0) * 1e3)
                refit_ms.append((t2 - t1) * 1e3)
    return {"update_ms_median": float(np.median(refit_ms)), "update_ms_p95": float(np.percentile(refit_ms, 95)),
            "sample_ms_median": float(np.median(sample_ms)), "num_updates_timed": len(refit_ms)}


def _episodes(n: int, size: tuple[int, int]):
    from deft_core.finetune.policies import DistillEpisode
    from deft_core.grasp import initial_sigma

    rng = np.random.default_rng(1)
    s0 = initial_sigma()
    return [DistillEpisode(image=rng.integers(0, 256, size=(*size, 3), dtype=np.uint8),
                           xi=rng.normal(size=22) * s0, delta=rng.normal(size=22) * s0,
                           reward=float(rng.random()), episode=i + 1) for i in range(n)]


def bench_distill(kinds: list[str], encoders: list[str], steps: int | None) -> list[dict]:
    from dataclasses import replace

    from deft_core.finetune.encoders import EncoderConfig
    from deft_core.finetune.policies import make_policy, policy_class

    episodes = _episodes(30, (256, 456))
    rows = []
    for enc in encoders:
        for kind in kinds:
            cfg = replace(policy_class(kind).default_config(), encoder=EncoderConfig(kind=enc))
            if steps is not None:
                cfg = replace(cfg, steps=steps)
            policy = make_policy(kind, cfg)
            t0 = time.perf_counter()
            metrics = policy.fit(episodes)
            fit_s = time.perf_counter() - t0
            rng = np.random.default_rng(0)
            policy.act(episodes[0].image, episodes[0].xi, rng)
            t0 = time.perf_counter()
            for e in episodes[:10]:
                policy.act(e.image, e.xi, rng)
            act_ms = (time.perf_counter() - t0) / 10 * 1e3
            rows.append({"kind": kind, "encoder": enc, "num_train": metrics["num_train"], "steps": cfg.steps,
                         "fit_seconds": round(fit_s, 3), "act_ms": round(act_ms, 2),
                         "initial_loss": round(metrics["initial_loss"], 4), "final_loss": round(metrics["final_loss"], 4)})
    return rows


def bench_toy_quality(seeds: int = 3, heldout: int = 20) -> dict:
    import tempfile

    from deft_core.finetune.loop import FinetuneConfig, run_finetune
    from deft_core.finetune.policies import POLICY_KINDS, episodes_from_log, make_policy
    from deft_core.finetune.toy_env import ToyEnv

    env = ToyEnv()

    def evaluate(seed, residual_fn):
        rewards = []
        for k in range(heldout):
            obs = env.reset(1000 + k, 10_000 + 100 * seed + k)
            xi = env.prior(obs)
            rewards.append(env.execute(xi + residual_fn(obs, xi)).task_reward)
        return round(float(np.mean(rewards)), 4)

    out: dict = {"prior_only": [], "cem_warmup_mean": [], "cem_last10_mean": []}
    out.update({kind: [] for kind in POLICY_KINDS})
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            result = run_finetune(env, lambda q: q.result.task_reward, FinetuneConfig(task="pick_cup", seed=seed),
                                  f"{tmp}/run{seed}")
            episodes = episodes_from_log(f"{tmp}/run{seed}")
            out["cem_warmup_mean"].append(round(float(result.rewards[:10].mean()), 4))
            out["cem_last10_mean"].append(round(float(result.rewards[-10:].mean()), 4))
            out["prior_only"].append(evaluate(seed, lambda obs, xi: np.zeros(22)))
            for kind in POLICY_KINDS:
                policy = make_policy(kind)
                policy.fit(episodes)
                out[kind].append(evaluate(seed, lambda obs, xi: policy.act(obs.image, xi.to_vector(), None)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="cVAE only, small_cnn only, 100 steps")
    parser.add_argument("--quality", action="store_true", help="also distil and evaluate every policy on the toy env (minutes)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    kinds = ["deft"] if args.quick else ["deft", "mlp", "transformer", "direct"]
    encoders = ["small_cnn"] if args.quick else ["small_cnn", "resnet18"]
    result = {
        "benchmark": "finetune",
        "machine": {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
                    "cpu_count": os.cpu_count(), "torch_threads": args.threads,
                    "load_avg_1min": os.getloadavg()[0]},
        "cem": bench_cem(repeats=20 if args.quick else 200),
        "distill": bench_distill(kinds, encoders, 100 if args.quick else None),
    }
    if args.quality:
        result["toy_quality"] = bench_toy_quality()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
