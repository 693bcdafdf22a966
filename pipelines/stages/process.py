"""One clip through every stage: ``process_clip(record, config) -> ClipOutcome`` (a row or an error).

Used by the plain single-process loop (:func:`run_local`) and by the Ray Data jobs
(:class:`ExtractBatch`, a callable class for ``map_batches`` that processes a batch of records and
writes it with the idempotent :func:`~pipelines.stages.writer.write_batch`). Every stage exception is
caught and becomes an errors-table row naming the stage: ``video``, ``contact_frame``,
``contact_points``, ``object_boxes`` (an open-vocabulary model stage's failure, recorded on the record by
:class:`pipelines.models.actors.ObjectBoxActor`), ``crop``, ``hand_pose``, ``text``, ``validate``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from deft_core.schema import validate_row
from deft_core.version import PIPELINE_VERSION, SCHEMA_VERSION
from pipelines.models.open_vocab import refine_object_box
from pipelines.sources.base import ClipRecord
from pipelines.stages import contact_points as cp
from pipelines.stages.contact_mapping import map_contact_to_v1
from pipelines.stages.contact_frame import ContactFrameDetector, make_detector
from pipelines.stages.frame_masks import frame_masks
from pipelines.stages.crop import crop_jpeg, square_box, to_crop_normalised
from pipelines.stages.hand_pose import HandPoseBackend, make_hand_pose_backend
from pipelines.stages.text import TextEncoder, make_text_encoder, normalise_narration
from pipelines.stages.video import read_frames
from pipelines.stages.writer import error_row, write_batch

log = logging.getLogger(__name__)


@dataclass
class ExtractConfig:
    """Extraction settings, written to the manifest as given: ``None`` for ``contact_detector`` and
    ``hand_pose_backend`` means the dataset's default (:meth:`resolved_hand_pose_backend`; resume checks
    compare the resolved names). Pixel units are decoded-frame pixels."""

    dataset: str
    detector_options: dict = field(default_factory=dict)
    #: contact-frame detector name in :data:`~pipelines.stages.contact_frame.DETECTORS` (None: the
    #: dataset's own; ``"model"``: :class:`~pipelines.models.contact.ModelContact` on a hand-object model's detections)
    contact_detector: str | None = None
    hand_pose_backend: str | None = None      #: default: "hoi4d" for HOI4D, required otherwise
    hand_pose_options: dict = field(default_factory=dict)
    text_encoder: str | None = None           #: None: no embedding in the pipeline (computed at training)
    text_encoder_options: dict = field(default_factory=dict)
    num_points: int = 5
    num_sampling: int = 20
    gmm_components: int = 5
    crop_pad_px: float = 20.0
    jpeg_quality: int = 90
    min_homography_inliers: int = 15
    #: map the contact points to v1 on the object's own features first (contact_mapping.py), else the background
    object_mapping: bool = True
    #: use the dataset's own hand/object masks and depth for the contact points where it has them (HOI4D's
    #: 2Dseg, pipelines.stages.frame_masks), else skin colour
    use_masks: bool = True
    seed: int = 0

    def resolved_hand_pose_backend(self) -> str:
        """The hand-pose backend's name (HOI4D defaults to its own fits); a missing or unknown name is a
        ValueError naming the jobs' ``--hand-pose`` flag, raised in the driver before any worker starts."""
        from pipelines.stages.hand_pose import HAND_POSE_BACKENDS, hand_pose_target

        name = self.hand_pose_backend or ("hoi4d" if self.dataset == "hoi4d" else None)
        if name is None:
            raise ValueError(f"no hand-pose backend for dataset {self.dataset!r}: pass --hand-pose "
                             f"{'|'.join(b for b in HAND_POSE_BACKENDS if b != 'hoi4d')} (ExtractConfig.hand_pose_backend)")
        hand_pose_target(name)
        return name

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ClipOutcome:
    sample_id: str
    row: dict | None = None
    error: dict | None = None


class StageFailure(Exception):
    def __init__(self, stage: str, exc: BaseException):
        super().__init__(f"{stage}: {type(exc).__name__}: {exc}")
        self.stage, self.exc = stage, exc


