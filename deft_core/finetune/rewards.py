"""Reward sources for Algorithm 1 (paper §3.2 and Table 3's reward ablation), as callables
``reward_fn(query: RewardQuery) -> float | VOID`` for :func:`deft_core.finetune.loop.run_finetune`.

- ``operator``: :class:`OperatorReward` asks a person for a score in [0, 1] through an injected
  ``ask(prompt) -> str`` callback (the CLI supplies the terminal prompt); bad answers are re-asked,
  ``v``/``void`` marks the attempt void so it is redone.
- ``sim``: :func:`deft_core.finetune.loop.task_reward`, the simulator's own task reward.
- ``r3m`` / ``resnet``: :class:`EmbeddingReward`, the negative Euclidean distance between the embeddings
  of the episode's final image and the goal image (the last frame of the task's human demo). Higher is
  better; values are ≤ 0 and only their order matters to CEM. Encoders: :func:`resnet18_embedder`
  (torchvision ResNet-18, local weights or random) and :func:`r3m_embedder` (an R3M checkpoint file).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np

from deft_core.finetune.loop import VOID, RewardQuery

VOID_WORDS = ("v", "void")


class OperatorInputError(ValueError):
    """An operator answer that is neither a score in [0, 1] nor 'void'."""


def parse_operator_score(text: str) -> "float | type(VOID)":
    """``"0.7"`` → 0.7, ``"v"``/``"void"`` → VOID; anything else raises :class:`OperatorInputError`."""
    answer = text.strip().lower()
    if answer in VOID_WORDS:
        return VOID
    try:
        score = float(answer)
    except ValueError:
        raise OperatorInputError(f"{text.strip()!r} is not a number; type a score from 0 to 1, or 'v' to void") from None
    if not math.isfinite(score):
        raise OperatorInputError(f"{text.strip()!r} is not a finite number; type a score from 0 to 1, or 'v' to void")
    if not 0.0 <= score <= 1.0:
        raise OperatorInputError(f"{text.strip()!r} is outside [0, 1]; type a score from 0 to 1, or 'v' to void")
    return score


class OperatorReward:
    """The operator reward source. ``ask(prompt)`` returns the operator's answer; ``tell(message)``
    shows a correction after a bad answer. Re-asks until the answer parses (at most ``max_asks`` times
    when given, then raises)."""

    def __init__(self, ask: Callable[[str], str], tell: Callable[[str], None] = lambda message: None,
                 max_asks: int | None = None) -> None:
        self.ask, self.tell, self.max_asks = ask, tell, max_asks

    def prompt(self, query: RewardQuery) -> str:
        seen = "" if query.result.success is None else f" (task check: {'success' if query.result.success else 'failure'})"
        redo = f", redo {query.attempt}" if query.attempt else ""
        return f"episode {query.episode}{redo}{seen}: score 0-1, or 'v' to void > "

    def __call__(self, query: RewardQuery):
        asks = 0
        while True:
            asks += 1
            try:
                return parse_operator_score(self.ask(self.prompt(query)))
            except OperatorInputError as exc:
                if self.max_asks is not None and asks >= self.max_asks:
                    raise
                self.tell(str(exc))


class EmbeddingReward:
    """R = −‖φ(final image) − φ(goal image)‖₂ with ``embed`` an image → 1-d feature function.
    Images are RGB uint8 H × W × 3. An episode without a final image is void (redone)."""

    def __init__(self, embed: Callable[[np.ndarray], np.ndarray], goal_image: np.ndarray) -> None:
        self.embed = embed
        self.goal = np.asarray(embed(goal_image), dtype=np.float64).ravel()

    def __call__(self, query: RewardQuery):
        if query.result.final_image is None:
            return VOID
        feature = np.asarray(self.embed(query.result.final_image), dtype=np.float64).ravel()
        if feature.shape != self.goal.shape:
            raise ValueError(f"embedding of the final image has shape {feature.shape}, goal has {self.goal.shape}")
        return -float(np.linalg.norm(feature - self.goal))


def _torch_embedder(net, image_size: int) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    from deft_core.finetune.encoders import preprocess_images

    net.eval()

    def embed(image: np.ndarray) -> np.ndarray:
        with torch.no_grad():  # R3M's / ImageNet's own preprocessing: Resize(256) + CenterCrop(224), not a squash
            return net(preprocess_images([image], image_size, center_crop=True))[0].double().numpy()

    return embed


def resnet18_embedder(weights: str | Path | None = None, image_size: int = 224, seed: int = 0):
    """ResNet-18 pooled features (512-d); ``weights`` a local torchvision-format ``.safetensors`` file
    (None: random weights seeded by ``seed`` — the ranking is then only as good as random features)."""
    import torch

    from deft_core.finetune.encoders import FrozenResNet18

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FrozenResNet18(None if weights is None else str(weights))
    return _torch_embedder(net, image_size)


R3M_ARCHS = ("resnet18", "resnet34", "resnet50")


def r3m_embedder(weights: str | Path, arch: str = "resnet50", image_size: int = 224):
    """R3M's visual encoder from its published checkpoint file (``model.pt``: a dict whose ``"r3m"``
    entry holds ``module.convnet.*`` tensors). Read with ``torch.load(weights_only=True)`` (tensors
    only, no code), or from a ``.safetensors`` file with the same key names."""
    import torch

    try:
        import torchvision.models as tvm
    except ImportError as exc:
        raise ImportError("the r3m reward needs torchvision: pip install 'deft[train]'") from exc
    if arch not in R3M_ARCHS:
        raise ValueError(f"unknown R3M architecture {arch!r}; choose one of {', '.join(R3M_ARCHS)}")
    path = Path(weights)
    if not path.exists():
        raise FileNotFoundError(f"R3M weights not found: {path} (download R3M's model.pt for {arch} and pass its path)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "r3m" in state:
        state = state["r3m"]
    prefix = "module.convnet."
    convnet = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and not k[len(prefix):].startswith("fc.")}
    if not convnet:
        raise ValueError(f"{path} has no '{prefix}*' tensors; is it an R3M checkpoint?")
    net = getattr(tvm, arch)(weights=None)
    net.fc = torch.nn.Identity()
    missing, unexpected = net.load_state_dict(convnet, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path} does not match R3M {arch}: missing {missing[:4]}, unexpected {unexpected[:4]}")
    for p in net.parameters():
        p.requires_grad_(False)
    return _torch_embedder(net, image_size)
