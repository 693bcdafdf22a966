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
59.999) for every EK-55 video, including the 29.97, 47.95 and 90 fps ones. So each video's numbering
rate (``ClipRecord.frame_rate``) is inferred as the candidate in (video fps, 60, 50) that best explains
the frame numbers and timestamps of all its rows (a first pass over the CSV reads only those columns;
one row alone cannot tell 59.94 from 60, which differ by a frame a minute apart, and a row starting at
0 s fits every rate), and :meth:`ClipRecord.decode_index` maps frame numbers to decoded video frames
through time. Timestamps come as ``HH:MM:SS.SS`` or ``HH:MM:SS.SSS``; when a frame column
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


#: what pandas raises for a file that is not a readable CSV (empty, malformed, binary)
_CSV_ERRORS = (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError)


def _unreadable(path: Path, exc: Exception) -> SourceError:
    return SourceError(f"{path}: not a readable CSV ({str(exc).strip()})")


def _chunks(reader, path: Path):
    """The chunks of a ``pd.read_csv(chunksize=...)`` reader; a malformed line further down is a
    :class:`SourceError` naming the file instead of pandas' bare tokenizer error."""
    while True:
        try:
            chunk = next(reader)
        except StopIteration:
            return
        except _CSV_ERRORS as exc:
            raise _unreadable(path, exc) from None
        yield chunk


def read_video_info(path: str | Path) -> dict[str, dict]:
    """``EPIC_100_video_info.csv`` → {video_id: {"fps", "duration", "width", "height"}}."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={"video_id": str})
    except FileNotFoundError:
        raise SourceError(f"EPIC video info file not found: {path}") from None
    except _CSV_ERRORS as exc:
        raise _unreadable(path, exc) from None
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


#: candidate numbering rates besides the video's own fps (EK-55 frames at 60, EPIC-100 extension at 50)
NUMBERING_RATES = (60.0, 50.0)


class RateEvidence:
    """Running misfits of (seconds, frame) pairs under each candidate numbering rate (the video's fps, 60,
    50) and each of the two conventions seen: ``f = t·rate + 1`` (1-based frames, as our writer numbers
    them) or ``f = t·rate`` (the real EPIC CSV: 00:00:54.90 is frame 3294 = 54.9 × 60). Without the
    convention choice a one-frame offset outweighs the 0.06 frames/s between 59.94 and 60 in the first
    minute. Times in the first half second are no evidence (they fit every rate) and are left out.
    Constant memory per video."""

    def __init__(self, fps: float) -> None:
        self.fps = float(fps)
        self.rates = (self.fps,) + NUMBERING_RATES
        self.sums = {(r, c): 0.0 for r in self.rates for c in (0, 1)}
        self.n = 0

    def add(self, t: float, f: int) -> None:
        if t > 0.5:
            self.n += 1
            for (r, c) in self.sums:
                self.sums[(r, c)] += abs(f - c - t * r)

    def misfit(self, rate: float) -> float:
        return min(self.sums[(rate, 0)], self.sums[(rate, 1)])

    def rate(self) -> float:
        """The video's ``fps`` unless 60 or 50 explains the pairs better by more than a frame in all."""
        if not self.n:
            return self.fps
        best = min(NUMBERING_RATES, key=self.misfit)
        return best if self.misfit(best) < self.misfit(self.fps) - 1.0 else self.fps


