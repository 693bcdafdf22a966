"""Figure-6-style pictures of a fine-tuning run: reward per episode, the running elite mean, and D's
standard deviation per group over the episodes. Written as PNG with matplotlib's Agg backend."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from deft_core.finetune.cem import CEMConfig, CEMState
from deft_core.finetune.episode_log import EpisodeRecord


def run_curves(records: Sequence[EpisodeRecord], cem: CEMConfig) -> dict[str, np.ndarray]:
    """Per 'ok' episode k: ``reward``, ``elite_mean`` (mean of the top E after k), ``sigma_mu`` (m),
    ``sigma_theta`` and ``sigma_hand`` (rad) of the D that sampled episode k."""
    ok = [r for r in records if r.status == "ok"]
    state = CEMState(cem)
    out: dict[str, list[float]] = {k: [] for k in ("episode", "reward", "elite_mean", "sigma_mu", "sigma_theta", "sigma_hand")}
    for r in ok:
        for group, value in state.distribution.group_sigma().items():
            out[f"sigma_{group}"].append(value)
        state.record(r.epsilon_array, r.reward)
        out["episode"].append(r.episode)
        out["reward"].append(float(r.reward))
        out["elite_mean"].append(state.elite_mean_reward())
    return {k: np.asarray(v) for k, v in out.items()}


def plot_run(records: Sequence[EpisodeRecord], cem: CEMConfig, path: str | Path, title: str = "") -> Path:
    """Write the reward and σ curves of a run to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = run_curves(records, cem)
    fig, (ax_r, ax_s) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_r.plot(c["episode"], c["reward"], "o", ms=4, label="episode reward")
    ax_r.plot(c["episode"], c["elite_mean"], "-", label=f"elite mean (top {cem.num_elites})")
    ax_r.axvline(cem.warmup_episodes + 0.5, color="grey", ls=":", label="end of warm-up")
    ax_r.set_xlabel("episode")
    ax_r.set_ylabel("reward")
    ax_r.legend(fontsize=8)
    s0 = cem.initial_sigma()
    for key, ref, label in (("sigma_mu", s0[0], "μ"), ("sigma_theta", s0[3], "θ"), ("sigma_hand", s0[6], "hand")):
        ax_s.plot(c["episode"], c[key] / ref, label=label)
    ax_s.set_xlabel("episode")
    ax_s.set_ylabel("σ of D / initial σ")
    ax_s.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
