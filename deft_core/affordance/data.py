"""Shard rows → training tensors. Pure numpy: used by Ray Data ``map_batches`` and by a plain loop.

A decoded batch (all numpy, numeric only, so ``iter_torch_batches`` can carry it):

- ``image`` (B, S, S, 3) uint8 RGB — the object crop ``crop_jpeg`` resized to S×S (aspect not kept,
  as VRB's ``Resize((224, 224))``);
- ``text_emb`` (B, D) float32 — the shard's ``text_embedding`` when its ``text_encoder`` matches the
  model's, otherwise computed with that encoder;
- ``target_points`` (B, T, 2) float32 GMM means (crop-normalised x right / y down), zero-padded to
  T = ``max_targets``, with ``target_mask`` (B, T) float32; extra means beyond T are dropped;
- ``wrist`` (B, 3), ``pose`` (B, 45) float32 (axis-angle, camera frame / MANO flat-hand-mean);
- ``hand_weight`` (B,) float32: how much the wrist/pose labels count in the loss, from the row's
  ``hand_pose_source`` through ``hand_label_weights`` (default 1; e.g. ``{"mediapipe": 0}`` trains the wrist
  and pose heads only on trusted labels);
- ``crop_wh`` (B, 2) float32 — the crop's size in original-frame pixels (for errors in px).

The train/validation split is by video: :func:`is_validation` hashes ``dataset/video_id``, so every clip
of a video falls on the same side whatever the shard order, the worker count or the run.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import cv2
import numpy as np
import pyarrow.parquet as pq

from deft_core.affordance.encoders import make_text_encoder, text_encoder_matches
from deft_core.schema import SchemaError, check_table_schema

DECODED_KEYS = ("image", "text_emb", "target_points", "target_mask", "wrist", "pose", "crop_wh", "hand_weight")
_SPLIT_SALT = "deft-affordance-split-v1"
#: shard columns the training data paths read (plain loop, in-worker and Ray Data)
READ_COLUMNS = ["sample_id", "dataset", "video_id", "text", "crop_jpeg", "crop_box", "gmm_means", "wrist_rotation",
            "hand_pose", "hand_pose_source", "text_embedding", "text_encoder"]


def is_validation(dataset: str, video_id: str, val_fraction: float) -> bool:
    """Deterministic split by video: True when ``dataset/video_id`` hashes below ``val_fraction``."""
    h = hashlib.sha1(f"{_SPLIT_SALT}\x1f{dataset}\x1f{video_id}".encode()).digest()
    return int.from_bytes(h[:8], "little") / 2**64 < val_fraction


def hand_label_weight(weights: Mapping[str, float], source: Any) -> float:
    """Weight of a row's wrist/pose loss terms for its ``hand_pose_source`` (absent sources: 1)."""
    return float(weights.get(str(source), 1.0))


