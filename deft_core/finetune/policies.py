"""Residual policies distilled from fine-tuning episodes (paper §3.2 and Table 3), behind one interface.

``policy.fit(episodes)`` trains on a run's episodes (each policy picks its training set: the top-k by
reward, or all of them), ``policy.act(image, xi, rng) -> delta`` returns the 22-d residual δ̂ so the
robot executes ξ + δ̂ (units and frame of ξ: robot base frame, metres / radians). Kinds, in the
explicit table :data:`POLICY_KINDS`:

- ``deft``: the conditional VAE of §3.2 (:mod:`.cvae`)
- ``mlp``: an MLP residual regressor (:mod:`.ablations`)
- ``transformer``: a reward-conditioned transformer, queried with the maximum reward (:mod:`.ablations`)
- ``direct``: a VAE that predicts ξ itself from the image (:mod:`.cvae`); ``act`` returns ξ̂ − ξ
- ``mean``: the mean residual of the top-k episodes, whatever the image (:mod:`.ablations`) — the
  "mean values of the top N trajectories" alternative §3.2 mentions, as a reference point

Inputs and outputs are normalised with statistics computed at fit time and stored as buffers in the
checkpoint (:mod:`.policy_checkpoint`). Per-dimension standard deviations are floored so a dimension
that barely varies in 10 episodes is not blown up: at σ₀ (Table 4: 2 cm, 0.2 rad, 0.05 rad) for the
input ξ — so a new object whose prior differs from the training priors by a few σ₀ stays within the
range the network saw — and at 0.1 σ₀ for the output δ. Normalised ξ is also clipped to ±5.
With a trainable image encoder, training images are randomly shifted by up to ``augment_shift``
pixels (replicate padding) each step.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from deft_core.finetune.cem import elite_indices
from deft_core.finetune.encoders import EncoderConfig, build_encoder, preprocess_images
from deft_core.grasp import GRASP_DIM, initial_sigma

#: kind → "module:Class" (imported only when used; no registration by import side effect).
POLICY_KINDS: dict[str, str] = {
    "deft": "deft_core.finetune.cvae:CVAEPolicy",
    "mlp": "deft_core.finetune.ablations:MLPPolicy",
    "transformer": "deft_core.finetune.ablations:RewardTransformerPolicy",
    "direct": "deft_core.finetune.cvae:DirectVAEPolicy",
    "mean": "deft_core.finetune.ablations:EliteMeanPolicy",
}


@dataclass
class DistillEpisode:
    """One fine-tuning episode as training data: ``image`` I₀ (H × W × 3 uint8 RGB), prior ``xi`` (22),
    executed residual ``delta`` = ε (22), ``reward``, and its ``episode`` index (1-based)."""

    image: np.ndarray
    xi: np.ndarray
    delta: np.ndarray
    reward: float
    episode: int = 0


@dataclass(frozen=True)
class PolicyConfig:
    """Hyper-parameters. ``top_k``: train on the k best episodes (None = all); ``hidden``: MLP width;
    ``latent_dim``/``beta``: VAE latent size and KL weight; ``d_model``/``layers``/``heads``: transformer;
    ``steps``/``lr``: full-batch Adam; ``augment_shift``: max random image shift in pixels (trainable
encoder only); ``xi_noise``: std of Gaussian noise added to the normalised ξ at each training step (a
regulariser: 10 episodes are easy to memorise by their ξ); ``weight_decay``: AdamW; ``seed``: initialisation and training noise;
``clip_to_training_range``: ``act`` keeps each dimension of the policy's output within the range of the
targets it was fitted on (stored with the checkpoint as ``training_data.target_range``): the residual δ̂
for the residual kinds, ξ̂ itself for ``direct`` — which must not lean on the prior's ξ at test time (the
ablation is that it does without it; until 2026-11-26 its implied residual ξ̂ − ξ was clipped instead,
which put it back within reach of ξ). So an image unlike the training ones (a new object) cannot send the
robot beyond what fine-tuning tried. Checkpoints without ``target_range`` keep that older rule."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    top_k: int | None = 10
    hidden: int = 128
    latent_dim: int = 4
    beta: float = 1.0
    d_model: int = 64
    layers: int = 2
    heads: int = 4
    steps: int = 600
    augment_shift: int = 4
    xi_noise: float = 0.5
    weight_decay: float = 0.0
    lr: float = 1e-3
    seed: int = 0
    clip_to_training_range: bool = True

    def __post_init__(self) -> None:
        for name in ("hidden", "latent_dim", "d_model", "layers", "heads", "steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"PolicyConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"PolicyConfig.top_k must be >= 1 or None (all episodes), got {self.top_k}")
        if not self.lr > 0 or self.beta < 0 or self.augment_shift < 0:
            raise ValueError(f"PolicyConfig needs lr > 0, beta >= 0, augment_shift >= 0; got lr={self.lr}, "
                             f"beta={self.beta}, augment_shift={self.augment_shift}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["encoder"] = self.encoder.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PolicyConfig":
        d = dict(d)
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown policy config fields {sorted(unknown)}")
        d["encoder"] = EncoderConfig(**d.get("encoder", {}))
        return cls(**d)


class Normalizer(nn.Module):
    """y = (x − mean) / std with ``mean``/``std`` buffers (saved in the checkpoint)."""

    def __init__(self, dim: int, clip: float | None = None) -> None:
        super().__init__()
        self.clip = clip
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def set_stats(self, x: np.ndarray, floor: np.ndarray | float) -> None:
        x = np.asarray(x, dtype=np.float64)
        self.mean.copy_(torch.as_tensor(x.mean(axis=0), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(np.maximum(x.std(axis=0), floor), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = (x - self.mean) / self.std
        return y if self.clip is None else y.clamp(-self.clip, self.clip)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std + self.mean


def mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out))


XI_CLIP = 5.0


def xi_floor() -> np.ndarray:
    """Normalisation std floor for the input ξ: Table 4's σ₀."""
    return initial_sigma()


def delta_floor() -> np.ndarray:
    """Normalisation std floor for the output δ (or ξ̂): 0.1 × Table 4's σ₀."""
    return 0.1 * initial_sigma()


def random_shift(images: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each image (B × C × H × W) by an integer offset in [−max_shift, max_shift]² (edge-padded)."""
    b, _, h, w = images.shape
    padded = nn.functional.pad(images, (max_shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (b, 2), generator=gen)
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets.tolist())])


class ResidualPolicy(ABC):
    """Common machinery: data selection, normalisation, the image encoder, training, acting.

    A subclass defines ``kind``, ``build_heads(cond_dim)`` (adds modules to ``self.net``),
    ``loss(feats, xi_n, target_n, reward_n, gen)`` and ``predict(feats, xi_n, z)`` (the normalised target;
``z`` is the latent noise for stochastic policies, None for their mode).
    The target is δ for residual policies; :class:`DirectVAEPolicy` overrides :meth:`target_of`.
    """

    kind: ClassVar[str]
    needs_training: ClassVar[bool] = True  #: False for policies fully determined by the data statistics
    #: True for a policy trained on every episode with its reward and queried at the best one (Table 3's transformer)
    reward_conditioned: ClassVar[bool] = False

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()
        self.net: nn.Module | None = None
        self.training_summary: dict = {}

    # ----------------------------------------------------------------- construction
    def build(self, *, for_loading: bool = False) -> nn.Module:
        """Create ``self.net`` (random weights, seeded by ``config.seed``)."""
        enc_cfg = replace(self.config.encoder, weights=None) if for_loading else self.config.encoder
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            net = nn.Module()
            net.encoder = build_encoder(enc_cfg)
            net.xi_norm = Normalizer(GRASP_DIM, clip=XI_CLIP)
            net.target_norm = Normalizer(GRASP_DIM)
            net.reward_norm = Normalizer(1)
            self.net = net
            self.build_heads(self.config.encoder.output_dim)
        return net

    @abstractmethod
    def build_heads(self, feature_dim: int) -> None: ...

    @classmethod
    def default_config(cls) -> PolicyConfig:
        return PolicyConfig()

    @abstractmethod
    def loss(self, feats: torch.Tensor, xi_n: torch.Tensor, target_n: torch.Tensor, reward_n: torch.Tensor,
             gen: torch.Generator) -> torch.Tensor: ...

    @abstractmethod
    def predict(self, feats: torch.Tensor, xi_n: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor: ...

    def latent_dim(self) -> int:
        """Size of the noise ``act`` draws from ``rng`` (0 for deterministic policies)."""
        return 0

    def target_of(self, xi: np.ndarray, delta: np.ndarray) -> np.ndarray:
        return delta

    def delta_from(self, xi: np.ndarray, target: np.ndarray) -> np.ndarray:
        return target

    # ----------------------------------------------------------------- training
    def select(self, episodes: Sequence[DistillEpisode]) -> list[DistillEpisode]:
        if self.config.top_k is None:
            return list(episodes)
        return [episodes[i] for i in elite_indices([e.reward for e in episodes], self.config.top_k)]

    def fit(self, episodes: Sequence[DistillEpisode]) -> dict:
        """Train on ``episodes`` (selected by ``config.top_k``); returns metrics (losses, seconds)."""
        if not episodes:
            raise ValueError("fit needs at least one episode")
        data = self.select(episodes)
        xi = np.stack([_vec(e.xi, "xi", e.episode) for e in data])
        delta = np.stack([_vec(e.delta, "delta", e.episode) for e in data])
        reward = np.array([[float(e.reward)] for e in data])
        target = np.stack([self.target_of(x, d) for x, d in zip(xi, delta)])
        t0 = time.perf_counter()
        net = self.build()
        net.xi_norm.set_stats(xi, xi_floor())
        net.target_norm.set_stats(target, delta_floor())
        net.reward_norm.set_stats(reward, 1e-3)
        images = preprocess_images([e.image for e in data], self.config.encoder.image_size)
        xi_n = net.xi_norm(torch.as_tensor(xi, dtype=torch.float32))
        target_n = net.target_norm(torch.as_tensor(target, dtype=torch.float32))
        reward_n = net.reward_norm(torch.as_tensor(reward, dtype=torch.float32))
        trainable_encoder = self.config.encoder.trainable and self.needs_training
        frozen_feats = None
        if not trainable_encoder:  # computed once, outside autograd (a graph kept across steps broke backward)
            with torch.no_grad():
                frozen_feats = net.encoder(images)
        params = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.config.lr, weight_decay=self.config.weight_decay) if params else None
        gen = torch.Generator().manual_seed(self.config.seed)
        losses: list[float] = []
        net.train()
        for _ in range(self.config.steps if self.needs_training else 0):
            if trainable_encoder:
                shift = self.config.augment_shift
                feats = net.encoder(random_shift(images, shift, gen) if shift > 0 else images)
            else:
                feats = frozen_feats
            xi_in = xi_n
            if self.config.xi_noise > 0:
                xi_in = xi_n + self.config.xi_noise * torch.randn(xi_n.shape, generator=gen)
            loss = self.loss(feats, xi_in, target_n, reward_n, gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        net.eval()
        self.training_summary = {
            "episodes": [int(e.episode) for e in data], "rewards": [float(e.reward) for e in data],
            "num_available": len(episodes), "max_reward": float(reward.max()),
            # the trust region of act(): per dimension, the range of the residuals the policy was fitted on
            "residual_range": {"low": delta.min(axis=0).tolist(), "high": delta.max(axis=0).tolist()},
            # ... in the units of what the policy outputs (= residual_range but for `direct`, whose output is ξ̂)
            "target_range": {"low": target.min(axis=0).tolist(), "high": target.max(axis=0).tolist()}}
        return {"kind": self.kind, "num_train": len(data), "steps": self.config.steps,
                "initial_loss": losses[0] if losses else None,
                "final_loss": float(np.mean(losses[-10:])) if losses else None,
                "loss_curve": losses[:: max(1, len(losses) // 50)], "train_seconds": time.perf_counter() - t0}

    # ----------------------------------------------------------------- acting
    def _require_net(self) -> nn.Module:
        if self.net is None:
            raise RuntimeError(f"{type(self).__name__} is not trained or loaded: call fit() or load_policy()")
        return self.net

    @torch.no_grad()
    def act(self, image: np.ndarray, xi: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """δ̂ (22, units of ξ) for the initial image (H × W × 3 uint8 RGB) and prior ξ (22, robot base frame).
        Stochastic policies draw z ~ N(0, I) from ``rng``; ``rng=None`` uses z = 0 (the mode)."""
        return self.act_batch([image], np.asarray(xi)[None], rng)[0]

    @torch.no_grad()
    def act_batch(self, images: Sequence[np.ndarray], xis: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        net = self._require_net()
        xis = np.asarray(xis, dtype=np.float64)
        if xis.ndim != 2 or xis.shape[1] != GRASP_DIM or len(xis) != len(images):
            raise ValueError(f"xi must have shape (B, {GRASP_DIM}) matching {len(images)} images, got {xis.shape}")
        feats = net.encoder(preprocess_images(list(images), self.config.encoder.image_size))
        z = None
        if self.latent_dim():
            noise = rng.standard_normal((len(xis), self.latent_dim())) if rng is not None else np.zeros((len(xis), self.latent_dim()))
            z = torch.as_tensor(noise, dtype=torch.float32)
        target_n = self.predict(feats, net.xi_norm(torch.as_tensor(xis, dtype=torch.float32)), z)
        target = net.target_norm.inverse(target_n).double().numpy()
        clip = self.config.clip_to_training_range
        targets, residuals = self.training_summary.get("target_range"), self.training_summary.get("residual_range")
        if clip and targets is not None:
            target = np.clip(target, np.asarray(targets["low"], float), np.asarray(targets["high"], float))
        delta = np.stack([self.delta_from(x, t) for x, t in zip(xis, target)])
        if clip and targets is None and residuals is not None:
            # a checkpoint saved before target_range existed: its residual-range rule, as it was evaluated
            delta = np.clip(delta, np.asarray(residuals["low"], float), np.asarray(residuals["high"], float))
        return delta

    def config_dict(self) -> dict:
        return {"kind": self.kind, "policy": self.config.to_dict()}


def _vec(v: np.ndarray, name: str, episode: int) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (GRASP_DIM,) or not np.all(np.isfinite(v)):
        raise ValueError(f"episode {episode}: {name} must be a finite ({GRASP_DIM},) vector, got shape {v.shape}")
    return v


def policy_class(kind: str) -> type[ResidualPolicy]:
    """The class registered for ``kind`` in :data:`POLICY_KINDS`."""
    from deft_core.registry import load_class

    return load_class(POLICY_KINDS, kind, "policy kind")


def make_policy(kind: str, config: PolicyConfig | None = None) -> ResidualPolicy:
    """A fresh policy of ``kind`` with its kind's default config unless ``config`` is given."""
    cls = policy_class(kind)
    return cls(config or cls.default_config())


def episodes_from_log(log_dir: str | Path) -> list[DistillEpisode]:
    """The 'ok' episodes of a fine-tuning run (see :mod:`.episode_log`) with their initial images."""
    from deft_core.finetune.episode_log import load_episode_image, open_run

    _, records = open_run(log_dir)
    return [DistillEpisode(image=load_episode_image(log_dir, r, "initial"), xi=r.xi_array, delta=r.epsilon_array,
                           reward=float(r.reward), episode=r.episode) for r in records if r.status == "ok"]
