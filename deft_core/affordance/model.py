"""The task-conditioned affordance model f(v'1, T) → (μ̂, θ̂_wrist, P̂) (paper §3.1, Appendix D).

Architecture (VRB's head, ``shikharbahl/vrb`` ``networks/model.py``, plus DEFT's transformer):

- visual trunk: ResNet-18/50 (``resnet`` or ``r3m`` weights) → layer2/3/4 spatial features;
- contact branch: three 2×2 stride-2 transposed convolutions (512 → 256 → 128 → 64 for ResNet-18)
  with skip connections (the first two outputs are added to layer3 and layer2, through a 1×1 lateral
  projection when widths differ), two conv blocks → K heatmaps at stride 4 → a 2-D spatial softmax →
  K expected points (x, y) in crop-normalised [0, 1] (x right, y down; pixel centres at (i + 0.5)/W).
  **Deviation, on purpose:** the text embedding goes through a conditioning MLP (Linear → LayerNorm →
  GELU, ``d_model`` wide), which FiLM-modulates layer4 and every deconvolution output (per-channel scale
  and shift) and generates part of the final 1×1 heatmap filters (a dynamic filter, zero-initialised),
  so the contact prediction depends on the task ("pick up the cup" → body, "pour the cup" → handle).
  The LayerNorm matters: sentence embeddings are small and hashed ones sparse, and with Adam a layer's
  output moves ~lr × ‖input‖₁ per step, so un-normalised text barely steers the heatmaps within a short
  run (measured: 0.5 px swap shift without it). ``text_film=False`` gives the paper's image-only head;
- pose branch: layer4 tokens (1×1 conv to ``d_model`` + learned positions), a projected text token and a
  learned summary token → transformer encoder (8 heads, 6 layers in the paper preset) → MLP (hidden
  576) → 48 = wrist axis-angle (3, camera frame, OpenCV axes) + 45 MANO finger axis-angle values
  (flat-hand-mean, right hand).

Input image: (B, S, S, 3) RGB in 0..255 (uint8 or float); the model divides by 255 and applies ImageNet
normalisation itself (as R3M's ``forward`` does), so training and the predictor feed raw crops.
"""

from __future__ import annotations

import torch
from torch import nn

from deft_core.affordance.config import IMAGENET_MEAN, IMAGENET_STD, OUT_DIM, POSE_DIM, WRIST_DIM, ModelConfig
from deft_core.affordance.encoders import build_visual_trunk


def spatial_softmax(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, H, W) logits → (probabilities (B, K, H, W), expected points (B, K, 2) as (x, y) in [0, 1])."""
    b, k, h, w = logits.shape
    prob = torch.softmax(logits.reshape(b, k, h * w).float(), dim=-1).reshape(b, k, h, w)
    xs = (torch.arange(w, device=logits.device, dtype=prob.dtype) + 0.5) / w
    ys = (torch.arange(h, device=logits.device, dtype=prob.dtype) + 0.5) / h
    x = (prob.sum(dim=2) * xs).sum(-1)
    y = (prob.sum(dim=3) * ys).sum(-1)
    return prob, torch.stack([x, y], dim=-1)


class FiLM(nn.Module):
    """Per-channel affine modulation from a conditioning vector (small random init, zero bias: close to
    the identity at the start, but text-dependent from the first step)."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.normal_(self.proj.weight, std=0.25 / cond_dim**0.5)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(cond).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return x * (1.0 + gamma) + beta


