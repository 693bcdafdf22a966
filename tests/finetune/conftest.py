"""A deterministic toy environment for the fine-tuning loop, with crash injection.

The affordance prior is off by a known residual ``TARGET``: reward = exp(-½‖(ξ + ε − ξ*) / σ₀‖²) where
ξ* = ξ + TARGET, so CEM should move D's mean towards TARGET.
"""

from __future__ import annotations

import numpy as np
import pytest

from deft_core.finetune.loop import EpisodeResult, Observation
from deft_core.grasp import GRASP_DIM, GraspParams, initial_sigma

SIGMA0 = initial_sigma()
TARGET = 0.8 * SIGMA0 * np.where(np.arange(GRASP_DIM) % 2 == 0, 1.0, -1.0)


class SimulatedCrash(RuntimeError):
    pass


class ToyEnv:
    def __init__(self, crash_at: tuple[str, int] | None = None, void_at: set[tuple[int, int]] = frozenset()):
        self.crash_at = crash_at            # (method, n): raise on the n-th call (1-based) of that method
        self.void_at = set(void_at)         # (episode, attempt) pairs the env reports void
        self.calls = {"reset": 0, "prior": 0, "execute": 0, "reward": 0}
        self.current = None

    def _tick(self, name: str) -> None:
        self.calls[name] += 1
        if self.crash_at == (name, self.calls[name]):
            raise SimulatedCrash(f"crash in {name} call {self.calls[name]}")

    def reset(self, episode: int, seed: int) -> Observation:
        self._tick("reset")
        rng = np.random.default_rng(seed)
        offset = rng.uniform(-0.1, 0.1, size=3)
        image = np.zeros((24, 32, 3), np.uint8)
        image[..., 0] = int(128 + 1000 * offset[0])
        self.current = (episode, offset)
        return Observation(image=image, extras={"offset": offset})

    def prior(self, obs: Observation) -> GraspParams:
        self._tick("prior")
        xi = np.zeros(GRASP_DIM)
        xi[:3] = obs.extras["offset"]
        return GraspParams.from_vector(xi)

    def execute(self, grasp: GraspParams) -> EpisodeResult:
        self._tick("execute")
        episode, offset = self.current
        best = np.zeros(GRASP_DIM)
        best[:3] = offset
        best += TARGET
        reward = float(np.exp(-0.5 * np.sum(((grasp.to_vector() - best) / SIGMA0) ** 2) / GRASP_DIM))
        final = np.full((24, 32, 3), int(255 * reward), np.uint8)
        return EpisodeResult(success=reward > 0.7, final_image=final, task_reward=reward,
                             info={"distance": float(np.linalg.norm((grasp.to_vector() - best) / SIGMA0))})

    def reward(self, query):
        self._tick("reward")
        if (query.episode, query.attempt) in self.void_at:
            from deft_core.finetune.loop import VOID
            return VOID
        return query.result.task_reward


@pytest.fixture
def toy_env_cls():
    return ToyEnv


@pytest.fixture
def crash_cls():
    return SimulatedCrash
