"""A deterministic, simulator-free :class:`~deft_core.finetune.loop.FinetuneEnv` for tests, benchmarks
and quick demos of the fine-tuning loop.

Each reset places an "object" at a random offset (metres, from the reset seed); the "affordance prior"
puts the contact μ at that offset with zero wrist rotation and an open hand, and is wrong by a fixed,
known residual ``target`` (default 0.8 σ₀ per dimension, alternating sign). The reward of an executed
grasp ξ' is exp(−½ ‖(ξ' − ξ*) / σ₀‖² / 22) with ξ* = ξ + target, in (0, 1]; success is reward > 0.7.
The initial image encodes the offset in its colours, so image-conditioned policies have something to
read. The optimum does *not* depend on the image: the best residual is the same everywhere.
"""

from __future__ import annotations

import numpy as np

from deft_core.finetune.loop import EpisodeResult, Observation
from deft_core.grasp import GRASP_DIM, GraspParams, initial_sigma

SIGMA0 = initial_sigma()
DEFAULT_TARGET = 0.8 * SIGMA0 * np.where(np.arange(GRASP_DIM) % 2 == 0, 1.0, -1.0)


class ToyEnv:
    """See the module docstring. ``target``: the prior's error (22, units of ξ)."""

    def __init__(self, target: np.ndarray = DEFAULT_TARGET, image_size: tuple[int, int] = (24, 32)) -> None:
        self.target = np.asarray(target, dtype=np.float64)
        self.image_size = image_size
        self.current: tuple[int, np.ndarray] | None = None

    def reset(self, episode: int, seed: int) -> Observation:
        offset = np.random.default_rng(seed).uniform(-0.1, 0.1, size=3)
        image = np.zeros((*self.image_size, 3), np.uint8)
        image[..., 0] = int(128 + 1000 * offset[0])
        image[..., 1] = int(128 + 1000 * offset[1])
        self.current = (episode, offset)
        return Observation(image=image, extras={"offset": offset})

    def prior(self, obs: Observation) -> GraspParams:
        xi = np.zeros(GRASP_DIM)
        xi[:3] = obs.extras["offset"]
        return GraspParams.from_vector(xi)

    def best_grasp(self) -> np.ndarray:
        """ξ* for the current reset."""
        if self.current is None:
            raise RuntimeError("call reset() first")
        best = np.zeros(GRASP_DIM)
        best[:3] = self.current[1]
        return best + self.target

    def execute(self, grasp: GraspParams) -> EpisodeResult:
        error = (grasp.to_vector() - self.best_grasp()) / SIGMA0
        reward = float(np.exp(-0.5 * np.sum(error ** 2) / GRASP_DIM))
        final = np.full((*self.image_size, 3), int(255 * reward), np.uint8)
        return EpisodeResult(success=reward > 0.7, final_image=final, task_reward=reward,
                             info={"normalised_error": float(np.linalg.norm(error))})
