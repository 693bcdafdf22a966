"""Table 3's alternative residual policies: an MLP regressor and a reward-conditioned transformer.

``mlp``: δ̂ = MLP(φ(I₀), ξ), trained on the top-10 episodes with a squared error in normalised units.
It predicts the conditional mean, so it cannot represent several good residuals for one input (the
multi-modality the paper blames for its failure on Pour Cup).

``transformer``: an offline, return-conditioned model in the spirit of Decision Transformer [79]. The
tokens are the image feature, the prior's three parts (μ, θ, P), the episode's reward and a learned
query token; a transformer encoder mixes them and the query token's output is read out as δ̂. It is
trained on *all* episodes of the run (low rewards included: that is what the reward conditioning
learns from); at test time it is queried with the maximum reward seen in training.

``mean``: δ̂ = the mean residual of the top-k episodes for every input — no learning, no conditioning;
the mean lives in the checkpoint's target normaliser, so it saves and loads like the others.
"""

from __future__ import annotations

import torch
from torch import nn

from deft_core.finetune.policies import PolicyConfig, ResidualPolicy, mlp
from deft_core.grasp import GRASP_DIM, HAND, MU, THETA


class MLPPolicy(ResidualPolicy):
    kind = "mlp"

    def build_heads(self, feature_dim: int) -> None:
        self.net.head = mlp(feature_dim + GRASP_DIM, self.config.hidden, GRASP_DIM)

    def loss(self, feats, xi_n, target_n, reward_n, gen):
        return 0.5 * ((self.predict(feats, xi_n, None) - target_n) ** 2).sum(dim=1).mean()

    def predict(self, feats, xi_n, z):
        return self.net.head(torch.cat([feats, xi_n], dim=1))


class RewardTransformerPolicy(ResidualPolicy):
    kind = "transformer"
    NUM_TOKENS = 6  # query, image, μ, θ, P, reward
    reward_conditioned = True

    @classmethod
    def default_config(cls) -> PolicyConfig:
        return PolicyConfig(top_k=None)

    def build_heads(self, feature_dim: int) -> None:
        d = self.config.d_model
        if d % self.config.heads:
            raise ValueError(f"d_model ({d}) must be divisible by heads ({self.config.heads})")
        net = self.net
        net.tok_image = nn.Linear(feature_dim, d)
        net.tok_mu = nn.Linear(3, d)
        net.tok_theta = nn.Linear(3, d)
        net.tok_hand = nn.Linear(16, d)
        net.tok_reward = nn.Linear(1, d)
        net.query = nn.Parameter(torch.zeros(1, 1, d))
        net.position = nn.Parameter(0.02 * torch.randn(1, self.NUM_TOKENS, d))
        layer = nn.TransformerEncoderLayer(d, self.config.heads, dim_feedforward=2 * d, dropout=0.0,
                                           batch_first=True, norm_first=True)
        net.transformer = nn.TransformerEncoder(layer, self.config.layers, enable_nested_tensor=False)
        net.out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, GRASP_DIM))
        # The reward to condition on at test time (normalised max training reward); set by fit.
        net.register_buffer("query_reward", torch.zeros(1))

    def _forward(self, feats, xi_n, reward_n):
        net = self.net
        tokens = torch.stack([
            net.query.expand(len(feats), 1, -1)[:, 0], net.tok_image(feats), net.tok_mu(xi_n[:, MU]),
            net.tok_theta(xi_n[:, THETA]), net.tok_hand(xi_n[:, HAND]), net.tok_reward(reward_n)], dim=1)
        return net.out(net.transformer(tokens + net.position)[:, 0])

    def loss(self, feats, xi_n, target_n, reward_n, gen):
        self.net.query_reward.copy_(reward_n.max().reshape(1))
        return 0.5 * ((self._forward(feats, xi_n, reward_n) - target_n) ** 2).sum(dim=1).mean()

    def predict(self, feats, xi_n, z):
        reward_n = self.net.query_reward.expand(len(feats)).reshape(-1, 1)
        return self._forward(feats, xi_n, reward_n)


class EliteMeanPolicy(ResidualPolicy):
    kind = "mean"
    needs_training = False

    def build_heads(self, feature_dim: int) -> None:
        pass

    def loss(self, feats, xi_n, target_n, reward_n, gen):
        raise RuntimeError("the elite-mean policy has nothing to train")

    def predict(self, feats, xi_n, z):
        return torch.zeros(len(feats), GRASP_DIM)  # de-normalised: exactly the elites' mean residual
