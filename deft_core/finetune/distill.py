"""Distillation (the last line of Algorithm 1): fit a residual policy to a fine-tuning run's episodes
and save it as a self-describing checkpoint. This is what ``deft-robot distill`` calls."""

from __future__ import annotations

from pathlib import Path

from deft_core.finetune.episode_log import open_run
from deft_core.finetune.policies import PolicyConfig, ResidualPolicy, episodes_from_log, make_policy
from deft_core.finetune.policy_checkpoint import save_policy


def distill_from_log(log_dir: str | Path, out_dir: str | Path, kind: str = "deft",
                     config: PolicyConfig | None = None) -> tuple[ResidualPolicy, dict]:
    """Train a ``kind`` policy (see :data:`deft_core.finetune.policies.POLICY_KINDS`) on the run in
    ``log_dir`` and write it to ``out_dir``. Returns the policy and its training metrics."""
    run_meta, records = open_run(log_dir)
    episodes = episodes_from_log(log_dir)
    if not episodes:
        raise ValueError(f"{log_dir} has no completed episodes to distil")
    policy = make_policy(kind, config)
    metrics = policy.fit(episodes)
    extra = {"task": run_meta.get("task"), "source_log": str(Path(log_dir).resolve()),
             "finetune_seed": run_meta.get("seed"), "num_void_attempts": sum(r.status == "void" for r in records)}
    save_policy(policy, out_dir, metrics=metrics, extra=extra)
    return policy, metrics
