"""Extraction quality against the synthetic ground truth (``<root>/_groundtruth/``, evaluation only).

Metrics per dataset and hand-pose backend (:func:`evaluate`):

- ``valid_extracted_fraction``: valid clips (right hand, contact, not deliberately corrupted) that became
  samples / valid clips;
- ``contact_frame_error_frames``: |predicted − true contact frame| (dataset numbering);
- ``contact_point_error_pct`` (headline): distance between the mean of the predicted contact points and
  the mean of the true ones, in % of the crop side — the robot uses the mean of the predicted points as
  its contact target (paper §3.2), so that is the error it inherits. True points are those of the true
  contact frame, carried to v1 through the true camera motion at the fingertips' depth
  (:func:`true_points_in_v1`), and compared in v1 pixels with the predicted points (crop-normalised in
  the row, mapped back with the row's ``crop_box``), so both sides are in the same frame and crop;
- ``contact_point_nn_error_pct``: mean distance from each predicted point to the nearest true point
  (also % of the crop side); ``gmm_mean_error_pct`` the same for the GMM means;
- what the truth is: ``true_contact_points`` (how many MuJoCo hand–object contacts the true contact
  frame has: one per touching geom pair, typically 1–3, occluded ones included) and
  ``true_contact_spread_pct`` (their mean distance from their own centroid, % of the crop side). With
  one to three points the true centroid is where the first-touching finger segments are, not the
  centre of a contact area: read the contact-point errors with that in mind (docs/extraction-jobs.md);
- ``wrist_rotation_error_deg``: geodesic angle between predicted and true wrist rotation at the
  predicted contact frame (so it measures the pose estimator, not the contact detector);
- ``contact_point_error_by_mapping``: the contact-point error's statistics per dataset and per value of the
  shard's ``contact_mapping`` (how the points reached v1: ``object``, ``background``, ``identity``; "not
  recorded" for samples without one, e.g. from schema-version-1 shards); ``contact_point_error_by_source``
  the same per ``contact_points_source`` (skin colour's ``grasp_centre`` etc., or HOI4D's masks:
  ``hand_mask``, ``hand_mask_depth``; "not recorded" before schema version 3);
- ``hand_pose_error_deg``: mean over the 15 joints of the geodesic angle between predicted and true
  joint rotations; ``hand_pose_max_abs`` the largest absolute difference of the 45 values.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from deft_core.geometry import axis_angle_to_matrix, rotation_angle_between
from deft_core.schema import MAPPING_NOT_RECORDED, make_sample_id, upgrade_row
from pipelines.stages.crop import to_crop_normalised
from pipelines.stages.writer import error_shards


class QualityInputError(ValueError):
    """An extraction output or ground-truth file that cannot be read (the message names the file)."""


def _read_rows(path: Path) -> list[dict]:
    import pyarrow as pa

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as exc:  # garbage bytes, a truncated shard
        raise QualityInputError(f"{path}: not a readable Parquet shard ({exc})") from None


def load_truth(root: str | Path) -> dict[str, dict]:
    """sample_id → sidecar clip record (with ``_npz`` path) for a generated dataset root."""
    root = Path(root)
    path = root / "_groundtruth" / "clips.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"ground-truth sidecar not found: {path}")
    out = {}
    for k, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise QualityInputError(f"{path}: line {k} is not valid JSON (truncated or malformed: {exc})") from None
        missing = [key for key in ("clip_id", "dataset", "video_id", "annotation_id") if key not in rec] \
            if isinstance(rec, dict) else ["(not a JSON object)"]
        if missing:
            raise QualityInputError(f"{path}: line {k} lacks {', '.join(missing)} (not a ground-truth clip record)")
        rec["_npz"] = str(root / "_groundtruth" / f"{rec['clip_id']}.npz")
        ds = rec["dataset"]
        action = "seq" if ds == "hoi4d" else rec["annotation_id"]
        out[make_sample_id(ds, rec["video_id"], action)] = rec
    if not out:
        raise QualityInputError(f"{path} lists no clips (a synthesis that did not finish?)")
    return out


def _load_npz(path: str):
    try:
        return np.load(path)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise QualityInputError(f"ground-truth file {path} is missing or damaged ({type(exc).__name__}: {exc})") from None


def load_samples(shards: str | Path) -> tuple[list[dict], list[dict]]:
    shards = Path(shards)
    if not (shards / "data").is_dir() and not (shards / "errors").is_dir():
        raise FileNotFoundError(f"{shards}: no data/ or errors/ folder (not an extraction output)")
    # samples of an older schema version get the columns it lacks as None (upgrade_row)
    rows = [upgrade_row(r) for p in sorted((shards / "data").glob("part-*.parquet")) for r in _read_rows(p)]
    errs = [r for p in error_shards(shards) for r in _read_rows(p)]  # oldest first: a clip's latest reason wins
    return rows, errs


def is_valid(rec: dict) -> bool:
    return rec["has_contact"] and rec["hand_side"] == "right" and not rec.get("corrupt")


def true_points_in_v1(rec: dict, z, first_frame: int) -> np.ndarray:
    """True contact points (px) of the true contact frame, carried to v1 through the true camera motion:
    each point is back-projected at the depth of the hand's fingertips (MANO forward kinematics of the
    true pose; the contacts are under the fingers), moved by the camera poses and projected with K."""
    from deft_core.mano import mano_joint_positions

    c = rec["contact_frame_clip"]
    pts = z["contact_points"][z["contact_points_frame"] == c].astype(np.float64)
    t1 = first_frame - rec["frame_offset"]
    if len(pts) == 0 or not (0 <= t1 < len(z["camera_pose_world"])) or t1 == c:
        return pts
    K = z["K"]
    pose48 = np.concatenate([z["wrist_rotation"][c], z["hand_pose"][c]]).astype(np.float64)
    tips = mano_joint_positions(pose48, z["hand_trans"][c].astype(np.float64))[16:]
    depth = float(np.median(tips[:, 2]))
    rays = np.linalg.solve(K, np.concatenate([pts, np.ones((len(pts), 1))], 1).T).T
    X = rays / rays[:, 2:3] * depth
    T = np.linalg.inv(z["camera_pose_world"][t1]) @ z["camera_pose_world"][c]
    X1 = X @ T[:3, :3].T + T[:3, 3]
    uv = X1 @ K.T
    return uv[:, :2] / uv[:, 2:3]


def _crop_holds_true_object(crop_box: np.ndarray, z, t1: int) -> bool | None:
    """Whether the sample's crop (v1) contains the centre of the true object box at v1 (None when the truth
    has no box there). :func:`evaluate` warns when fewer than half do: wrong objects cropped, or a truth of
    other scenes under the same clip ids (shards extracted before their manifests recorded the synthesis)."""
    boxes = z["object_boxes"]
    if not 0 <= t1 < len(boxes) or not np.all(np.isfinite(boxes[t1])):
        return None
    c = (boxes[t1][:2] + boxes[t1][2:]) / 2
    return bool(crop_box[0] <= c[0] <= crop_box[2] and crop_box[1] <= c[1] <= crop_box[3])


def _centroid_error(pred_px: np.ndarray, true_px: np.ndarray, side: float) -> float:
    return float(100 * np.linalg.norm(pred_px.mean(0) - true_px.mean(0)) / side)


def _spread(true_px: np.ndarray, side: float) -> float:
    """Mean distance of the true points from their centroid, % of the crop side (0 for one point)."""
    return float(100 * np.linalg.norm(true_px - true_px.mean(0), axis=1).mean() / side)


def _point_error(pred_px: np.ndarray, true_px: np.ndarray, side: float) -> float:
    d = np.linalg.norm(pred_px[:, None] - true_px[None], axis=2).min(1)
    return float(100 * d.mean() / side)


def crop_frame(crop_box) -> tuple:
    """(crop-normalised points → v1 pixels, the crop side in px that percentages are relative to) for a
    sample's ``crop_box``: per axis, the inverse of extraction's ``to_crop_normalised``; the side is the
    longer one (a crop is square unless the frame clipped it, when the object is as tall as the frame)."""
    box = np.asarray(crop_box, float)
    size = box[2:] - box[:2]
    return (lambda p: box[:2] + np.asarray(p, float).reshape(-1, 2) * size), float(size.max())


def per_sample(row: dict, rec: dict) -> dict:
    z = _load_npz(rec["_npz"])
    box = np.asarray(row["crop_box"], float)
    to_px, side = crop_frame(box)  # the inverse of to_crop_normalised
    tp = true_points_in_v1(rec, z, row["first_frame"])
    t = int(np.clip(row["contact_frame"] - rec["frame_offset"], 0, len(z["wrist_rotation"]) - 1))
    Rp, Rt = axis_angle_to_matrix(np.asarray(row["wrist_rotation"])), axis_angle_to_matrix(z["wrist_rotation"][t])
    Jp = axis_angle_to_matrix(np.asarray(row["hand_pose"]).reshape(15, 3))
    Jt = axis_angle_to_matrix(z["hand_pose"][t].reshape(15, 3))
    out = {"sample_id": row["sample_id"], "clip_id": rec["clip_id"], "dataset": row["dataset"], "backend": row["hand_pose_source"],
           "contact_mapping": row["contact_mapping"],  # None in schema-version-1 shards (upgrade_row)
           "contact_points_source": row.get("contact_points_source"),  # None before schema version 3
           "contact_frame_error_frames": abs(int(row["contact_frame"]) - int(rec["contact_frame"])),
           "wrist_rotation_error_deg": float(np.degrees(rotation_angle_between(Rp, Rt))),
           "hand_pose_error_deg": float(np.degrees(rotation_angle_between(Jp, Jt)).mean()),
           "hand_pose_max_abs": float(np.max(np.abs(np.asarray(row["hand_pose"]) - z["hand_pose"][t]))),
           "contact_point_error_pct": None, "contact_point_nn_error_pct": None, "gmm_mean_error_pct": None,
           "true_contact_points": int(len(tp)), "true_contact_spread_pct": None,
           "crop_holds_true_object": _crop_holds_true_object(box, z, row["first_frame"] - rec["frame_offset"])}
    if len(tp):
        out["contact_point_error_pct"] = _centroid_error(to_px(row["contact_points"]), tp, side)
        out["contact_point_nn_error_pct"] = _point_error(to_px(row["contact_points"]), tp, side)
        out["gmm_mean_error_pct"] = _point_error(to_px(row["gmm_means"]), tp, side)
        out["true_contact_spread_pct"] = _spread(tp, side)
        out["_true_px_in_crop"] = to_crop_normalised(tp, box).tolist()
    return out


def _stats(values) -> dict:
    v = np.array([x for x in values if x is not None], float)
    if v.size == 0:
        return {"n": 0}
    return {"n": int(v.size), "median": float(np.median(v)), "mean": float(v.mean()), "p90": float(np.percentile(v, 90)),
            "max": float(v.max())}


METRICS = ("contact_frame_error_frames", "contact_point_error_pct", "contact_point_nn_error_pct", "gmm_mean_error_pct", "wrist_rotation_error_deg",
           "hand_pose_error_deg", "hand_pose_max_abs", "true_contact_points", "true_contact_spread_pct")


def _check_same_synthesis(shards: str | Path, truth_root: str | Path) -> None:
    """Refuse a truth from another synthesis than the one the shards were extracted from: every seed's
    synthesis has the same clip ids, so the samples would be joined to other scenes and scored without a
    word. Compared: the dataset, seed and clip count the extraction recorded of its input (manifest
    ``source.synthetic``, since 2026-11-27) and the truth's own manifest; older shards are not checked."""
    try:
        was = json.loads((Path(shards) / "manifest.json").read_text()).get("source", {}).get("synthetic")
        truth = json.loads((Path(truth_root) / "_groundtruth" / "manifest.json").read_text())
    except (OSError, ValueError, AttributeError):
        return
    if not was or not isinstance(truth, dict):
        return
    now = {k: truth.get(k) for k in was}
    if now != was:
        raise QualityInputError(f"{shards} was extracted from another synthesis than the truth in {truth_root} "
                                f"({', '.join(f'{k} {was[k]!r} vs {now[k]!r}' for k in was if was[k] != now[k])}); "
                                "give the truth of the dataset the shards came from")


