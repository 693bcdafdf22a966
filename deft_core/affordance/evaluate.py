"""Validation of an exported affordance checkpoint against trivial baselines, plus a heatmap sheet.

Metrics (per sample, averaged): ``contact_px`` — mean over the sample's GMM means of the distance to the
nearest predicted point, in pixels of the crop in the original frame; ``wrist_deg`` — geodesic angle
between predicted and true wrist rotations; ``pose_deg`` — geodesic angle per MANO joint, averaged over
the 15 joints. Baselines: the crop centre for contact; the training-split mean (arithmetic mean of
the axis-angle vectors) for wrist and pose. ``text_swap_contact_shift_px``: how far the mean predicted
contact moves when a sample's text is replaced by another sample's different text (0 = text ignored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from deft_core.affordance.checkpoint import load_model
from deft_core.affordance.data import ShardDecoder, iter_batches, list_shard_files, read_split
from deft_core.affordance.loss import MetricAccumulator


def _train_means(files: list[str], val_fraction: float) -> tuple[np.ndarray, np.ndarray, int, dict]:
    """Training-split mean wrist (3) and pose (45), the row count, and the same means per hand_pose_source."""
    t = read_split(files, "train", val_fraction) if val_fraction > 0 else read_split(files, "all", 0.0)
    if t.num_rows == 0:
        t = read_split(files, "all", 0.0)
    wrist = np.asarray(t.column("wrist_rotation").to_pylist(), np.float64)
    pose = np.asarray(t.column("hand_pose").to_pylist(), np.float64)
    src = np.asarray([str(x) for x in t.column("hand_pose_source").to_pylist()])
    per_source = {s: (wrist[src == s].mean(0), pose[src == s].mean(0)) for s in np.unique(src)}
    return wrist.mean(0), pose.mean(0), t.num_rows, per_source


def evaluate_checkpoint(checkpoint: str | Path, shards: list[str], split: str = "val", val_fraction: float | None = None,
                        batch_size: int = 64, max_sheet: int = 16, device: str = "cpu") -> dict[str, Any]:
    """Evaluate ``checkpoint`` on ``split`` (``val``/``train``/``all``) of ``shards``.

    ``val_fraction`` defaults to the one the checkpoint was trained with (so ``val`` is its held-out
    videos). Returns the report dict plus ``_sheet`` (crops, heatmaps, points, texts) for drawing."""
    model, raw = load_model(checkpoint, device)
    cfg = model.cfg
    if val_fraction is None:
        val_fraction = float(raw.get("training", {}).get("config", {}).get("train", {}).get("val_fraction", 0.1))
    files = list_shard_files(shards)
    table = read_split(files, split, val_fraction)
    if table.num_rows == 0:
        raise ValueError(f"split {split!r} of {shards} is empty (val_fraction {val_fraction})")
    wrist_mean, pose_mean, n_train, source_means = _train_means(files, val_fraction)
    sources_all = [str(x) for x in table.column("hand_pose_source").to_pylist()]
    by_source: dict[str, dict[str, MetricAccumulator]] = {}
    decoder = ShardDecoder(cfg.image_size, cfg.text_encoder, augment=False)
    acc, centre, mean_base = MetricAccumulator(), MetricAccumulator(), MetricAccumulator()
    shifts, sheet = [], {"image": [], "heat": [], "pred": [], "true": [], "mask": [], "text": []}
    texts_all = [str(t) for t in table.column("text").to_pylist()]
    offset = 0
    with torch.no_grad():
        for b in iter_batches(table, batch_size, decoder):
            n = len(b["image"])
            img, emb = torch.from_numpy(b["image"]).to(device), torch.from_numpy(b["text_emb"]).to(device)
            out = {k: v.cpu().numpy() for k, v in model(img, emb).items()}
            args = (b["target_points"], b["target_mask"], b["crop_wh"])
            acc.add(out["points"], *args, out["wrist"], b["wrist"], out["pose"], b["pose"])
            centre.add(np.full_like(out["points"], 0.5), *args, b["wrist"], b["wrist"], b["pose"], b["pose"])
            mean_base.add(out["points"], *args, np.broadcast_to(wrist_mean, b["wrist"].shape), b["wrist"],
                          np.broadcast_to(pose_mean, b["pose"].shape), b["pose"])
            for src in sorted(set(sources_all[offset:offset + n])):  # wrist/pose per label source
                rows = [i for i in range(n) if sources_all[offset + i] == src]
                accs = by_source.setdefault(src, {"model": MetricAccumulator(), "mean": MetricAccumulator()})
                w_m, p_m = source_means.get(src, (wrist_mean, pose_mean))
                sub = lambda a: np.asarray(a)[rows]  # noqa: E731
                accs["model"].add(sub(out["points"]), sub(args[0]), sub(args[1]), sub(args[2]), sub(out["wrist"]),
                                  sub(b["wrist"]), sub(out["pose"]), sub(b["pose"]))
                accs["mean"].add(sub(out["points"]), sub(args[0]), sub(args[1]), sub(args[2]),
                                 np.broadcast_to(w_m, (len(rows), 3)), sub(b["wrist"]),
                                 np.broadcast_to(p_m, (len(rows), 45)), sub(b["pose"]))
            texts = texts_all[offset:offset + n]
            other = [next((j for j in np.roll(np.arange(n), -1 - i) if texts[j] != texts[i]), None) for i in range(n)]
            idx = [i for i in range(n) if other[i] is not None]
            if idx:
                swapped = model(img[idx], emb[[other[i] for i in idx]])["points"].cpu().numpy()
                d = (swapped.mean(1) - out["points"][idx].mean(1)) * b["crop_wh"][idx]
                shifts.extend(np.linalg.norm(d, axis=-1).tolist())
            take = max(0, min(n, max_sheet - len(sheet["text"])))
            for key, val in (("image", b["image"]), ("heat", out["heatmaps"].sum(1)), ("pred", out["points"]),
                             ("true", b["target_points"]), ("mask", b["target_mask"])):
                sheet[key].extend(list(val[:take]))
            sheet["text"].extend(texts[:take])
            offset += n
    m, c, mb = acc.result(), centre.result(), mean_base.result()
    report = {
        "checkpoint": str(checkpoint), "shards": [str(s) for s in shards], "split": split, "val_fraction": val_fraction,
        "samples": m["samples"], "train_rows_for_mean_baseline": n_train,
        "model": {k: m[k] for k in ("contact_px", "wrist_deg", "pose_deg")},
        "baselines": {"crop_centre_contact_px": c["contact_px"], "train_mean_wrist_deg": mb["wrist_deg"],
                      "train_mean_pose_deg": mb["pose_deg"]},
        # per label source: the model's wrist/pose errors against that source's labels, and the baseline of
        # that source's training-set mean (labels of different quality are not averaged together)
        "by_hand_pose_source": {src: {"samples": a["model"].n,
                                      "model_wrist_deg": a["model"].result()["wrist_deg"],
                                      "model_pose_deg": a["model"].result()["pose_deg"],
                                      "source_mean_wrist_deg": a["mean"].result()["wrist_deg"],
                                      "source_mean_pose_deg": a["mean"].result()["pose_deg"]}
                                for src, a in sorted(by_source.items())},
        "text_swap_contact_shift_px": float(np.mean(shifts)) if shifts else None,
        "text_swap_pairs": len(shifts),
    }
    report["ratio_to_baseline"] = {
        "contact": m["contact_px"] / max(c["contact_px"], 1e-9), "wrist": m["wrist_deg"] / max(mb["wrist_deg"], 1e-9),
        "pose": m["pose_deg"] / max(mb["pose_deg"], 1e-9)}
    report["_sheet"] = sheet
    return report


def draw_sheet(sheet: dict, path: str | Path, cols: int = 4) -> Path:
    """PNG grid: each crop with its summed contact heatmap, predicted points (red ×) and true GMM means
    (green ○), titled with the text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(sheet["text"])
    if n == 0:
        raise ValueError("nothing to draw")
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        ax = axes.ravel()[i]
        img = sheet["image"][i]
        s = img.shape[0]
        ax.imshow(img)
        ax.imshow(sheet["heat"][i], cmap="jet", alpha=0.45, extent=(0, s, s, 0), interpolation="bilinear")
        p, t = sheet["pred"][i] * s, sheet["true"][i][sheet["mask"][i] > 0.5] * s
        ax.scatter(t[:, 0], t[:, 1], s=60, facecolors="none", edgecolors="lime", linewidths=2, label="true")
        ax.scatter(p[:, 0], p[:, 1], s=40, c="red", marker="x", label="predicted")
        ax.set_title(sheet["text"][i][:40], fontsize=8)
    axes.ravel()[0].legend(loc="lower left", fontsize=6)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
