"""Image encoders φ(I₀) for the residual policies, and the image preprocessing they share.

- ``small_cnn``: a 3-layer CNN trained with the policy (default; fast on CPU, no weights needed).
- ``resnet18``: torchvision's ResNet-18 trunk (512-d pooled features), frozen; weights from a local
  ``.safetensors`` file (``weights``) or random (seeded) — never downloaded. Needs torchvision
  (``pip install 'deft[train]'``).

Images are RGB uint8 H × W × 3 (the camera's initial image I₀), resized to ``image_size`` square with
area interpolation, scaled to [0, 1] and normalised with the ImageNet mean/std.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ENCODER_KINDS = ("small_cnn", "resnet18")


@dataclass(frozen=True)
class EncoderConfig:
    """``kind`` (one of ENCODER_KINDS), ``image_size`` (pixels, square input), ``feature_dim``
    (small_cnn output size; resnet18 is always 512), ``weights`` (resnet18: local safetensors path or
    None for random), ``trainable`` (small_cnn: trained with the policy; resnet18 is always frozen)."""

    kind: str = "small_cnn"
    image_size: int = 64
    feature_dim: int = 64
    weights: str | None = None
    trainable: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ENCODER_KINDS:
            raise ValueError(f"unknown image encoder {self.kind!r}; choose one of {', '.join(ENCODER_KINDS)}")
        if self.image_size < 16:
            raise ValueError(f"EncoderConfig.image_size must be >= 16 pixels, got {self.image_size}")
        if self.kind == "resnet18" and self.trainable:
            object.__setattr__(self, "trainable", False)

    @property
    def output_dim(self) -> int:
        return 512 if self.kind == "resnet18" else self.feature_dim

    def to_dict(self) -> dict:
        return asdict(self)


def preprocess_images(images: list[np.ndarray] | np.ndarray, image_size: int, center_crop: bool = False) -> torch.Tensor:
    """RGB uint8 images (each H × W × 3, any size) → float tensor B × 3 × S × S, ImageNet-normalised.

    Default: the whole image resized to S × S (aspect squashed). ``center_crop``: ImageNet's and R3M's
    evaluation preprocessing instead — the shorter side to S·256/224, then the central S × S (aspect kept,
    borders dropped), what those encoders' published features expect."""
    import cv2

    out = np.empty((len(images), 3, image_size, image_size), np.float32)
    for i, img in enumerate(images):
        img = np.asarray(img)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"image {i} must be an H×W×3 uint8 RGB array, got shape {img.shape} dtype {img.dtype}")
        if center_crop:
            h, w = img.shape[:2]
            short = int(round(image_size * 256 / 224))
            nh, nw = (short, max(short, int(round(w * short / h)))) if h <= w else (max(short, int(round(h * short / w))), short)
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
            y0, x0 = (nh - image_size) // 2, (nw - image_size) // 2
            img = img[y0:y0 + image_size, x0:x0 + image_size]
            small = img.astype(np.float32) / 255.0
        else:
            small = cv2.resize(img, (image_size, image_size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        out[i] = ((small - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
    return torch.from_numpy(out)


class SmallCNN(nn.Module):
    """Three strided convolutions, global average pooling and a linear layer → ``feature_dim``."""

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(64, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


class FrozenResNet18(nn.Module):
    """ResNet-18 without its classifier (512-d), parameters frozen, always in eval mode."""

    def __init__(self, weights: str | None) -> None:
        super().__init__()
        try:
            from torchvision.models import resnet18
        except ImportError as exc:
            raise ImportError("the resnet18 image encoder needs torchvision: pip install 'deft[train]'") from exc
        net = resnet18(weights=None)
        net.fc = nn.Identity()
        if weights is not None:
            path = Path(weights)
            if not path.exists():
                raise FileNotFoundError(f"resnet18 encoder weights not found: {path} (a .safetensors state dict "
                                        "of torchvision's resnet18; set weights=None for random features)")
            from safetensors.torch import load_file

            try:
                state = {k: v for k, v in load_file(str(path)).items() if not k.startswith("fc.")}
            except Exception as exc:  # noqa: BLE001 — safetensors' own error type: not a safetensors file
                raise ValueError(f"{path} is not a readable .safetensors file: {exc}") from None
            missing, unexpected = net.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise ValueError(f"{path} is not a resnet18 state dict: missing {missing[:5]}, unexpected {unexpected[:5]}")
        self.net = net
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()

    def train(self, mode: bool = True) -> "FrozenResNet18":
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net(x)


def build_encoder(config: EncoderConfig) -> nn.Module:
    """The encoder module for ``config`` (weights random unless ``config.weights`` is given)."""
    if config.kind == "small_cnn":
        net = SmallCNN(config.feature_dim)
        if not config.trainable:  # random features, kept fixed: no gradient, nothing for the optimiser
            for p in net.parameters():
                p.requires_grad_(False)
        return net
    return FrozenResNet18(config.weights)
