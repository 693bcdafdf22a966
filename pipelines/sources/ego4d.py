"""Ego4D FHO source: ``fho_main.json`` narrated actions with critical frames and boxes.

Layout (Ego4D CLI, ``--datasets full_scale annotations --benchmarks FHO``)::

    ROOT/v2/annotations/fho_main.json     (ROOT/annotations/fho_main.json also accepted)
    ROOT/v2/full_scale/<video_uid>.mp4    (ROOT/full_scale/..., or the 540 px video_540ss/ copies)

Kept actions (as the official visualisation notebook filters): ``is_valid_action`` not False, not
``is_rejected``, not ``is_invalid_annotation``, ``stage`` not None, ``critical_frames`` present with a
``contact_frame`` (falling back to ``pnr_frame``), and narrations by the camera wearer (``#C C ...``).
Frame numbers are 0-based frames of the canonical 30 fps video; boxes are in its full-scale pixels
(``bbox: {x, y, width, height}`` → ``[x1, y1, x2, y2]``). Actions that fail a check are counted in
:attr:`Ego4DSource.skipped` by reason (they are not clips, so not errors); malformed entries become
errors-table rows in :attr:`Ego4DSource.bad_rows`.

The file is streamed video by video with ``ijson`` when it is installed (``pip install ijson``),
otherwise loaded with :mod:`json` (fine for files up to a few hundred MB).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from pipelines.sources.base import ClipRecord, SourceError, source_error

CRITICAL_FRAME_TYPES = ("pre_45", "pre_30", "pre_15", "pre_frame", "contact_frame", "pnr_frame", "post_frame")
DEFAULT_FPS = 30.0


def _iter_videos(path: Path) -> Iterator[dict]:
    """The ``videos`` of fho_main.json, streamed; a truncated or malformed file raises :class:`SourceError`
    naming it when the listing reaches the bad part (no extra pass over a possibly huge file)."""
    try:
        import ijson  # optional: streams one video at a time
    except ImportError:
        ijson = None
    if ijson is not None:
        n = 0
        with path.open("rb") as f:
            try:
                for n, video in enumerate(ijson.items(f, "videos.item", use_float=True), start=1):
                    yield video
                if n == 0:  # nothing listed: an empty 'videos' list, or another file (a clips JSON, say)
                    f.seek(0)
                    if not any(p == "" and e == "map_key" and v == "videos" for p, e, v in ijson.parse(f)):
                        raise SourceError(f"{path}: no top-level 'videos' list (is this fho_main.json?)")
            except ijson.JSONError as exc:  # IncompleteJSONError: the file ends mid-way
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # yajl adds a multi-line pointer
                raise SourceError(f"{path}: truncated or malformed JSON ({reason})") from None
        return
    with path.open() as f:
        try:
            data = json.load(f)
        except ValueError as exc:
            raise SourceError(f"{path}: truncated or malformed JSON ({exc})") from None
    if "videos" not in data:
        raise SourceError(f"{path}: no top-level 'videos' list (is this fho_main.json?)")
    yield from data["videos"]


def box_xyxy(bbox: dict) -> list[float]:
    """Ego4D ``{x, y, width, height}`` → ``[x1, y1, x2, y2]`` (pixels)."""
    x, y, w, h = (float(bbox[k]) for k in ("x", "y", "width", "height"))
    return [x, y, x + w, y + h]


_CAMERA_WEARER = re.compile(r"#c\s+c\b", re.IGNORECASE)


def is_camera_wearer(narration: str | None) -> bool:
    """``#C C ...`` in any case mix (``#c C`` too) and spacing: the camera wearer acts."""
    return bool(narration) and _CAMERA_WEARER.match(narration.strip()) is not None