def choose_rate(fps: float, refs: list[tuple[float, int]]) -> float:
    """The numbering rate that explains (seconds, frame) pairs: :class:`RateEvidence` over ``refs``."""
    ev = RateEvidence(fps)
    for t, f in refs:
        ev.add(t, f)
    return ev.rate()


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
        #: per-video numbering rate from all its rows (:meth:`numbering_rates`, filled by :meth:`records`)
        self.video_rates: dict[str, float] | None = None

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
        derived = f0 is None or pd.isna(f0) or f1 is None or pd.isna(f1)
        f0 = int(f0) if f0 is not None and not pd.isna(f0) else int(round(t0 * fps)) + 1
        f1 = int(f1) if f1 is not None and not pd.isna(f1) else int(round(t1 * fps)) + 1
        if f0 < 1 or f1 < f0:
            raise ValueError(f"start_frame {f0} / stop_frame {f1} are not 1-based and ordered")
        if derived:  # frames computed here from the timestamps, at the video's fps
            rate = fps
        elif self.video_rates is not None and vid in self.video_rates:
            rate = self.video_rates[vid]
        else:  # a row parsed on its own: its start and stop are the only evidence
            rate = choose_rate(fps, [(t0, f0), (t1, f1)])
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

    def _bad_line_recorder(self, path: Path, header: list[str]):
        """pandas' ``on_bad_lines`` callback: a line with more fields than the header goes to
        :attr:`bad_rows` (one damaged line must not end the listing of every clip) and is skipped."""
        def record(fields: list[str]) -> None:
            get = dict(zip(header, fields)).get
            self.bad_rows.append(source_error(self.dataset, str(get("video_id")), str(get("narration_id")),
                                              f"{path.name} row {get('narration_id')!r}: {len(fields)} fields, "
                                              f"the header has {len(header)}"))
            return None
        return record

    def numbering_rates(self) -> dict[str, float]:
        """Per video, the numbering rate of the (start, stop) times and frames of all its rows
        (:class:`RateEvidence`): one pass over the CSVs reading five columns; memory grows with the distinct
        videos, not the rows. Unparseable values are skipped here; the listing reports them."""
        evidence: dict[str, RateEvidence] = {}
        for path in self.csv_paths:
            try:
                head = pd.read_csv(path, nrows=0).columns
            except (FileNotFoundError, *_CSV_ERRORS):
                continue  # the listing reports it
            cols = [c for c in ("video_id", "start_timestamp", "stop_timestamp", "start_frame", "stop_frame") if c in head]
            if "start_frame" not in cols or "stop_frame" not in cols or "video_id" not in cols:
                continue
            reader = pd.read_csv(path, usecols=cols, chunksize=max(self.chunksize, 50_000), dtype={"video_id": str},
                                 engine="python", on_bad_lines=lambda line: None)  # the listing reports them
            for chunk in _chunks(reader, path):
                for vid, a, b, f0, f1 in zip(chunk["video_id"], chunk["start_timestamp"], chunk["stop_timestamp"],
                                             chunk["start_frame"], chunk["stop_frame"]):
                    vid = str(vid)
                    if vid not in self.video_info:
                        continue
                    try:
                        pairs = [(parse_timestamp(a), int(f0)), (parse_timestamp(b), int(f1))]
                    except (ValueError, TypeError):
                        continue
                    ev = evidence.get(vid) or evidence.setdefault(vid, RateEvidence(self.video_info[vid]["fps"]))
                    for t, f in pairs:
                        ev.add(t, f)
        return {vid: ev.rate() for vid, ev in evidence.items()}

    def records(self) -> Iterator[ClipRecord]:
        if self.video_rates is None:
            self.video_rates = self.numbering_rates()
        for path in self.csv_paths:
            try:
                header = list(pd.read_csv(path, nrows=0).columns)
                reader = pd.read_csv(path, chunksize=self.chunksize, dtype={"video_id": str, "narration_id": str},
                                     engine="python", on_bad_lines=self._bad_line_recorder(path, header))
            except FileNotFoundError:
                raise SourceError(f"EPIC narration CSV not found: {path}") from None
            except _CSV_ERRORS as exc:
                raise _unreadable(path, exc) from None
            for chunk in _chunks(reader, path):
                missing = set(REQUIRED_COLUMNS) - set(chunk.columns)
                if missing:
                    raise SourceError(f"{path}: missing columns {sorted(missing)}")
                for row in chunk.to_dict("records"):
                    try:
                        yield self.parse_row(row)
                    except (ValueError, TypeError, KeyError) as exc:
                        self.bad_rows.append(source_error(self.dataset, str(row.get("video_id")), str(row.get("narration_id")),
                                                          f"{path.name} row {row.get('narration_id')!r}: {exc}"))
