"""The residual distribution D and the bookkeeping of Algorithm 1 (paper §3.2, Table 4).

D is a diagonal Gaussian over the 22-d residual ε added to the affordance prior ξ (layout of
:mod:`deft_core.grasp`: μ in metres, θ in radians (extrinsic Euler xyz), hand joints in radians; robot
base frame). It starts at N(0, σ₀²) with Table 4's σ₀ (0.02 m, 0.2 rad, 0.05).

Algorithm 1, as implemented here (``k`` is the 1-based episode index)::

    D ← N(0, σ₀²)
    for k = 1 … N:
        ε_k ~ D                       # sample_residual(D, seed, k, attempt)
        execute ξ_k + ε_k, collect R_k
        if k > M:                     # refit after episode k, used from episode k + 1 on
            Ω ← the E residuals with the highest rewards among episodes 1 … k
            D ← N(mean(Ω), max(std(Ω), floor)²)

The refit follows the pseudo-code literally: the first refit happens after episode M + 1, so
episodes 1 … M + 1 are drawn from the initial D. Ties in reward are broken by the later episode
(:func:`elite_indices` says why), so the elites are a deterministic function of the log. ``std`` is the population
standard deviation (numpy ``ddof=0``). The floor keeps D from collapsing when the elites coincide
(e.g. all rewards equal): it is ``sigma_floor_fraction × σ₀`` per dimension (default 0.05, i.e.
1 mm, 0.01 rad, 0.0025 rad), a choice of this implementation — the paper does not state one.

Every sample is a pure function of ``(seed, k, attempt)`` and the current D (ε = mean + std ⊙ z with
``z ~ N(0, I)`` from a generator seeded by ``(seed, k, attempt)``), so a killed run rebuilds exactly
the same samples from its episode log (:mod:`deft_core.finetune.episode_log`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from deft_core.grasp import GRASP_DIM, HAND, MU, SIGMA_HAND, SIGMA_MU, SIGMA_THETA, THETA, initial_sigma


@dataclass(frozen=True)
class CEMConfig:
    """Table 4's fine-tuning parameters.

    ``num_elites`` E, ``warmup_episodes`` M, ``total_episodes`` N; ``initial_sigma`` σ₀ per group
    (metres, radians, radians); ``sigma_floor_fraction`` the std floor as a fraction of σ₀.
    """

    num_elites: int = 10
    warmup_episodes: int = 10
    total_episodes: int = 30
    sigma_mu: float = SIGMA_MU
    sigma_theta: float = SIGMA_THETA
    sigma_hand: float = SIGMA_HAND
    sigma_floor_fraction: float = 0.05

    def __post_init__(self) -> None:
        if self.num_elites < 1:
            raise ValueError(f"CEMConfig.num_elites must be >= 1, got {self.num_elites}")
        if self.warmup_episodes < 0:
            raise ValueError(f"CEMConfig.warmup_episodes must be >= 0, got {self.warmup_episodes}")
        if self.total_episodes < 1:
            raise ValueError(f"CEMConfig.total_episodes must be >= 1, got {self.total_episodes}")
        for name in ("sigma_mu", "sigma_theta", "sigma_hand"):
            if not getattr(self, name) > 0:
                raise ValueError(f"CEMConfig.{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.sigma_floor_fraction <= 1:
            raise ValueError(f"CEMConfig.sigma_floor_fraction must be in [0, 1], got {self.sigma_floor_fraction}")

    def initial_sigma(self) -> np.ndarray:
        """σ₀ as a 22-vector."""
        return initial_sigma(self.sigma_mu, self.sigma_theta, self.sigma_hand)

    def sigma_floor(self) -> np.ndarray:
        return self.sigma_floor_fraction * self.initial_sigma()

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict) -> "CEMConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown CEMConfig fields {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class ResidualDistribution:
    """D: a diagonal Gaussian over ε with ``mean`` and ``std`` (22-vectors, units of ξ)."""

    mean: np.ndarray
    std: np.ndarray
    num_refits: int = 0

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != (GRASP_DIM,):
                raise ValueError(f"ResidualDistribution.{name} must have shape ({GRASP_DIM},), got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"ResidualDistribution.{name} has non-finite values")
            object.__setattr__(self, name, value)
        if np.any(self.std < 0):
            raise ValueError("ResidualDistribution.std must be non-negative")

    @classmethod
    def initial(cls, config: CEMConfig) -> "ResidualDistribution":
        return cls(mean=np.zeros(GRASP_DIM), std=config.initial_sigma())

    def sample(self, seed: int, episode: int, attempt: int = 0) -> np.ndarray:
        """ε for episode ``episode`` (1-based) and redo ``attempt``: a pure function of its arguments."""
        return self.mean + self.std * standard_normal(seed, episode, attempt)

    def group_sigma(self) -> dict[str, float]:
        """Mean std per group: ``mu`` (m), ``theta`` (rad), ``hand`` (rad) — for displays."""
        return {"mu": float(self.std[MU].mean()), "theta": float(self.std[THETA].mean()),
                "hand": float(self.std[HAND].mean())}

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "num_refits": self.num_refits}

    @classmethod
    def from_dict(cls, d: dict) -> "ResidualDistribution":
        return cls(mean=np.asarray(d["mean"]), std=np.asarray(d["std"]), num_refits=int(d.get("num_refits", 0)))


def standard_normal(seed: int, episode: int, attempt: int = 0) -> np.ndarray:
    """z ~ N(0, I₂₂) from a generator seeded by ``(seed, episode, attempt)`` (all non-negative ints)."""
    for name, v in (("seed", seed), ("episode", episode), ("attempt", attempt)):
        if int(v) != v or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    return np.random.default_rng([int(seed), int(episode), int(attempt)]).standard_normal(GRASP_DIM)


def elite_indices(rewards: Sequence[float], num_elites: int) -> np.ndarray:
    """Positions of the ``num_elites`` highest rewards, best first; ties go to the **later** position.

    Algorithm 1 leaves ties open. They are common: every success in simulation scores exactly 1.0. Given to
    the earlier episode, Ω became the first E successes — mostly wide warm-up samples — and D stopped
    changing once E successes existed, whereas the paper's D is refit to keep "gradually narrow[ing] the
    distribution around the desired values" (§3.2). Given to the later episode, Ω holds the most recent
    equals, drawn from the D refined so far. The distillation's top-k episodes use the same order."""
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"rewards must be 1-d, got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError(f"rewards must be finite, got {r}")
    order = np.lexsort((-np.arange(len(r)), -r))  # last key first: reward descending, then position descending
    return order[:num_elites]


