"""Small fake affordance shards with a LEARNABLE signal, written with the real schema.

Each crop shows a cup (coloured body + a handle on its left or right) at a random place on a textured
background. The labels depend on the image and on the text:

- ``"pick up the cup"`` → contact GMM means on both sides of the body; wrist ≈ WRIST_PICK, pose ≈ POSE_PICK;
- ``"pour the cup"``    → contact GMM means on the handle; wrist ≈ WRIST_POUR (mirrored with the handle
  side), pose ≈ POSE_POUR.

So a model that reads the image and the text beats the crop-centre / training-mean baselines, and its
contact prediction for the same crop changes with the text.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq

from deft_core.schema import DATASETS, ERRORS_SCHEMA, make_sample_id, rows_to_table

TEXTS = ("pick up the cup", "pour the cup")
WRIST_PICK = np.array([0.0, 0.3, 1.2])
WRIST_POUR = np.array([1.4, 0.0, 0.2])
POSE_PICK = np.tile([0.0, 0.0, 0.9], 15)
POSE_POUR = np.tile([0.0, 0.0, 0.2], 15)


def draw_cup(rng: np.random.Generator, size: int = 96) -> tuple[np.ndarray, dict]:
    """A crop (size × size RGB uint8) with a cup; returns the image and its geometry (normalised)."""
    bg = rng.integers(60, 200, size=3)
    img = np.clip(bg + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
    cx, cy = rng.uniform(0.35, 0.65), rng.uniform(0.38, 0.62)
    hw, hh = rng.uniform(0.10, 0.15), rng.uniform(0.14, 0.2)
    side = 1 if rng.random() < 0.5 else -1
    colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
    hx = cx + side * (hw + 0.07)
    p = lambda x, y: (int(round(x * size)), int(round(y * size)))  # noqa: E731
    cv2.circle(img, p(hx, cy), int(0.07 * size), colour, thickness=max(2, size // 24))
    cv2.rectangle(img, p(cx - hw, cy - hh), p(cx + hw, cy + hh), colour, thickness=-1)
    return img, {"cx": cx, "cy": cy, "hw": hw, "hh": hh, "hx": hx, "side": side}


def labels(geom: dict, text: str, rng: np.random.Generator) -> dict:
    """Contact GMM means / points, wrist and pose for a cup geometry and a text."""
    cx, cy, hw, hx, side = geom["cx"], geom["cy"], geom["hw"], geom["hx"], geom["side"]
    if text == TEXTS[0]:
        means = np.array([[cx - hw, cy], [cx + hw, cy]])
        wrist, pose = WRIST_PICK.copy(), POSE_PICK.copy()
    else:
        means = np.array([[hx, cy - 0.04], [hx, cy + 0.04]])
        wrist, pose = WRIST_POUR * np.array([1, side, side]), POSE_POUR.copy()
    means = np.clip(means + rng.normal(0, 0.01, means.shape), 0.0, 1.0)
    points = np.clip(np.repeat(means, 3, axis=0) + rng.normal(0, 0.015, (6, 2)), 0.0, 1.0)
    return {"gmm_means": means, "gmm_vars": np.full_like(means, 0.0004), "contact_points": points,
            "wrist_rotation": wrist + rng.normal(0, 0.05, 3), "hand_pose": pose + rng.normal(0, 0.05, 45)}


def make_rows(n: int, seed: int = 0, size: int = 96, clips_per_video: int = 4, with_embedding=None) -> list[dict]:
    """``n`` schema-valid rows. ``with_embedding``: an optional text encoder whose embeddings are stored."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        img, geom = draw_cup(rng, size)
        text = TEXTS[int(rng.integers(0, 2))]
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok
        dataset, video = DATASETS[i % 3], f"vid{seed}_{i // clips_per_video:04d}"
        w = rng.uniform(80, 160)
        x1, y1 = rng.uniform(0, 456 - w), rng.uniform(0, 256 - min(w, 250))
        row = {"sample_id": make_sample_id(dataset, video, str(i)), "dataset": dataset, "video_id": video,
               "action_id": str(i), "fps": 30.0, "first_frame": 10, "contact_frame": 25, "frame_width": 456,
               "frame_height": 256, "text": text, "verb": text.split()[0], "noun": "cup", "crop_jpeg": jpeg.tobytes(),
               "crop_box": [x1, y1, x1 + w, y1 + min(w, 250)], "hand_pose_source": "fake"}
        row.update(labels(geom, text, rng))
        if with_embedding is not None:
            row["text_embedding"] = with_embedding.encode([text])[0].tolist()
            row["text_encoder"] = with_embedding.id
        rows.append(row)
    return rows


def write_shards(out_dir: str | Path, n: int, files: int = 2, seed: int = 0, size: int = 96,
                 with_errors_table: bool = True, with_embedding=None) -> list[Path]:
    """Write ``n`` rows split over ``files`` Parquet shards (plus an errors table, which readers skip)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = make_rows(n, seed, size, with_embedding=with_embedding)
    paths = []
    for f in range(files):
        part = rows[f::files]
        path = out / f"shard-{f:05d}.parquet"
        pq.write_table(rows_to_table(part), path)
        paths.append(path)
    if with_errors_table:
        import pyarrow as pa

        err = pa.Table.from_pylist([{"sample_id": "x", "dataset": "ego4d", "video_id": "v", "stage": "contact",
                                     "error": "no hand", "pipeline_version": "0"}], schema=ERRORS_SCHEMA)
        pq.write_table(err, out / "errors.parquet")
    return paths