def list_shard_files(dirs: Sequence[str | Path]) -> list[str]:
    """All affordance-sample Parquet files under ``dirs`` (recursively, sorted), skipping errors tables.
    Raises FileNotFoundError naming the directories when there are none, SchemaError on a bad shard."""
    files: list[str] = []
    for d in dirs:
        p = Path(d)
        if not p.exists():
            raise FileNotFoundError(f"shard directory not found: {p}")
        for f in sorted([p] if p.is_file() else p.rglob("*.parquet")):
            try:
                schema = pq.read_schema(f)
            except (OSError, ValueError) as exc:  # pyarrow.ArrowInvalid is a ValueError
                raise SchemaError(f"{f}: not a readable Parquet shard ({exc})") from None
            if (schema.metadata or {}).get(b"deft.schema") == b"errors" or "stage" in schema.names:
                continue
            check_table_schema(schema)
            files.append(str(f))
    if not files:
        raise FileNotFoundError(f"no affordance shards (*.parquet) under {[str(d) for d in dirs]}")
    return files


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes → (H, W, 3) uint8 RGB. Raises ValueError on undecodable data."""
    img = cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("crop_jpeg could not be decoded as JPEG")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _column(batch: Any, name: str) -> list:
    col = batch[name]
    return list(col.to_numpy() if hasattr(col, "to_numpy") else col)


def _points(v: Any) -> np.ndarray:
    return np.asarray([np.asarray(p, np.float32) for p in v], np.float32).reshape(-1, 2)


def colour_jitter(img: np.ndarray, rng: np.random.Generator, strength: float = 0.3) -> np.ndarray:
    """Random brightness, contrast and saturation (factors in [1 − strength, 1 + strength]).

    Computed in float64 in place, with the channel mean summed channel by channel: the same bytes as the
    plain ``x = img.astype(float32) * b; x = (x - x.mean()) * c + x.mean(); grey = x.mean(axis=2,
    keepdims=True); x = (x - grey) * s + grey; clip; astype(uint8)`` (NumPy 2 promotes to float64 at ``* b``;
    tests/affordance/test_data.py keeps that form as the reference) at a third of its time: its temporaries
    were most of a training batch's decode time, and more so in the read-ahead threads, where each fresh
    large allocation is page-faulted in again (measured: 2× slower than in the main thread)."""
    b, c, s = rng.uniform(1 - strength, 1 + strength, size=3)
    x = img * b  # float64: uint8 · numpy float64 scalar
    m = x.mean()
    x -= m
    x *= c
    x += m
    grey = x[..., 0] + x[..., 1]
    grey += x[..., 2]
    grey /= 3
    grey = grey[..., None]
    x -= grey
    x *= s
    x += grey
    np.clip(x, 0, 255, out=x)
    return x.astype(np.uint8)


class ShardDecoder:
    """Callable batch transform: shard columns → :data:`DECODED_KEYS` (see the module docstring).

    ``augment``: colour jitter and a random crop of 85–100 % of the side (the contact targets move with
    it; rotations are unchanged). Augmentation is seeded from (``seed``, sample_id, epoch) once
    :meth:`set_epoch` was called (what :func:`iter_batches` does: reproducible, the same after a resume,
    independent of batch order and worker count), else from (``seed``, sample_id, call count); ``seed=None``
    draws fresh entropy (used under Ray Data, which re-creates its decode actors on every pass).
    """

    def __init__(self, image_size: int, text_encoder: str, max_targets: int = 8, augment: bool = False, seed: int | None = 0,
                 hand_label_weights: Mapping[str, float] | None = None):
        self.image_size, self.text_encoder_id = int(image_size), text_encoder
        self.hand_label_weights = {str(k): float(v) for k, v in (hand_label_weights or {}).items()}
        self.max_targets, self.augment = int(max_targets), bool(augment)
        self.seed = None if seed is None else int(seed)
        self._encoder = None
        self._cache: dict[str, np.ndarray] = {}
        self._calls = 0
        self._epoch: int | None = None
        self._lock = threading.Lock()  # iter_batches(threads=N) calls one decoder from N threads

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def set_epoch(self, epoch: int) -> None:
        """Key the augmentation on ``epoch`` (with ``seed`` and the sample id) instead of the call count."""
        self._epoch = int(epoch)

    def _text(self, texts: list[str], embs: list, ids: list) -> np.ndarray:
        out: list[np.ndarray | None] = []
        for t, e, i in zip(texts, embs, ids):
            out.append(np.asarray(e, np.float32) if (e is not None and text_encoder_matches(i, self.text_encoder_id)) else None)
        with self._lock:  # one encoder, built once, whatever the number of decode threads
            todo = sorted({t for t, o in zip(texts, out) if o is None and t not in self._cache})
            if todo:
                if self._encoder is None:
                    self._encoder = make_text_encoder(self.text_encoder_id)
                self._cache.update(zip(todo, self._encoder.encode(todo)))
        return np.stack([o if o is not None else self._cache[t] for t, o in zip(texts, out)]).astype(np.float32)

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        self._calls += 1
        s, T = self.image_size, self.max_targets
        jpegs, ids = _column(batch, "crop_jpeg"), _column(batch, "sample_id")
        n = len(jpegs)
        out = {"image": np.zeros((n, s, s, 3), np.uint8), "target_points": np.zeros((n, T, 2), np.float32),
               "target_mask": np.zeros((n, T), np.float32), "crop_wh": np.zeros((n, 2), np.float32)}
        boxes, means = _column(batch, "crop_box"), _column(batch, "gmm_means")
        for i in range(n):
            img = decode_jpeg(jpegs[i])
            pts = _points(means[i])[:T]
            if self.augment:
                rng = (np.random.default_rng() if self.seed is None
                       else np.random.default_rng([self.seed, zlib.crc32(str(ids[i]).encode()),
                                              self._calls if self._epoch is None else self._epoch]))
                h, w = img.shape[:2]
                scale = rng.uniform(0.85, 1.0)
                ox, oy = rng.uniform(0, 1 - scale, size=2)
                x0, y0 = int(round(ox * w)), int(round(oy * h))
                x1, y1 = max(x0 + 1, int(round((ox + scale) * w))), max(y0 + 1, int(round((oy + scale) * h)))
                img = colour_jitter(img[y0:y1, x0:x1], rng)
                pts = np.clip((pts - [x0 / w, y0 / h]) / [(x1 - x0) / w, (y1 - y0) / h], 0.0, 1.0)
            out["image"][i] = cv2.resize(img, (s, s), interpolation=cv2.INTER_AREA)
            out["target_points"][i, : len(pts)] = pts
            out["target_mask"][i, : len(pts)] = 1.0
            box = np.asarray(boxes[i], np.float32)
            out["crop_wh"][i] = (box[2] - box[0], box[3] - box[1])
        out["wrist"] = np.stack([np.asarray(v, np.float32) for v in _column(batch, "wrist_rotation")])
        out["pose"] = np.stack([np.asarray(v, np.float32) for v in _column(batch, "hand_pose")])
        sources = _column(batch, "hand_pose_source") if "hand_pose_source" in batch else [None] * n
        out["hand_weight"] = np.array([hand_label_weight(self.hand_label_weights, src) for src in sources], np.float32)
        has_emb = "text_embedding" in batch and "text_encoder" in batch
        embs = _column(batch, "text_embedding") if has_emb else [None] * n
        enc_ids = _column(batch, "text_encoder") if has_emb else [None] * n
        out["text_emb"] = self._text([str(t) for t in _column(batch, "text")], embs, enc_ids)
        return out


def read_split(files: Sequence[str], split: str, val_fraction: float) -> "Any":
    """Read shard ``files`` into one pyarrow Table holding only the ``split`` (``train``/``val``/``all``) rows,
    ordered by ``sample_id``: the rows, and so a seeded training run, do not depend on how the extraction
    happened to spread the samples over files (Ray Data's writers do not fix that order)."""
    import pyarrow as pa

    if split not in ("train", "val", "all"):
        raise ValueError(f"split must be train, val or all, got {split!r}")
    tables = [pq.read_table(f, columns=READ_COLUMNS) for f in files]
    table = pa.concat_tables(tables) if tables else None
    if table is not None:
        table = table.sort_by([("sample_id", "ascending")])
    if split == "all":
        return table
    keep = [is_validation(d, v, val_fraction) == (split == "val")
            for d, v in zip(table.column("dataset").to_pylist(), table.column("video_id").to_pylist())]
    return table.filter(pa.array(keep))


def iter_batches(table, batch_size: int, decoder: ShardDecoder, shuffle: bool = False, seed: int = 0,
                 epoch: int = 0, rank: int = 0, world_size: int = 1, threads: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Decode ``table`` inline and yield batches (the plain loop's, and a Ray Train worker's small-data path).

    ``shuffle``: a permutation drawn from (``seed``, ``epoch``). With ``world_size`` > 1 every rank takes the
    same permutation and keeps rows ``rank::world_size``, cut to ``num_rows // world_size`` rows so all ranks
    run the same number of steps (DDP needs that; up to ``world_size − 1`` rows per epoch are skipped, a
    different few each epoch when shuffling). Augmentation is keyed on ``epoch`` (:meth:`ShardDecoder.set_epoch`).

    ``threads`` > 0: that many background threads decode the next batches while the caller trains on this one
    (JPEG decoding and resizing release the GIL). The batches and their order are the same as with
    ``threads=0`` (augmentation is keyed on sample id and epoch, not on call order). On a GPU the inline
    decode is the bottleneck: measured on an H200 with the paper architecture at 224 px, training waited on
    it 63–85 % of each epoch with ``threads`` 0 or 1 (benchmarks/gpu_check.py, docs/affordance-model.md)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} out of range for world_size {world_size}")
    order = np.arange(table.num_rows)
    if shuffle:
        np.random.default_rng([seed, epoch]).shuffle(order)
    if world_size > 1:
        order = order[rank::world_size][: table.num_rows // world_size]
    decoder.set_epoch(epoch)
    starts = iter(range(0, len(order), batch_size))

    def decode(start: int) -> dict[str, np.ndarray]:
        return decoder(table.take(order[start:start + batch_size]).to_pydict())

    if threads <= 0:
        for start in starts:
            yield decode(start)
        return
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="deft-decode")
    try:
        pending = deque(pool.submit(decode, s) for _, s in zip(range(2 * threads), starts))  # range first: zip must not draw a start it drops
        while pending:
            batch = pending.popleft().result()
            nxt = next(starts, None)
            if nxt is not None:
                pending.append(pool.submit(decode, nxt))
            yield batch
    finally:  # the consumer stopped early or a decode failed: drop the read-ahead
        pool.shutdown(wait=True, cancel_futures=True)