def evaluate(shards: str | Path, truth_root: str | Path) -> tuple[dict, list[dict], list[dict]]:
    """→ (report dict, per-sample records, rows) for one extraction output against one sidecar."""
    truth = load_truth(truth_root)
    rows, errs = load_samples(shards)
    _check_same_synthesis(shards, truth_root)
    valid = {sid for sid, rec in truth.items() if is_valid(rec)}
    # Accuracy is measured on valid clips only; a sample extracted from a clip the truth calls invalid
    # (no contact, left hand, corrupted) has nothing to compare with and is counted as a false positive.
    known = [r for r in rows if r["sample_id"] in truth]
    if rows and not known:
        raise QualityInputError(f"none of the {len(rows)} samples in {shards} is a clip of the truth in {truth_root} "
                                f"(samples of {', '.join(sorted({str(r['dataset']) for r in rows}))}; truth of "
                                f"{', '.join(sorted({str(t['dataset']) for t in truth.values()}))})")
    samples = [per_sample(r, truth[r["sample_id"]]) for r in rows if r["sample_id"] in valid]
    judged = [s["crop_holds_true_object"] for s in samples if s["crop_holds_true_object"] is not None]
    warnings = []
    if len(judged) >= 3 and sum(judged) < 0.5 * len(judged):  # wrong objects cropped, or other scenes
        warnings.append(f"only {sum(judged)} of {len(judged)} crops contain the true object at v1: is this the "
                        "synthesis these shards were extracted from?")
    groups, by_mapping, by_source = defaultdict(list), defaultdict(list), defaultdict(list)
    for s in samples:
        groups[(s["dataset"], s["backend"])].append(s)
        # the headline contact-point error split by how the points reached v1 (the shard's contact_mapping)
        by_mapping[f"{s['dataset']}/{s['contact_mapping'] or MAPPING_NOT_RECORDED}"].append(s["contact_point_error_pct"])
        # ... and by how they were found at the contact frame (skin colour, or the dataset's masks)
        by_source[f"{s['dataset']}/{s['contact_points_source'] or MAPPING_NOT_RECORDED}"].append(s["contact_point_error_pct"])
    extracted = {r["sample_id"] for r in rows} & valid
    err_by = {e["sample_id"]: f"{e['stage']}: {e['error'][:160]}" for e in errs}
    report = {
        "shards": str(shards), "truth": str(truth_root),
        "clips_in_truth": len(truth), "valid_clips": len(valid), "samples": len(rows),
        "valid_extracted": len(extracted), "valid_extracted_fraction": len(extracted) / len(valid) if valid else None,
        "invalid_clips_extracted": len({r["sample_id"] for r in rows} - valid),
        "crops_holding_the_true_object": f"{sum(judged)}/{len(judged)}",  # the truth matches the shards
        "valid_missed": {truth[s]["clip_id"]: err_by.get(s, "no sample and no error row") for s in sorted(valid - extracted)},
        "groups": {f"{d}/{b}": {m: _stats(s[m] for s in g) for m in METRICS} for (d, b), g in groups.items()},
        "contact_point_error_by_mapping": {k: _stats(v) for k, v in sorted(by_mapping.items())},
        "contact_point_error_by_source": {k: _stats(v) for k, v in sorted(by_source.items())},
        "warnings": warnings,
    }
    return report, samples, rows


