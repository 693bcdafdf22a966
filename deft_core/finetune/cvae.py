"""The conditional VAE residual policy of §3.2 (``deft``) and Table 3's direct-estimation VAE (``direct``).

``deft``: condition c = (φ(I₀), ξ) with φ the image encoder (:mod:`.encoders`) and ξ normalised;
encoder q(z | δ, c) = N(μ_q, diag σ_q²), decoder p(δ | z, c) = N(g(z, c), I) in normalised units.
Trained on the top-10 episodes' residuals δ = ε by maximising the ELBO:
loss = ½‖δₙ − g(z, c)‖² + β · KL(q ‖ N(0, I)), z = μ_q + σ_q ⊙ n (reparameterised). At test time
z ~ N(0, I) and the robot executes ξ + δ̂ with δ̂ = g(z, c) de-normalised.

``direct``: the same VAE but it reconstructs the executed grasp ξ + ε itself, conditioned on the image
only (it does not see the prior), as in the paper's "direct parameter estimation" ablation; its
``act`` returns ξ̂ − ξ so the caller still executes ξ + δ̂ = ξ̂.
"""

from __future__ import annotations

import numpy as np
import torch

from deft_core.finetune.policies import ResidualPolicy, mlp
from deft_core.grasp import GRASP_DIM


class CVAEPolicy(ResidualPolicy):
    kind = "deft"
    uses_prior = True  #: whether ξ is part of the condition c

    def _cond(self, feats: torch.Tensor, xi_n: torch.Tensor) -> torch.Tensor:
        return torch.cat([feats, xi_n], dim=1) if self.uses_prior else feats

    def build_heads(self, feature_dim: int) -> None:
        cond_dim = feature_dim + (GRASP_DIM if self.uses_prior else 0)
        latent, hidden = self.config.latent_dim, self.config.hidden
        self.net.q = mlp(GRASP_DIM + cond_dim, hidden, 2 * latent)   # q(z | δ, c) → (μ, log σ²)
        self.net.p = mlp(latent + cond_dim, hidden, GRASP_DIM)       # p(δ | z, c) mean

    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, target_n: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net.q(torch.cat([target_n, cond], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-10.0, 10.0)

    def decode(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.net.p(torch.cat([z, cond], dim=1))

    def elbo_terms(self, feats, xi_n, target_n, gen) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample (reconstruction ½‖·‖², KL) in nats, normalised units."""
        cond = self._cond(feats, xi_n)
        mu, logvar = self.encode(target_n, cond)
        noise = torch.randn(mu.shape, generator=gen)
        z = mu + torch.exp(0.5 * logvar) * noise
        recon = 0.5 * ((self.decode(z, cond) - target_n) ** 2).sum(dim=1)
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1.0 - logvar).sum(dim=1)
        return recon, kl

    def loss(self, feats, xi_n, target_n, reward_n, gen):
        recon, kl = self.elbo_terms(feats, xi_n, target_n, gen)
        return (recon + self.config.beta * kl).mean()

    def predict(self, feats, xi_n, z):
        if z is None:
            z = torch.zeros(len(feats), self.config.latent_dim)
        return self.decode(z, self._cond(feats, xi_n))


class DirectVAEPolicy(CVAEPolicy):
    """Table 3's "direct parameter estimation": a VAE over ξ̂ = ξ + ε conditioned on φ(I₀) only."""

    kind = "direct"
    uses_prior = False

    def target_of(self, xi: np.ndarray, delta: np.ndarray) -> np.ndarray:
        return xi + delta

    def delta_from(self, xi: np.ndarray, target: np.ndarray) -> np.ndarray:
        return target - xi
