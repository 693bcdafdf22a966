"""EPIC-KITCHENS-100 source: narration CSV + ``EPIC_100_video_info.csv`` + hand-object pickles.

Layout (epic-kitchens-download-scripts)::

    ROOT/P01/videos/P01_01.MP4
    ROOT/P01/hand-objects/P01_01.pkl
    ROOT/EPIC_100_train.csv | EPIC_100_validation.csv   (or under ROOT/annotations/)
    ROOT/EPIC_100_video_info.csv                         (video_id, duration, fps, resolution)

The narration CSV has 15 columns in the real release (no ``uid``; some copies add it). ``start_frame``
/ ``stop_frame`` are 1-based RGB frame numbers. Videos have different native fps (59.94, 50, 29.97,
47.95, 90: ``fps`` of the record, used for decoding), but the frame *numbering* is not always at that
rate: measured on the real ``EPIC_100_validation.csv``, ``start_frame / start_seconds`` is 60.0 (median
59.999) for every EK-55 video, including the 29.97, 47.95 and 90 fps ones. So each row's numbering
rate (``ClipRecord.frame_rate``) is inferred as the candidate in (video fps, 60, 50) that best explains
its frame numbers and timestamps, and :meth:`ClipRecord.decode_index` maps frame numbers to decoded
video frames through time. Timestamps come as ``HH:MM:SS.SS`` or ``HH:MM:SS.SSS``; when a frame column
is missing it is computed from the timestamp at the video's fps.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pandas as pd

from pipelines.sources.base import ClipRecord, SourceError, source_error

REQUIRED_COLUMNS = ("narration_id", "video_id", "start_timestamp", "stop_timestamp", "narration")
_TS = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")


def parse_timestamp(value: str) -> float:
    """``HH:MM:SS.SS`` or ``HH:MM:SS.SSS`` → seconds. Raises ValueError naming the value."""
    m = _TS.match(str(value).strip())
    if not m:
        raise ValueError(f"timestamp {value!r} is not HH:MM:SS.SS[S]")
    h, mnt, s = m.groups()
    return int(h) * 3600 + int(mnt) * 60 + float(s)


def read_video_info(path: str | Path) -> dict[str, dict]:
    """``EPIC_100_video_info.csv`` → {video_id: {"fps", "duration", "width", "height"}}."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={"video_id": str})
    except FileNotFoundError:
        raise SourceError(f"EPIC video info file not found: {path}") from None
    missing = {"video_id", "fps"} - set(df.columns)
    if missing:
        raise SourceError(f"{path}: missing columns {sorted(missing)}")
    info = {}
    for row in df.itertuples(index=False):
        w = h = None
        res = getattr(row, "resolution", None)
        if isinstance(res, str) and "x" in res:
            w, h = (int(v) for v in res.lower().split("x"))
        fps = float(row.fps)
        if not fps > 0:
            raise SourceError(f"{path}: video {row.video_id} has fps {row.fps!r}")
        info[row.video_id] = {"fps": fps, "duration": float(getattr(row, "duration", float("nan"))), "width": w, "height": h}
    return info


def _find(root: Path, names: tuple[str, ...]) -> Path | None:
    for sub in ("", "annotations", "epic-kitchens-100-annotations"):
        for n in names:
            p = root / sub / n
            if p.exists():
                return p
    return None