def _deconv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class AffordanceModel(nn.Module):
    """f(v'1, T). ``forward(image, text_emb)`` → dict with ``points`` (B, K, 2) crop-normalised (x, y),
    ``heatmaps`` (B, K, S/4, S/4) probabilities, ``wrist`` (B, 3) axis-angle (rad, camera frame) and
    ``pose`` (B, 45) MANO axis-angle (rad)."""

    def __init__(self, cfg: ModelConfig, load_visual_weights: bool = True):
        super().__init__()
        self.cfg = cfg
        weights = cfg.visual_weights if load_visual_weights else None
        kind = cfg.visual_encoder if load_visual_weights else "resnet"
        self.trunk = build_visual_trunk(kind, cfg.visual_arch, weights)
        c2, c3, c4 = self.trunk.channels
        d1, d2, d3 = cfg.deconv_channels
        self.register_buffer("pix_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("pix_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0, persistent=False)
        # contact branch
        cond = cfg.d_model
        self.text_cond = nn.Sequential(nn.Linear(cfg.text_dim, cond), nn.LayerNorm(cond), nn.GELU()) if cfg.text_film else None
        self.film4 = FiLM(cond, c4) if cfg.text_film else None
        self.deconv1, self.deconv2, self.deconv3 = _deconv(c4, d1), _deconv(d1, d2), _deconv(d2, d3)
        self.lateral3 = nn.Identity() if c3 == d1 else nn.Conv2d(c3, d1, 1)
        self.lateral2 = nn.Identity() if c2 == d2 else nn.Conv2d(c2, d2, 1)
        self.films = nn.ModuleList([FiLM(cond, c) for c in (d1, d2, d3)]) if cfg.text_film else None
        self.heat_block = nn.Sequential(nn.Conv2d(d3, d3, 3, padding=1), nn.BatchNorm2d(d3), nn.ReLU(inplace=True))
        self.heat_out = nn.Conv2d(d3, cfg.num_points, 1)
        # text-generated part of the final 1×1 filters (dynamic filter): logits_k += <A_k(T), f(p)>
        self.heat_text = nn.Linear(cond, cfg.num_points * d3) if cfg.text_film else None
        if self.heat_text is not None:
            nn.init.zeros_(self.heat_text.weight)
            nn.init.zeros_(self.heat_text.bias)
        # pose branch
        n_tokens = (cfg.image_size // 32) ** 2
        self.vis_proj = nn.Conv2d(c4, cfg.d_model, 1)
        self.text_proj = nn.Linear(cfg.text_dim, cfg.d_model)
        self.pos = nn.Parameter(torch.randn(1, n_tokens + 2, cfg.d_model) * 0.02)
        self.summary = nn.Parameter(torch.zeros(1, 1, cfg.d_model))
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.n_heads, 4 * cfg.d_model, cfg.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Sequential(nn.Linear(cfg.d_model, cfg.mlp_hidden), nn.GELU(), nn.Linear(cfg.mlp_hidden, OUT_DIM))

    def _normalise(self, image: torch.Tensor) -> torch.Tensor:
        s = self.cfg.image_size
        if image.ndim != 4 or image.shape[-1] != 3 or image.shape[1] != s or image.shape[2] != s:
            raise ValueError(f"image batch must be (B, {s}, {s}, 3) RGB 0..255, got {tuple(image.shape)}")
        x = image.permute(0, 3, 1, 2).float()
        return (x - self.pix_mean) / self.pix_std

    def forward(self, image: torch.Tensor, text_emb: torch.Tensor) -> dict[str, torch.Tensor]:
        if text_emb.ndim != 2 or text_emb.shape[1] != self.cfg.text_dim:
            raise ValueError(f"text_emb must be (B, {self.cfg.text_dim}), got {tuple(text_emb.shape)}")
        text_emb = text_emb.float()
        c2, c3, c4 = self.trunk(self._normalise(image))
        # contact branch
        cond = self.text_cond(text_emb) if self.text_cond is not None else None
        x = self.film4(c4, cond) if cond is not None else c4
        x = self.deconv1(x) + self.lateral3(c3)
        x = self.films[0](x, cond) if cond is not None else x
        x = self.deconv2(x) + self.lateral2(c2)
        x = self.films[1](x, cond) if cond is not None else x
        x = self.deconv3(x)
        x = self.films[2](x, cond) if cond is not None else x
        feat = self.heat_block(x)
        logits = self.heat_out(feat)
        if self.heat_text is not None:
            filt = self.heat_text(cond).view(len(feat), self.cfg.num_points, feat.shape[1])
            logits = logits + torch.einsum("bkc,bchw->bkhw", filt, feat)
        heatmaps, points = spatial_softmax(logits)
        # pose branch
        vis = self.vis_proj(c4).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.summary.expand(len(vis), -1, -1), self.text_proj(text_emb).unsqueeze(1), vis], dim=1)
        out = self.head(self.norm(self.transformer(tokens + self.pos)[:, 0]))
        return {"points": points, "heatmaps": heatmaps, "wrist": out[:, :WRIST_DIM], "pose": out[:, WRIST_DIM:WRIST_DIM + POSE_DIM]}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