def gmm_ellipses(means, variances, width: int, height: int, n_sigma: float = 1.0) -> list[tuple]:
    """``(centre_px, width_px, height_px)`` of each GMM component's ``n_sigma`` ellipse in a crop of
    ``width`` × ``height`` pixels; the shards store diagonal variances in crop-normalised units."""
    m = np.asarray(means, float).reshape(-1, 2)
    sd = np.sqrt(np.clip(np.asarray(variances, float).reshape(-1, 2), 0.0, None))
    scale = np.array([width, height], float)
    return [(tuple(mu * scale), 2 * n_sigma * s[0] * width, 2 * n_sigma * s[1] * height) for mu, s in zip(m, sd)]


def draw_examples(rows: list[dict], samples: list[dict], path: str | Path, max_items: int = 8) -> Path:
    """PNG grid: crops with predicted contact points (red), GMM means with their 1-σ ellipses (blue) and
    true points (green); each title names how the points were found (``contact_points_source``)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse
    from PIL import Image

    by_id = {r["sample_id"]: r for r in rows}
    items = [s for s in samples if s["sample_id"] in by_id][:max_items]
    n = max(1, len(items))
    cols = min(4, n)
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(3 * cols, 3 * ((n + cols - 1) // cols)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, s in zip(axes.ravel(), items):
        r = by_id[s["sample_id"]]
        img = np.asarray(Image.open(io.BytesIO(r["crop_jpeg"])).convert("RGB"))
        h, w = img.shape[:2]
        ax.imshow(img)
        cp, gm = np.asarray(r["contact_points"]).reshape(-1, 2), np.asarray(r["gmm_means"]).reshape(-1, 2)
        ax.scatter(cp[:, 0] * w, cp[:, 1] * h, c="red", s=18, label="predicted")
        ax.scatter(gm[:, 0] * w, gm[:, 1] * h, c="blue", marker="x", s=30, label="GMM means (1 σ)")
        if r.get("gmm_vars") is not None:
            for centre, ew, eh in gmm_ellipses(r["gmm_means"], r["gmm_vars"], w, h):
                ax.add_patch(Ellipse(centre, max(ew, 1.0), max(eh, 1.0), fill=False, ec="blue", lw=0.8))
        if s.get("_true_px_in_crop"):
            tp = np.asarray(s["_true_px_in_crop"])
            ax.scatter(tp[:, 0] * w, tp[:, 1] * h, c="lime", s=10, label="true")
        err = s["contact_point_error_pct"]
        how = f" · {r['contact_points_source']}" if r.get("contact_points_source") else ""
        ax.set_title(f"{s['clip_id']} {r['text'][:18]}\nerr {err:.1f}%{how}" if err is not None
                     else f"{s['clip_id']}{how}", fontsize=8)
    axes.ravel()[0].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
