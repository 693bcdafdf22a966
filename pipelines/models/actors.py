"""Ray Data callable classes for the model stages: load the model once per actor, run it per batch.

Use with an actor pool (``fn_constructor_kwargs`` carries the backend name and options)::

    ds = ds.map_batches(HandObjectActor, fn_constructor_kwargs={"backend": "hands23", ...,
                        "out_dir": out}, **model_stage_kwargs(num_gpus=1, concurrency=8, batch_size=4))

Each ``__call__`` takes a batch of clip-record rows (:meth:`ClipRecord.to_row` columns; a pandas
DataFrame or a dict of columns) and returns the same rows with the record's ``contact`` JSON extended
by the stage's result, so the CPU stage after it (:class:`pipelines.stages.process.ExtractBatch`) sees
it. A clip whose model call fails is retried ``retries`` times, then recorded in ``contact`` as
``"<stage>_error"`` (the CPU stage turns that into an errors-table row) — never fatal to the job.
Rows keep their content and order; no Ray import is needed to call an actor directly (tests do).

CPU fallback: ``device="auto"`` picks CUDA when the actor was given a GPU, else CPU.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

import numpy as np

from pipelines.sources.base import ClipRecord

log = logging.getLogger(__name__)


def model_stage_kwargs(num_gpus: float = 0, concurrency: int | tuple[int, int] = 1, batch_size: int = 4,
                       num_cpus: float | None = None) -> dict[str, Any]:
    """``map_batches`` keyword arguments for an actor-pool model stage: ``concurrency`` actors (or an
    autoscaling ``(min, max)`` range) as ``compute=ActorPoolStrategy`` (map_batches' ``concurrency=`` is
    deprecated since Ray 2.51), ``num_gpus`` each (0: CPU actors), ``batch_size`` rows per call, batches as
    pandas."""
    import ray

    pool = (ray.data.ActorPoolStrategy(min_size=concurrency[0], max_size=concurrency[1])
            if isinstance(concurrency, tuple) else ray.data.ActorPoolStrategy(size=concurrency))
    kw: dict[str, Any] = {"compute": pool, "batch_size": batch_size, "batch_format": "pandas"}
    if num_gpus:
        kw["num_gpus"] = num_gpus
    if num_cpus is not None:
        kw["num_cpus"] = num_cpus
    return kw


def bound_object_store(max_bytes: float) -> None:
    """Cap the object-store memory Ray Data's streaming executor may fill with in-flight blocks (per
    job, in bytes); beyond it, upstream stages are throttled instead of buffering a whole dataset.
    Call in the driver before building the dataset."""
    import ray.data

    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.resource_limits = ctx.execution_options.resource_limits.copy(object_store_memory=float(max_bytes))


def _frame(batch) -> "Any":
    import pandas as pd

    return batch.copy() if isinstance(batch, pd.DataFrame) else pd.DataFrame(batch)


def _with_retries(fn: Callable, retries: int):
    last: Exception | None = None
    for _attempt in range(retries + 1):
        try:
            return fn(), None
        except Exception as exc:  # a bad clip must not take the actor (and the job) down
            last = exc
    return None, f"{type(last).__name__}: {last}"


class _RecordActor:
    """Shared loop: per row, rebuild the ClipRecord, run ``self._one``, store the result in contact."""

    key = ""

    def __init__(self, retries: int = 1):
        self.retries = retries

    def _one(self, record: ClipRecord) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, batch):
        df = _frame(batch)
        contacts = []
        for row in df.to_dict("records"):
            rec = ClipRecord.from_row(row)
            contact = dict(rec.contact)
            if self.key in contact:  # already done (resumed run): keep it
                contacts.append(json.dumps(contact, sort_keys=True))
                continue
            result, error = _with_retries(lambda: self._one(rec), self.retries)
            contact.pop(f"{self.key}_error", None)
            if error is None:
                contact[self.key] = result
            else:
                log.warning("%s failed for %s: %s", self.key, rec.sample_id, error)
                contact[f"{self.key}_error"] = error
            contacts.append(json.dumps(contact, sort_keys=True))
        df["contact"] = contacts
        return df


class HandObjectActor(_RecordActor):
    """Hand-object detections for each clip (GPU stage before the contact frame). Writes
    ``OUT/hand-objects/<backend>/<sample_id>.pkl`` in the EPIC-100 format and sets
    ``contact["model_detections"] = {"path", "frames", "backend"}`` for
    :class:`pipelines.models.contact.ModelContact`."""

    key = "model_detections"

    def __init__(self, backend: str, out_dir: str, backend_options: dict | None = None, stride: int = 1,
                 max_frames: int | None = 256, frames_per_call: int = 16, retries: int = 1, detector=None):
        super().__init__(retries)
        from pipelines.models.base import make_hand_object_detector

        self.detector = detector or make_hand_object_detector(backend, **(backend_options or {}))
        self.out_dir, self.stride, self.max_frames, self.frames_per_call = out_dir, stride, max_frames, frames_per_call

    def _one(self, record: ClipRecord) -> dict:
        from pipelines.models.contact import detect_clip_hand_objects

        return detect_clip_hand_objects(record, self.detector, self.out_dir, self.stride, self.max_frames, self.frames_per_call)


def query_for(record: ClipRecord) -> str:
    """The phrase to query an open-vocabulary detector with: the annotated noun (EPIC ``noun``, Ego4D
    noun), with EPIC's ``"noun:modifier"`` form turned into ``"modifier noun"``; else the narration's
    last word."""
    noun = (record.noun or "").strip()
    if noun:
        parts = [p for p in noun.replace("_", " ").split(":") if p]
        return " ".join(reversed(parts)) if len(parts) > 1 else parts[0]
    words = [w for w in (record.text or "").replace("#C", " ").split() if w.isalpha()]
    if not words:
        raise ValueError(f"{record.sample_id}: no noun and no narration to query the object detector with")
    return words[-1].lower()


class ObjectBoxActor(_RecordActor):
    """Open-vocabulary boxes of the clip's object in v1 (the paper's Detic crop), queried with
    :func:`query_for`. Sets ``contact["v1_object_boxes"] = {"query", "backend", "boxes": [[x1, y1, x2,
    y2, score], ...]}`` (pixels of the decoded v1, best first, at most ``top_k``)."""

    key = "v1_object_boxes"

    def __init__(self, backend: str, backend_options: dict | None = None, top_k: int = 5, retries: int = 1, boxer=None):
        super().__init__(retries)
        from pipelines.models.base import make_object_boxer

        self.boxer = boxer or make_object_boxer(backend, **(backend_options or {}))
        self.top_k = top_k

    def _one(self, record: ClipRecord) -> dict:
        from pipelines.stages.video import read_frames

        query = query_for(record)
        v1 = read_frames(record.video_path, [record.decode_index(record.first_frame)])[0]
        dets = self.boxer.detect([v1], [[query]])[0][: self.top_k]
        boxes = [[round(float(v), 3) for v in d.box] + [round(d.score, 6)] for d in dets]
        return {"query": query, "backend": self.boxer.name, "boxes": boxes}


class SegmentActor:
    """SAM masks for image rows: columns ``image`` (encoded JPEG/PNG bytes, e.g. ``crop_jpeg``) and
    ``prompt_box`` (x1, y1, x2, y2 in that image's pixels; empty/None → the whole image). Adds
    ``mask_png`` (PNG bytes, 0/255), ``mask_box`` (tight box, or None for an empty mask), ``mask_score``
    and ``mask_error`` (null, or why the row has no mask: an undecodable image, a bad prompt)."""

    def __init__(self, backend: str = "sam", backend_options: dict | None = None, segmenter=None):
        from pipelines.models.segment import make_segmenter

        self.segmenter = segmenter or make_segmenter(backend, **(backend_options or {}))

    def _one(self, row: dict):
        import cv2

        bgr = cv2.imdecode(np.frombuffer(row["image"], np.uint8), cv2.IMREAD_COLOR) if row.get("image") else None
        if bgr is None:
            raise ValueError("image bytes do not decode as JPEG/PNG")
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        prompt = row.get("prompt_box")
        if prompt is None or len(prompt) == 0:
            prompt = [0, 0, rgb.shape[1], rgb.shape[0]]
        m = self.segmenter.segment_boxes(rgb, [list(prompt)])[0]
        b = m.box()
        return cv2.imencode(".png", m.mask.astype(np.uint8) * 255)[1].tobytes(), (None if b is None else b.tolist()), m.score

    def __call__(self, batch):
        df = _frame(batch)
        cols: dict[str, list] = {"mask_png": [], "mask_box": [], "mask_score": [], "mask_error": []}
        for row in df.to_dict("records"):
            try:
                png, box, score = self._one(row)
                err = None
            except Exception as exc:  # one bad row must not fail the batch
                png, box, score, err = None, None, None, f"{type(exc).__name__}: {exc}"
            for k, v in zip(cols, (png, box, score, err)):
                cols[k].append(v)
        for k, v in cols.items():
            df[k] = v
        return df
