"""HOI4D source: sequence folders, action events, hand-pose pickles and intrinsics.

A sequence path ``ZY20210800004/H4/C8/N14/S71/s03/T2`` names camera / human / object category /
object instance / room / room layout / task. Accepted layouts (the release's separate archives, or
everything in one tree)::

    ROOT/release.txt                                   (optional list of sequence paths)
    ROOT/[HOI4D_release/]<seq>/align_rgb/image.mp4
    ROOT/[HOI4D_annotations/]<seq>/action/color.json   ({info:{duration}, events:[{event, startTime, endTime}]}
                                                        or the older {markResult:{marks:[...]}})
    ROOT/[HOI4D_annotations/]<seq>/objpose/<frame>.json
    ROOT/[HOI4D_annotations/]<seq>/2Dseg/mask/<frame:05d>.png   (optional: hand / object masks, see
                                                        pipelines.sources.hoi4d_masks; or refine_2Dseg/mask, 2Dseg/shift_mask)
    ROOT/[HOI4D_release/]<seq>/align_depth/depth_video.avi     (optional: depth, millimetres)
    ROOT/handpose/refinehandpose_right/<seq>/<frame>.pickle   (0-based, unpadded frame numbers)
    ROOT/camera_params/<camera>/intrin.npy             (3×3 K; color_intrin.npy also accepted)

HOI4D has no narrations: the text is the task definition of (category, task) from
``task_definitions.csv`` (a copy of the real file ships in ``pipelines/sources/data``), e.g. C2/T1 →
"pick and place the mug". One sequence is one clip: frames 0-based; ``fps = num_frames / duration``
(the release's videos hold 300 frames, 15 or 30 fps by length); v1 is the start of the first event.

``num_frames`` is the video container's frame count (read from its header, nothing decoded), else the
highest hand-pose pickle's frame number + 1 (a pickle is named by its frame, so frames missing from a
partial download do not shift it), else 300; without ``info.duration`` the video's own frame rate is
used. A sequence that ``release.txt`` lists but that has no folder under the root (a partial download)
is counted in :attr:`HOI4DSource.skipped`, not reported as an error.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pipelines.sources.base import ClipRecord, SourceError, source_error
from pipelines.sources.hoi4d_masks import MASK_FOLDERS

DEFAULT_NUM_FRAMES = 300
SEQ_RE = re.compile(r"^(ZY\d+)/H(\d+)/C(\d+)/N(\d+)/S(\d+)/s(\d+)/T(\d+)$")
TASK_DEFINITIONS = Path(__file__).with_name("data") / "hoi4d_task_definitions.csv"
_OBJECTLESS = re.compile(r"^(pick and place|open and close|turn and fold|turn on and turn off)(.*)$")
GRASP_EVENT_WORDS = ("grasp", "pick", "grab", "hold")
#: folders under the root that may hold the sequence trees (the release's separate archives, or one tree)
SEQUENCE_BASES = ("", "HOI4D_annotations", "HOI4D_release")


@dataclass(frozen=True)
class SequenceId:
    camera: str
    human: int
    category: int
    instance: int
    room: int
    layout: int
    task: int
    path: str  #: the path as written in the release (ids may be zero-padded, e.g. N09)


def parse_sequence_path(path: str) -> SequenceId:
    """``ZY20210800004/H4/C8/N14/S71/s03/T2`` → :class:`SequenceId`. Raises ValueError on other shapes."""
    m = SEQ_RE.match(path.strip().strip("/"))
    if not m:
        raise ValueError(f"{path!r} is not a HOI4D sequence path ZY<cam>/H<n>/C<n>/N<n>/S<n>/s<nn>/T<n>")
    cam, *nums = m.groups()
    return SequenceId(cam, *(int(n) for n in nums), path=path.strip().strip("/"))


def load_task_definitions(path: str | Path = TASK_DEFINITIONS) -> dict[int, tuple[str, dict[int, str]]]:
    """``task_definitions.csv`` → {category id: (category name, {task id: task text})}; ``N/A`` dropped."""
    out: dict[int, tuple[str, dict[int, str]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            cid = int(row["Category ID"].lstrip("C"))
            tasks = {int(k[1:]): v.strip() for k, v in row.items() if k and k.startswith("T") and v and v.strip() != "N/A"}
            out[cid] = (row["Category"].strip(), tasks)
    return out


def task_text(category: str, task: str) -> str:
    """A task definition as a sentence about the object: "Pick and place" + "Mug" → "pick and place the mug"."""
    cat, t = category.lower(), task.lower().strip()
    if re.search(r"\bit\b", t):
        return re.sub(r"\bit\b", f"the {cat}", t, count=1)
    m = _OBJECTLESS.match(t)
    if m and not m.group(2).startswith(" the "):
        return f"{m.group(1)} the {cat}{m.group(2)}"
    return t


def read_events(path: Path) -> tuple[list[dict], float | None]:
    """``action/color.json`` → ([{event, start, end} seconds], duration or None). Both file versions."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    raw = data.get("events")
    if raw is None:
        raw = (data.get("markResult") or {}).get("marks")
    if raw is None:
        raise ValueError(f"{path}: neither 'events' nor 'markResult.marks'")
    events = []
    for e in raw:
        start = e.get("startTime", e.get("hdTimeStart", e.get("start")))
        end = e.get("endTime", e.get("hdTimeEnd", e.get("end")))
        if start is None or end is None:
            raise ValueError(f"{path}: event {e!r} has no start/end time")
        events.append({"event": str(e.get("event", e.get("name", ""))), "start": float(start), "end": float(end)})
    events.sort(key=lambda e: e["start"])
    info = data.get("info") or {}
    duration = info.get("duration", info.get("Duration"))  # 'Duration' in some markResult-era files
    return events, float(duration) if duration else None