def fit_distribution(elites: np.ndarray, floor: np.ndarray, num_refits: int = 0) -> ResidualDistribution:
    """D fitted to the elite residuals Ω (E × 22): per-dimension mean and population std, std ≥ floor."""
    omega = np.asarray(elites, dtype=np.float64)
    if omega.ndim != 2 or omega.shape[1] != GRASP_DIM or len(omega) == 0:
        raise ValueError(f"elite residuals must have shape (E >= 1, {GRASP_DIM}), got {omega.shape}")
    return ResidualDistribution(mean=omega.mean(axis=0), std=np.maximum(omega.std(axis=0), floor),
                                num_refits=num_refits)


@dataclass
class CEMState:
    """Algorithm 1's state: the completed episodes' residuals and rewards, and the current D.

    Rebuilt from an episode log by replaying :meth:`record` over its non-void episodes in order,
    which reproduces D exactly (it is a deterministic function of the residuals and rewards).
    """

    config: CEMConfig
    residuals: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    distribution: ResidualDistribution | None = None

    def __post_init__(self) -> None:
        if self.distribution is None:
            self.distribution = ResidualDistribution.initial(self.config)

    @property
    def episodes_done(self) -> int:
        return len(self.rewards)

    @property
    def next_episode(self) -> int:
        """The 1-based index k of the next episode to run."""
        return self.episodes_done + 1

    @property
    def finished(self) -> bool:
        return self.episodes_done >= self.config.total_episodes

    def sample(self, seed: int, attempt: int = 0) -> np.ndarray:
        """ε for the next episode."""
        return self.distribution.sample(seed, self.next_episode, attempt)

    def record(self, residual: np.ndarray, reward: float) -> bool:
        """Add episode k's (ε_k, R_k); refit D if k > M. Returns whether D was refit."""
        eps = np.asarray(residual, dtype=np.float64)
        if eps.shape != (GRASP_DIM,) or not np.all(np.isfinite(eps)):
            raise ValueError(f"a residual must be a finite ({GRASP_DIM},) vector, got shape {eps.shape}")
        reward = float(reward)
        if not np.isfinite(reward):
            raise ValueError(f"reward must be finite, got {reward}")
        self.residuals.append(eps)
        self.rewards.append(reward)
        if self.episodes_done > self.config.warmup_episodes:
            self.distribution = fit_distribution(np.stack(self.residuals)[self.elites()],
                                                 self.config.sigma_floor(), self.distribution.num_refits + 1)
            return True
        return False

    def elites(self) -> np.ndarray:
        """0-based positions of the current elites Ω (best first)."""
        return elite_indices(self.rewards, self.config.num_elites)

    def elite_mean_reward(self) -> float:
        """Mean reward of the current top-E episodes (NaN before any episode)."""
        if not self.rewards:
            return float("nan")
        return float(np.mean(np.asarray(self.rewards)[self.elites()]))