class EpicKitchensSource:
    """Lists EPIC-100 actions as :class:`ClipRecord` s (1-based frames, per-video fps).

    ``csv``: narration CSV(s) (default: ``EPIC_100_train.csv`` and ``EPIC_100_validation.csv`` found
    under ``root`` or ``root/annotations``). ``video_info``: path of ``EPIC_100_video_info.csv``.
    Malformed rows are not dropped silently: they are collected in :attr:`bad_rows` as errors-table
    rows (stage ``source``) and skipped.
    """

    dataset = "epic_kitchens"

    def __init__(self, root: str | Path, csv: str | Path | list | None = None, video_info: str | Path | None = None,
                 chunksize: int = 5000):
        self.root = Path(root)
        if csv is None:
            found = [p for p in (_find(self.root, (n,)) for n in ("EPIC_100_train.csv", "EPIC_100_validation.csv")) if p]
            if not found:
                raise SourceError(f"no EPIC_100_train.csv / EPIC_100_validation.csv under {self.root} or {self.root / 'annotations'}")
            csv = found
        self.csv_paths = [Path(p) for p in (csv if isinstance(csv, (list, tuple)) else [csv])]
        vi = Path(video_info) if video_info else _find(self.root, ("EPIC_100_video_info.csv",))
        if vi is None:
            raise SourceError(f"EPIC_100_video_info.csv not found under {self.root}; pass video_info=")
        self.video_info = read_video_info(vi)
        self.chunksize = chunksize
        self.bad_rows: list[dict] = []

    def video_path(self, video_id: str) -> Path:
        participant = video_id.split("_")[0]
        base = self.root / participant / "videos"
        for ext in (".MP4", ".mp4"):
            if (base / f"{video_id}{ext}").exists():
                return base / f"{video_id}{ext}"
        return base / f"{video_id}.MP4"

    def detections_path(self, video_id: str) -> Path:
        return self.root / video_id.split("_")[0] / "hand-objects" / f"{video_id}.pkl"

    def parse_row(self, row: dict) -> ClipRecord:
        """One CSV row (dict) → ClipRecord. Raises ValueError naming the field on bad input."""
        vid = str(row["video_id"])
        if vid not in self.video_info:
            raise ValueError(f"video_id {vid!r} is not in EPIC_100_video_info.csv")
        fps = self.video_info[vid]["fps"]
        t0, t1 = parse_timestamp(row["start_timestamp"]), parse_timestamp(row["stop_timestamp"])
        f0 = row.get("start_frame")
        f1 = row.get("stop_frame")
        f0 = int(f0) if f0 is not None and not pd.isna(f0) else int(round(t0 * fps)) + 1
        f1 = int(f1) if f1 is not None and not pd.isna(f1) else int(round(t1 * fps)) + 1
        if f0 < 1 or f1 < f0:
            raise ValueError(f"start_frame {f0} / stop_frame {f1} are not 1-based and ordered")
        rate = fps
        if t0 > 0.5:  # which numbering rate explains the row (ties → the video's fps)
            rate = min((fps, 60.0, 50.0), key=lambda r: abs((f0 - 1) - t0 * r))
        narration = row.get("narration")
        narration = "" if narration is None or pd.isna(narration) else str(narration)
        verb, noun = row.get("verb"), row.get("noun")
        return ClipRecord(
            dataset=self.dataset, video_id=vid, action_id=str(row["narration_id"]),
            video_path=str(self.video_path(vid)), fps=fps, first_frame=f0, last_frame=f1,
            text=narration, verb=verb if isinstance(verb, str) else None, noun=noun if isinstance(noun, str) else None,
            hand_hint=None, frame_base=1, frame_rate=rate, contact={"detections_path": str(self.detections_path(vid)),
                                                   "start_s": t0, "stop_s": t1},
        )

    def records(self) -> Iterator[ClipRecord]:
        for path in self.csv_paths:
            try:
                reader = pd.read_csv(path, chunksize=self.chunksize, dtype={"video_id": str, "narration_id": str})
            except FileNotFoundError:
                raise SourceError(f"EPIC narration CSV not found: {path}") from None
            for chunk in reader:
                missing = set(REQUIRED_COLUMNS) - set(chunk.columns)
                if missing:
                    raise SourceError(f"{path}: missing columns {sorted(missing)}")
                for row in chunk.to_dict("records"):
                    try:
                        yield self.parse_row(row)
                    except (ValueError, TypeError, KeyError) as exc:
                        self.bad_rows.append(source_error(self.dataset, str(row.get("video_id")), str(row.get("narration_id")),
                                                          f"{path.name} row {row.get('narration_id')!r}: {exc}"))