def video_header(path: str | Path) -> tuple[int | None, float | None]:
    """(frame count, frame rate) of a video (:func:`deft_core.video.video_length`: its header), each None
    where it does not say or the file cannot be opened (the decoder reports a broken video later)."""
    from deft_core.video import video_length

    try:
        n, fps = video_length(path)
    except Exception:  # noqa: BLE001 - any unreadable container: fall back to the annotations
        return None, None
    return n or None, fps or None


def pickle_frame_count(hand_dir: Path) -> int:
    """Highest frame number of a hand-pose folder's ``<frame>.pickle`` files + 1 (0 without any)."""
    if not hand_dir.is_dir():
        return 0
    frames = [int(p.stem) for p in hand_dir.glob("*.pickle") if p.stem.isdigit()]
    return max(frames) + 1 if frames else 0


class HOI4DSource:
    """Lists HOI4D sequences as :class:`ClipRecord` s (see module doc for the layout)."""

    dataset = "hoi4d"

    def __init__(self, root: str | Path, release: str | Path | None = None, task_definitions: str | Path = TASK_DEFINITIONS):
        self.root = Path(root)
        self.release = Path(release) if release else (self.root / "release.txt" if (self.root / "release.txt").exists() else None)
        if self.release is None and not any(next((self.root / b).glob("ZY*"), None) for b in SEQUENCE_BASES):
            # an empty folder or another dataset's root: fail now rather than extract nothing (cheap: no tree walk)
            raise SourceError(f"no HOI4D sequences under {self.root}: expected release.txt or ZY<camera>/H*/C*/N*/S*/s*/T* "
                              f"folders (directly, or under HOI4D_annotations/ or HOI4D_release/)")
        self.tasks = load_task_definitions(task_definitions)
        self.bad_rows: list[dict] = []
        #: sequences not extracted that are not errors, by reason (reported in the job's manifest)
        self.skipped: Counter = Counter()

    def _first_existing(self, rel: str, bases: tuple[str, ...]) -> Path | None:
        for b in bases:
            p = self.root / b / rel
            if p.exists():
                return p
        return None

    def sequence_paths(self) -> Iterator[str]:
        """Sequence paths from ``release.txt`` or, without it, by walking the tree (lazily)."""
        if self.release is not None:
            try:
                f = self.release.open()
            except OSError as exc:
                raise SourceError(f"HOI4D release file cannot be read: {self.release} ({exc.strerror or exc})") from None
            n = 0
            with f:
                for line in f:
                    if line.strip():
                        n += 1
                        yield line.strip()
            if n == 0:
                raise SourceError(f"{self.release}: lists no HOI4D sequences")
            return
        seen = set()
        for base in SEQUENCE_BASES:
            for p in sorted((self.root / base).glob("ZY*/H*/C*/N*/S*/s*/T*")):
                rel = p.relative_to(self.root / base).as_posix()
                if rel not in seen and p.is_dir():
                    seen.add(rel)
                    yield rel
        if not seen:
            raise SourceError(f"no HOI4D sequence folders ZY<camera>/H*/C*/N*/S*/s*/T* under {self.root} "
                              f"(directly, or under HOI4D_annotations/ or HOI4D_release/), and no release.txt")

    def text_for(self, seq: SequenceId) -> tuple[str, str, str]:
        """(text, verb, noun) for a sequence's category and task. Raises ValueError if undefined."""
        if seq.category not in self.tasks:
            raise ValueError(f"category C{seq.category} is not in task_definitions.csv")
        cat, tasks = self.tasks[seq.category]
        if seq.task not in tasks:
            raise ValueError(f"task T{seq.task} of category C{seq.category} ({cat}) is not in task_definitions.csv")
        text = task_text(cat, tasks[seq.task])
        return text, text.split()[0], cat.lower()

    def parse_sequence(self, rel: str) -> ClipRecord:
        seq = parse_sequence_path(rel)
        text, verb, noun = self.text_for(seq)
        ann = ("HOI4D_annotations", "", "HOI4D_release")
        action = self._first_existing(f"{rel}/action/color.json", ann)
        if action is None:
            raise ValueError(f"no action/color.json for {rel}")
        events, duration = read_events(action)
        hand_dir = self.root / "handpose" / "refinehandpose_right" / rel
        left_dir = self.root / "handpose" / "refinehandpose_left" / rel
        video = self._first_existing(f"{rel}/align_rgb/image.mp4", ("HOI4D_release", "", "HOI4D_annotations"))
        video_frames, video_fps = video_header(video) if video else (None, None)
        n_frames = video_frames or pickle_frame_count(hand_dir) or pickle_frame_count(left_dir) or DEFAULT_NUM_FRAMES
        if duration:
            fps = n_frames / duration
        elif video_fps:
            fps = video_fps
        else:
            raise ValueError(f"{action}: info.duration missing and no readable video; cannot derive fps")
        intrin = None
        for name in ("intrin.npy", "color_intrin.npy"):
            p = self.root / "camera_params" / seq.camera / name
            if p.exists():
                intrin = str(p)
                break
        objpose = self._first_existing(f"{rel}/objpose", ann)
        masks = next((p for sub in MASK_FOLDERS if (p := self._first_existing(f"{rel}/{sub}", ann)) is not None), None)
        depth = self._first_existing(f"{rel}/align_depth/depth_video.avi", ("HOI4D_release", "", "HOI4D_annotations"))
        first = int(events[0]["start"] * fps) if events else 0
        last = min(n_frames - 1, int(events[-1]["end"] * fps)) if events else n_frames - 1
        grasp = next((e for e in events if any(w in e["event"].lower() for w in GRASP_EVENT_WORDS)), None)
        return ClipRecord(
            dataset=self.dataset, video_id=rel, action_id="seq", fps=fps,
            video_path=str(video or self.root / "HOI4D_release" / rel / "align_rgb" / "image.mp4"),
            first_frame=max(0, min(first, last)), last_frame=last, text=text, verb=verb, noun=noun,
            hand_hint="right" if hand_dir.is_dir() else ("left" if left_dir.is_dir() else None), frame_base=0,
            contact={"handpose_dir": str(hand_dir), "handpose_left_dir": str(left_dir) if left_dir.is_dir() else None,
                     "intrinsics_path": intrin, "objpose_dir": str(objpose) if objpose else None, "events": events,
                     "mask_dir": str(masks) if masks else None, "depth_path": str(depth) if depth else None,
                     "grasp_frame": int(round(grasp["start"] * fps)) if grasp else None,
                     "category": seq.category, "task": seq.task},
        )

    def downloaded(self, rel: str) -> bool:
        """Whether any of the sequence's folders (annotations or RGB) is under the root."""
        return any((self.root / b / rel).is_dir() for b in SEQUENCE_BASES)

    def records(self) -> Iterator[ClipRecord]:
        for rel in self.sequence_paths():
            if self.release is not None and SEQ_RE.match(rel.strip("/")) and not self.downloaded(rel):
                self.skipped["listed in release.txt, not downloaded"] += 1
                continue
            try:
                yield self.parse_sequence(rel)
            except (ValueError, OSError, KeyError) as exc:
                self.bad_rows.append(source_error(self.dataset, rel, "seq", f"{rel}: {type(exc).__name__}: {exc}"))
