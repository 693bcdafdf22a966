"""Configuration of the affordance model f(v'1, T) → (μ̂, θ̂_wrist, P̂) and of its training.

Two presets (:data:`PRESETS`):

- ``paper`` — the paper's Appendix D: ResNet-18 at 224×224, deconvolutions (256, 128, 64) with skip
  connections after the 512-channel layer4 (VRB's head), transformer 512 wide, 8 heads, 6 layers,
  MLP hidden 576 → 48; Adam, lr 2e-4, cosine schedule, batch 224, 70 epochs.
- ``tiny`` — the same architecture, small: 96×96 input, a 128-wide 2-layer transformer, batch 32,
  a few epochs; trains in minutes on 2 CPU cores (for tests, CI and the embedded default world).

Everything is plain dataclasses that round-trip through JSON (checkpoint ``config.json``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

#: Output of the pose head: 3 wrist axis-angle + 45 MANO finger axis-angle values.
WRIST_DIM = 3
POSE_DIM = 45
OUT_DIM = WRIST_DIM + POSE_DIM

#: ImageNet statistics (R3M and torchvision ResNets both expect them), RGB order, on [0, 1] pixels.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelConfig:
    """Architecture. ``image_size`` is the square side (px) the object crop is resized to.

    ``visual_encoder``: ``resnet`` (torchvision) or ``r3m`` (R3M checkpoint); ``visual_arch``:
    ``resnet18`` / ``resnet50``; ``visual_weights``: a local weights file or None (random init; never
    downloaded). ``text_encoder``: id of the text backend (see :mod:`deft_core.affordance.encoders`),
    e.g. ``minilm``, ``clip:ViT-B-32``, ``hash:256``; ``text_dim`` its embedding width.
    ``num_points`` K contact heatmaps / points. ``deconv_channels``: output widths of the three
    transposed convolutions (the first two receive skip connections from layer3 and layer2).
    """

    image_size: int = 224
    visual_encoder: str = "resnet"
    visual_arch: str = "resnet18"
    visual_weights: str | None = None
    text_encoder: str = "minilm"
    text_dim: int = 384
    num_points: int = 5
    deconv_channels: tuple[int, int, int] = (256, 128, 64)
    d_model: int = 512
    n_heads: int = 8
    n_layers: int = 6
    mlp_hidden: int = 576
    dropout: float = 0.1
    text_film: bool = True

    def __post_init__(self) -> None:
        self.deconv_channels = tuple(int(c) for c in self.deconv_channels)
        if len(self.deconv_channels) != 3:
            raise ValueError(f"deconv_channels must have 3 entries, got {self.deconv_channels}")
        if self.image_size % 32 != 0 or self.image_size < 64:
            raise ValueError(f"image_size must be a multiple of 32 and ≥ 64, got {self.image_size}")
        if self.visual_encoder not in ("resnet", "r3m"):
            raise ValueError(f"visual_encoder must be 'resnet' or 'r3m', got {self.visual_encoder!r}")
        if self.visual_arch not in ("resnet18", "resnet50"):
            raise ValueError(f"visual_arch must be 'resnet18' or 'resnet50', got {self.visual_arch!r}")
        if self.d_model % self.n_heads != 0:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        # the text encoder's name and width, checked where the config is made (the training job's driver)
        # instead of in every Train worker's first batch ("text_emb must be (B, 384), got (2, 64)")
        name, _, arg = str(self.text_encoder).partition(":")
        if name not in ("minilm", "clip", "hash"):
            raise ValueError(f"unknown text encoder {self.text_encoder!r}: minilm, clip:ARCH or hash:DIM")
        if name == "hash" and arg and not arg.isdigit():
            raise ValueError(f"text encoder {self.text_encoder!r}: hash:DIM takes a whole number, e.g. hash:64")
        # clip's width depends on its architecture: not checked here
        width = 384 if name == "minilm" else int(arg or 256) if name == "hash" else None
        if width is not None and self.text_dim != width:
            raise ValueError(f"text encoder {self.text_encoder!r} gives {width}-d embeddings but text_dim is "
                             f"{self.text_dim} (--text-dim {width})")


@dataclass
class TrainConfig:
    """Optimisation and data handling. Loss weights are Eq. 1's λμ, λθ, λP."""

    epochs: int = 70
    batch_size: int = 224
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    lambda_mu: float = 1.0
    lambda_theta: float = 0.1
    lambda_pose: float = 0.1
    val_fraction: float = 0.1
    max_targets: int = 8
    augment: bool = True
    seed: int = 0
    #: per ``hand_pose_source`` weight of the wrist/pose loss terms (absent sources: 1.0), e.g.
    #: {"mediapipe": 0.0} to learn wrist and pose only from exact labels (HOI4D's fits)
    hand_label_weights: dict = field(default_factory=dict)
    #: "fp32", or "bf16": forward pass and loss under bfloat16 autocast (weights, optimiser state, gradients
    #: and the export stay float32; validation runs in float32). Meant for GPUs with bfloat16 tensor cores
    #: (A100, H100); with the paper's ResNet-18 on a lent H200 it gave no dependable gain (×0.96–1.17: the
    #: step waits on the data), and on a CPU it is usually slower. docs/affordance-model.md "On a GPU".
    precision: str = "fp32"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {v!r} (--{name.replace('_', '-')})")
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction} (--val-fraction)")
        if not float(self.lr) > 0:
            raise ValueError(f"lr must be positive, got {self.lr} (--lr)")


@dataclass
class Preset:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _tiny() -> Preset:
    return Preset(
        model=ModelConfig(image_size=96, text_encoder="minilm", text_dim=384, d_model=128, n_heads=8,
                          n_layers=2, mlp_hidden=192, deconv_channels=(256, 128, 64), dropout=0.0),
        train=TrainConfig(epochs=8, batch_size=32, lr=1e-3, lambda_mu=1.0, lambda_theta=0.1, lambda_pose=0.1),
    )


PRESETS: dict[str, Any] = {"paper": Preset, "tiny": _tiny}


def get_preset(name: str) -> Preset:
    """A fresh copy of a named preset (``paper`` or ``tiny``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name]()


def dataclass_from_dict(cls, data: Mapping[str, Any], where: str):
    """Build dataclass ``cls`` from a JSON mapping, refusing unknown keys (naming them and ``where``)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown {cls.__name__} fields {unknown}")
    return cls(**dict(data))
