"""The affordance-sample Parquet schema (DESIGN.md §3) and the errors table.

One row = one grasp extracted from one video clip. Coordinates:

- ``crop_box``: (x1, y1, x2, y2) of the object crop in pixels of the first frame v1.
- ``contact_points`` (K × 2), ``gmm_means`` and ``gmm_vars`` (k × 2): crop-normalised [0, 1],
  x right / y down (variances in the same normalised units squared).
- ``wrist_rotation``: axis-angle (3), camera frame of the contact frame, OpenCV axes.
- ``hand_pose``: 45 MANO axis-angle values, right hand, **flat-hand-mean** convention, MANO joint order
  index/middle/pinky/ring/thumb (3 joints × 3 each).

- ``contact_mapping`` (since schema version 2): how the contact points were carried from the contact
  frame to v1 — ``object`` (a similarity fitted on the object's own features), ``background`` (a
  homography fitted outside the hand and object boxes) or ``identity`` (the contact frame is v1).
- ``contact_points_source`` (since schema version 3): how the points were found at the contact frame,
  one of :data:`CONTACT_POINT_SOURCES` (the paths of pipelines.stages.contact_points).

The schema version is stored both as the ``schema_version`` column and in the Parquet schema metadata.
Change the schema only on purpose: bump :data:`deft_core.version.SCHEMA_VERSION` and add a test. Shards of
an older version in :data:`deft_core.version.READABLE_SCHEMA_VERSIONS` are still accepted
(:func:`check_table_schema`): a column added later (:data:`ADDED_IN`) may be missing from them and reads
as null (:func:`upgrade_row`).
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa

from deft_core.version import PIPELINE_VERSION, READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION

DATASETS = ("ego4d", "epic_kitchens", "hoi4d")
HAND_POSE_DIM = 45
WRIST_DIM = 3

_f32 = pa.float32()
_point = pa.list_(_f32, 2)

AFFORDANCE_FIELDS: list[pa.Field] = [
    # identity
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("action_id", pa.string(), nullable=False),
    pa.field("fps", pa.float64(), nullable=False),
    pa.field("first_frame", pa.int64(), nullable=False),
    pa.field("contact_frame", pa.int64(), nullable=False),
    pa.field("frame_width", pa.int32(), nullable=False),
    pa.field("frame_height", pa.int32(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("verb", pa.string()),
    pa.field("noun", pa.string()),
    # image
    pa.field("crop_jpeg", pa.binary(), nullable=False),
    pa.field("crop_box", pa.list_(_f32, 4), nullable=False),
    # contact
    pa.field("contact_points", pa.list_(_point), nullable=False),
    pa.field("gmm_means", pa.list_(_point), nullable=False),
    pa.field("gmm_vars", pa.list_(_point), nullable=False),
    # hand
    pa.field("wrist_rotation", pa.list_(_f32, WRIST_DIM), nullable=False),
    pa.field("hand_pose", pa.list_(_f32, HAND_POSE_DIM), nullable=False),
    pa.field("hand_pose_source", pa.string(), nullable=False),
    # text embedding (optional: computed in the pipeline or at training time)
    pa.field("text_embedding", pa.list_(_f32)),
    pa.field("text_encoder", pa.string()),
    # quality / provenance
    pa.field("hand_score", _f32),
    pa.field("object_score", _f32),
    pa.field("homography_inliers", pa.int32()),
    pa.field("contact_mapping", pa.string()),
    pa.field("contact_points_source", pa.string()),
    pa.field("pipeline_version", pa.string(), nullable=False),
    pa.field("schema_version", pa.int32(), nullable=False),
]

#: the values of ``contact_mapping`` (pipelines.stages.contact_mapping.MAPPINGS)
CONTACT_MAPPINGS = ("object", "background", "identity")
#: how reports name samples without a ``contact_mapping`` (version-1 shards, rows written without one)
MAPPING_NOT_RECORDED = "not recorded"

#: the values of ``contact_points_source``: the skin-colour recipe's paths, and the dataset-mask ones.
#: ``hand_mask_{contour,skin,box}`` were written only by the first schema-3 extraction (2026-11-27), when a
#: mask's hand missed the hand box; such clips now take the skin recipe on the frame. Still valid to read.
CONTACT_POINT_SOURCES = ("grasp_centre", "contour", "skin", "box", "hand_mask", "hand_mask_depth",
                         "hand_mask_contour", "hand_mask_skin", "hand_mask_box")

#: columns added after schema version 1 → the version that added them (older shards lack them)
ADDED_IN: dict[str, int] = {"contact_mapping": 2, "contact_points_source": 3}

AFFORDANCE_SCHEMA: pa.Schema = pa.schema(
    AFFORDANCE_FIELDS, metadata={b"deft.schema": b"affordance_sample", b"deft.schema_version": str(SCHEMA_VERSION).encode()}
)

ERRORS_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=False),
        pa.field("pipeline_version", pa.string(), nullable=False),
    ],
    metadata={b"deft.schema": b"errors", b"deft.schema_version": str(SCHEMA_VERSION).encode()},
)


class SchemaError(ValueError):
    """A row or table does not match the affordance-sample contract."""


def make_sample_id(dataset: str, video_id: str, action_id: str) -> str:
    """Deterministic id from (dataset, video, action): re-runs produce the same ids (idempotent)."""
    key = f"{dataset}\x1f{video_id}\x1f{action_id}".encode()
    return f"{dataset}-{hashlib.sha1(key).hexdigest()[:16]}"


def _check_points(name: str, value: Any, max_val: float | None = None) -> None:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
        raise SchemaError(f"{name} must be a non-empty K×2 array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise SchemaError(f"{name} has non-finite values")


def validate_row(row: Mapping[str, Any]) -> None:
    """Check one sample against the contract's semantics (beyond Arrow types). Raises SchemaError."""
    names = {f.name for f in AFFORDANCE_FIELDS if not f.nullable}
    missing = sorted(n for n in names if row.get(n) is None)
    if missing:
        raise SchemaError(f"sample is missing required fields {missing}")
    if row["dataset"] not in DATASETS:
        raise SchemaError(f"unknown dataset {row['dataset']!r}; expected one of {DATASETS}")
    if row["contact_frame"] < row["first_frame"]:
        raise SchemaError(f"contact_frame {row['contact_frame']} precedes first_frame {row['first_frame']}")
    box = np.asarray(row["crop_box"], dtype=np.float64)
    if box.shape != (4,) or not (box[2] > box[0] and box[3] > box[1]):
        raise SchemaError(f"crop_box must be (x1, y1, x2, y2) with x2 > x1 and y2 > y1, got {box.tolist()}")
    for name in ("contact_points", "gmm_means", "gmm_vars"):
        _check_points(name, row[name])
    cp = np.asarray(row["contact_points"], dtype=np.float64)
    if cp.min() < -1e-6 or cp.max() > 1 + 1e-6:
        raise SchemaError("contact_points must be crop-normalised to [0, 1]")
    if np.asarray(row["gmm_vars"]).min() < 0:
        raise SchemaError("gmm_vars must be non-negative")
    if len(row["wrist_rotation"]) != WRIST_DIM or len(row["hand_pose"]) != HAND_POSE_DIM:
        raise SchemaError("wrist_rotation must have 3 values and hand_pose 45")
    if not bytes(row["crop_jpeg"][:2]) == b"\xff\xd8":
        raise SchemaError("crop_jpeg is not JPEG data")
    if row.get("contact_mapping") is not None and row["contact_mapping"] not in CONTACT_MAPPINGS:
        raise SchemaError(f"contact_mapping {row['contact_mapping']!r} is not one of {CONTACT_MAPPINGS}")
    if row.get("contact_points_source") is not None and row["contact_points_source"] not in CONTACT_POINT_SOURCES:
        raise SchemaError(f"contact_points_source {row['contact_points_source']!r} is not one of {CONTACT_POINT_SOURCES}")
    if row["schema_version"] != SCHEMA_VERSION:
        raise SchemaError(f"schema_version {row['schema_version']} != supported {SCHEMA_VERSION}")