def _run(stage: str, fn: Callable, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # every stage failure becomes an error row, never a crash
        raise StageFailure(stage, exc) from exc


def embed_rows(encoder, rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Set ``text_embedding``/``text_encoder`` on ``rows`` from ``encoder``, in one call; when that call fails
    (a transient out-of-memory, one bad text) each row is tried alone, so only the rows that fail alone
    become ``text`` errors. Returns (embedded rows, error rows)."""
    def encode(batch: list[dict]) -> np.ndarray:
        emb = np.asarray(encoder.encode([r["text"] for r in batch]))
        if len(emb) != len(batch):
            raise ValueError(f"the encoder returned {len(emb)} embeddings for {len(batch)} texts")
        return emb

    try:
        pairs = list(zip(rows, encode(rows)))
    except Exception:  # noqa: BLE001 - narrowed down row by row below
        pairs, failed = [], []
        for r in rows:
            try:
                pairs.append((r, encode([r])[0]))
            except Exception as exc:  # noqa: BLE001 - the clip's error row says why
                failed.append(error_row(r["sample_id"], r["dataset"], r["video_id"], "text", f"embedding: {exc}"))
        if failed:
            log.warning("text embedding failed for %d of %d clips (first: %s)", len(failed), len(rows), failed[0]["error"])
    else:
        failed = []
    for r, e in pairs:
        r["text_embedding"] = np.asarray(e, np.float32).tolist()
        r["text_encoder"] = encoder.encoder_id
    return [r for r, _ in pairs], failed


class ClipProcessor:
    """Holds the per-worker models (detector, hand-pose backend, text encoder): load once, call many."""

    def __init__(self, config: ExtractConfig, detector: ContactFrameDetector | None = None,
                 hand_pose: HandPoseBackend | None = None, text_encoder: TextEncoder | None = None):
        self.config = config
        self.detector = detector or make_detector(config.contact_detector or config.dataset,
                                                      **config.detector_options)
        self.hand_pose = hand_pose or make_hand_pose_backend(config.resolved_hand_pose_backend(), **config.hand_pose_options)
        self.text_encoder = text_encoder or (make_text_encoder(config.text_encoder, **config.text_encoder_options)
                                             if config.text_encoder else None)

    def _row(self, rec: ClipRecord) -> dict:
        c = self.config
        v1 = _run("video", read_frames, rec.video_path, [rec.decode_index(rec.first_frame)])[0]
        h, w = v1.shape[:2]
        contact = _run("contact_frame", self.detector.detect, rec, (w, h))
        if contact.frame < rec.first_frame:
            raise StageFailure("contact_frame", ValueError(f"contact frame {contact.frame} precedes v1 {rec.first_frame}"))
        fc = v1 if contact.frame == rec.first_frame else _run("video", read_frames, rec.video_path, [rec.decode_index(contact.frame)])[0]

        def points() -> tuple:
            masks, why_not = frame_masks(rec, contact.frame, (w, h)) if c.use_masks else (None, "")
            if masks is None and rec.contact.get("mask_dir") and c.use_masks:  # it has masks, this frame's failed
                log.warning("%s: contact points from skin colour, not the dataset's mask: %s", rec.sample_id, why_not)
            elif (masks is not None and masks.object is not None and masks.depth_m is None
                  and rec.contact.get("depth_path")):  # it has depth, unusable
                log.warning("%s: contact points from the hand mask without depth: %s", rec.sample_id, masks.note)
            pts = None
            if masks is not None:
                pts, source = cp.contact_points_from_masks(masks.hand, masks.object, contact.hand_box, contact.object_box,
                                                           masks.depth_m, masks.K, c.num_points, c.num_sampling)
                if pts is None:
                    log.warning("%s: contact points from skin colour, not the dataset's mask: %s", rec.sample_id, source)
            if pts is None:
                pts, source = cp.contact_points_at(fc, contact.hand_box, contact.object_box, c.num_points, c.num_sampling)
            m = map_contact_to_v1(fc, v1, contact.hand_box, contact.object_box, contact.other_boxes or (),
                                  c.min_homography_inliers, use_object=c.object_mapping,
                                  same_frame=contact.frame == rec.first_frame)
            H, inliers = m.H, m.background_inliers  # the column keeps its meaning: the background fit's inliers
            pts1 = cp.apply_homography(H, pts)
            obj1 = cp.map_box(H, contact.object_box)
            obj1 = np.clip(obj1, 0, [w, h, w, h])
            keep = cp._inside(pts1, obj1, tol=4.0)  # points on the touching edge of boxes that only touch
            if not keep.any():
                raise cp.ContactPointsError(f"all {len(pts1)} contact points fall outside the object box in v1")
            return pts1[keep], obj1, inliers, m.how, source

        pts1, obj1, inliers, mapping, source = _run("contact_points", points)
        if rec.contact.get("v1_object_boxes_error"):  # the object-box model stage failed on this clip
            raise StageFailure("object_boxes", RuntimeError(f"object-box model failed: {rec.contact['v1_object_boxes_error']}"))
        if rec.contact.get("v1_object_boxes"):  # an open-vocabulary model's boxes refine the crop's object box
            obj1 = _run("object_boxes", refine_object_box, rec.contact, obj1)
        box = _run("crop", square_box, obj1, (w, h), c.crop_pad_px)
        jpeg = _run("crop", crop_jpeg, v1, box, c.jpeg_quality)
        cpn = np.clip(to_crop_normalised(pts1, box), 0.0, 1.0)
        means, variances = _run("contact_points", cp.fit_gmm, cpn, c.gmm_components, c.seed)
        pose = _run("hand_pose", self.hand_pose.estimate, rec, fc, contact)
        text = normalise_narration(rec.text)
        if not text:
            raise StageFailure("text", ValueError(f"narration {rec.text!r} is empty after normalisation"))
        return {
            "sample_id": rec.sample_id, "dataset": rec.dataset, "video_id": rec.video_id, "action_id": rec.action_id,
            "fps": float(rec.fps), "first_frame": int(rec.first_frame), "contact_frame": int(contact.frame),
            "frame_width": int(w), "frame_height": int(h), "text": text, "verb": rec.verb, "noun": rec.noun,
            "crop_jpeg": jpeg, "crop_box": box.astype(np.float32).tolist(),
            "contact_points": cpn.astype(np.float32).tolist(), "gmm_means": means.astype(np.float32).tolist(),
            "gmm_vars": variances.astype(np.float32).tolist(),
            "wrist_rotation": pose.wrist_rotation.astype(np.float32).tolist(),
            "hand_pose": pose.hand_pose.astype(np.float32).tolist(), "hand_pose_source": pose.source,
            "text_embedding": None, "text_encoder": None,
            "hand_score": contact.hand_score, "object_score": contact.object_score, "homography_inliers": inliers,
            "contact_mapping": mapping, "contact_points_source": source, "pipeline_version": PIPELINE_VERSION, "schema_version": SCHEMA_VERSION,
        }

    def process(self, record: ClipRecord | Mapping[str, Any]) -> ClipOutcome:
        """One record → a validated row or an error row (never raises for a bad clip)."""
        rec = record if isinstance(record, ClipRecord) else ClipRecord.from_row(record)
        try:
            row = self._row(rec)
            _run("validate", validate_row, row)
            return ClipOutcome(rec.sample_id, row=row)
        except StageFailure as f:
            return ClipOutcome(rec.sample_id, error=error_row(rec.sample_id, rec.dataset, rec.video_id, f.stage, str(f.exc) or type(f.exc).__name__))

    def process_many(self, records: Iterable) -> tuple[list[dict], list[dict]]:
        """Process records; text embeddings (if configured) are computed for the batch in one call."""
        rows, errors = [], []
        for r in records:
            o = self.process(r)
            (rows.append(o.row) if o.row is not None else errors.append(o.error))
        if self.text_encoder is not None and rows:
            rows, failed = embed_rows(self.text_encoder, rows)
            errors += failed
        return rows, errors



def process_clip(record: ClipRecord | Mapping[str, Any], config: ExtractConfig) -> ClipOutcome:
    """Convenience: build a processor for ``config`` and process one record (tests, one-offs)."""
    return ClipProcessor(config).process(record)


class ExtractBatch:
    """``map_batches`` callable: a batch of record rows (pandas DataFrame or dict of columns) → processed,
    written to ``out`` with :func:`write_batch`, returned as a small summary (sample_id, status, stage)."""

    def __init__(self, config: ExtractConfig, out: str, max_rows_per_shard: int = 256, processor: ClipProcessor | None = None):
        self.processor = processor or ClipProcessor(config)
        self.out, self.max_rows = out, max_rows_per_shard

    def __call__(self, batch) -> dict:
        import pandas as pd

        df = batch if isinstance(batch, pd.DataFrame) else pd.DataFrame(batch)
        crash = os.environ.get("DEFT_TEST_CRASH_ON_SAMPLE")  # test instrumentation: a native crash on this clip
        if crash and crash in set(df["sample_id"]):
            os._exit(134)
        rows, errors = self.processor.process_many(df.to_dict("records"))
        write_batch(self.out, rows, errors, self.max_rows)
        return {"sample_id": [r["sample_id"] for r in rows] + [e["sample_id"] for e in errors],
                "status": ["ok"] * len(rows) + ["error"] * len(errors),
                "stage": [""] * len(rows) + [e["stage"] for e in errors]}