class Ego4DSource:
    """Lists Ego4D FHO narrated actions as :class:`ClipRecord` s. ``annotations``: path of fho_main.json."""

    dataset = "ego4d"

    def __init__(self, root: str | Path, annotations: str | Path | None = None, camera_wearer_only: bool = True):
        self.root = Path(root)
        if annotations is None:
            for cand in (self.root / "v2" / "annotations" / "fho_main.json", self.root / "annotations" / "fho_main.json",
                         self.root / "fho_main.json"):
                if cand.exists():
                    annotations = cand
                    break
            else:
                raise SourceError(f"fho_main.json not found under {self.root}/v2/annotations, {self.root}/annotations or {self.root}")
        self.annotations = Path(annotations)
        if not self.annotations.exists():
            raise SourceError(f"Ego4D annotation file not found: {self.annotations}")
        self.camera_wearer_only = camera_wearer_only
        self.skipped: Counter = Counter()
        self.bad_rows: list[dict] = []

    def video_path(self, video_uid: str) -> Path:
        # full scale first; the 540 px copies (`--datasets video_540ss`) serve as well: boxes are scaled to
        # the decoded frame size from video_metadata's resolution
        for sub in (self.root / "v2" / "full_scale", self.root / "full_scale", self.root / "v2" / "video_540ss",
                    self.root / "video_540ss"):
            if (sub / f"{video_uid}.mp4").exists():
                return sub / f"{video_uid}.mp4"
        return self.root / "v2" / "full_scale" / f"{video_uid}.mp4"

    def _reject_reason(self, a: dict) -> str | None:
        if a.get("is_valid_action") is False:
            return "not a valid action"
        if a.get("is_rejected"):
            return "rejected"
        if a.get("is_invalid_annotation"):
            return "invalid annotation"
        if a.get("stage") is None:
            return "stage is None"
        if self.camera_wearer_only and not is_camera_wearer(a.get("narration_text")):
            return "not a camera-wearer narration"
        cf = a.get("critical_frames")
        if not cf:
            return "no critical frames"
        if not isinstance(cf, dict):
            return None  # malformed: parse_action raises and the action becomes an errors-table row
        if cf.get("contact_frame") is None and cf.get("pnr_frame") is None:
            return "no contact or pnr frame"
        return None

    def parse_action(self, video: dict, action: dict, index: int) -> ClipRecord:
        """One narrated action → ClipRecord (assumes it passed the filters)."""
        uid = str(video["video_uid"])
        meta = video.get("video_metadata") or {}
        fps = float(meta.get("fps") or DEFAULT_FPS)
        if not isinstance(action["critical_frames"], dict):
            raise TypeError(f"critical_frames is a {type(action['critical_frames']).__name__}, expected an object")
        cf = {k: int(v) for k, v in action["critical_frames"].items() if v is not None}
        contact = cf.get("contact_frame", cf.get("pnr_frame"))
        boxes: dict[str, dict[str, Any]] = {}
        for fr in action.get("frames") or []:
            # a frame entry or box the annotators left null (like critical_frames may be) holds nothing:
            # skipped, so one null pre_45 does not cost the action; a missing key is still malformed
            if fr.get("frame_number") is None:
                continue
            number = int(fr["frame_number"])
            ftype = fr.get("frame_type") or next((k for k, v in cf.items() if v == number), None)
            if ftype is None:
                continue
            entry = boxes.setdefault(ftype, {"frame_number": number})
            for b in fr.get("boxes") or []:
                if b is None or b.get("bbox", {}) is None:
                    continue
                entry.setdefault(b["object_type"], []).append(box_xyxy(b["bbox"]))
        start = action.get("start_frame")
        start = int(start) if start is not None else min(cf.values())
        first = min(start, contact)
        end = action.get("end_frame")
        last = max(int(end) if end is not None else max(cf.values()), contact)
        at_contact = boxes.get("contact_frame") or boxes.get("pnr_frame") or {}
        has_r, has_l = "right_hand" in at_contact, "left_hand" in at_contact
        hint = "both" if has_r and has_l else "right" if has_r else "left" if has_l else None
        action_id = str(action.get("uid") or action.get("narration_annotation_uid") or f"{uid}_{index}")
        verb = action.get("structured_verb") or action.get("freeform_verb")
        return ClipRecord(
            dataset=self.dataset, video_id=uid, action_id=action_id, video_path=str(self.video_path(uid)), fps=fps,
            first_frame=first, last_frame=last, text=str(action.get("narration_text") or ""),
            verb=str(verb) if verb else None, noun=None, hand_hint=hint, frame_base=0,
            contact={"critical_frames": cf, "contact_frame": contact, "boxes": boxes,
                     "frame_width": meta.get("width"), "frame_height": meta.get("height")},
        )

    def records(self) -> Iterator[ClipRecord]:
        for video in _iter_videos(self.annotations):
            uid = str(video.get("video_uid", "?"))
            n = 0
            for interval in video.get("annotated_intervals") or []:
                for action in interval.get("narrated_actions") or []:
                    n += 1
                    reason = self._reject_reason(action)
                    if reason:
                        self.skipped[reason] += 1
                        continue
                    try:
                        yield self.parse_action(video, action, n)
                    except (KeyError, TypeError, ValueError) as exc:
                        aid = str(action.get("uid") or f"{uid}_{n}")
                        self.bad_rows.append(source_error(self.dataset, uid, aid, f"{self.annotations.name} action {aid}: {type(exc).__name__}: {exc}"))