def rows_to_table(rows: Iterable[Mapping[str, Any]], validate: bool = True) -> pa.Table:
    """Build an Arrow table with the exact affordance schema, filling version fields when absent."""
    rows = list(rows)
    filled = []
    for r in rows:
        r = dict(r)
        r.setdefault("schema_version", SCHEMA_VERSION)
        r.setdefault("pipeline_version", PIPELINE_VERSION)
        for f in AFFORDANCE_FIELDS:
            r.setdefault(f.name, None)
            v = r[f.name]
            if isinstance(v, np.ndarray):
                r[f.name] = v.tolist()
        if validate:
            validate_row(r)
        filled.append(r)
    return pa.Table.from_pylist(filled, schema=AFFORDANCE_SCHEMA)


def table_version(table_schema: pa.Schema) -> int:
    """A shard's schema version: its metadata's, or — for a shard written without our metadata (another
    tool) — the newest readable version whose added columns (:data:`ADDED_IN`) it has."""
    version = (table_schema.metadata or {}).get(b"deft.schema_version")
    if version is not None:
        return int(version)
    names = set(table_schema.names)
    return max(v for v in READABLE_SCHEMA_VERSIONS if all(n in names for n, added in ADDED_IN.items() if added <= v))


def check_table_schema(table_schema: pa.Schema) -> int:
    """Refuse a table whose schema differs from the contract, naming the first difference; return its version.

    A shard of an older readable version (:data:`deft_core.version.READABLE_SCHEMA_VERSIONS`) passes
    without the columns added after it (:data:`ADDED_IN`); every other column must be there with its type."""
    version = table_version(table_schema)
    if version not in READABLE_SCHEMA_VERSIONS:
        raise SchemaError(f"shard schema_version {version} is not supported: this code reads versions "
                          f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))} and writes {SCHEMA_VERSION}")
    for f in AFFORDANCE_FIELDS:
        if f.name not in table_schema.names:
            if ADDED_IN.get(f.name, 1) > version:
                continue
            raise SchemaError(f"shard is missing column {f.name!r}")
        actual = table_schema.field(f.name).type
        if actual != f.type:
            raise SchemaError(f"column {f.name!r} has type {actual}, expected {f.type}")
    return version


def upgrade_row(row: Mapping[str, Any]) -> dict:
    """A row read from a shard of any readable version, with the columns its version lacks set to None."""
    out = dict(row)
    for name in ADDED_IN:
        out.setdefault(name, None)
    return out
