"""The durable fine-tuning episode log (DESIGN.md §3) and what a resumed run reads back from it.

Layout of a run directory::

    run.json          what the run is: task, seed, CEM config (a resumed run must match it)
    episodes.jsonl    one JSON object per line, one line per episode attempt, appended in order
    images/           k0007_a0_initial.png, k0007_a0_final.png (RGB saved as PNG)

A line is the commit point of an episode: its images are written (and fsynced) first, then the line
is appended with one ``write`` followed by ``flush`` + ``os.fsync`` of the file and of the directory,
before the next episode starts. A crash before the line is complete loses only that attempt, which a
resumed run redoes with the same sample (samples are a function of (seed, k, attempt), see
:mod:`deft_core.finetune.cem`). A half-written last line is detected, dropped with a warning and cut
off the file; a malformed line anywhere else is an error (the log is corrupt, not torn).

Record fields (``EPISODE_LOG_VERSION`` 1): ``task``, ``episode`` (1-based k), ``attempt`` (0 for the
first try, +1 per void redo), ``status`` (``"ok"`` or ``"void"``), ``env_seed``, ``xi`` (prior ξ, 22,
robot base frame), ``epsilon`` (ε, 22), ``executed`` (ξ + ε), ``reward`` (float; null when void),
``success`` (bool or null), ``distribution`` (D used to sample: mean, std, num_refits), ``timings``
(seconds per phase), ``images`` (names relative to the run directory), ``info`` (env details; ``camera``:
I₀'s ``K`` and ``T_base_camera`` when the environment reports them, since 2026-11-27),
``void_reason``, ``started_at`` (Unix seconds).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

EPISODE_LOG_VERSION = 1
RUN_FILE = "run.json"
EPISODES_FILE = "episodes.jsonl"
IMAGES_DIR = "images"


class EpisodeLogError(ValueError):
    """The log on disk is inconsistent or does not belong to this run."""


@dataclass
class EpisodeRecord:
    """One attempt of one episode, exactly as stored on a line of ``episodes.jsonl``."""

    task: str
    episode: int
    attempt: int
    status: str
    env_seed: int
    xi: list[float]
    epsilon: list[float]
    executed: list[float]
    reward: float | None
    success: bool | None
    distribution: dict
    timings: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    void_reason: str | None = None
    started_at: float = 0.0
    version: int = EPISODE_LOG_VERSION

    def __post_init__(self) -> None:
        if self.status not in ("ok", "void"):
            raise EpisodeLogError(f"episode status must be 'ok' or 'void', got {self.status!r}")
        if self.status == "ok" and (self.reward is None or not np.isfinite(self.reward)):
            raise EpisodeLogError(f"episode {self.episode}: an 'ok' episode needs a finite reward, got {self.reward!r}")
        for name in ("xi", "epsilon", "executed"):
            if len(getattr(self, name)) != 22:
                raise EpisodeLogError(f"episode {self.episode}: {name} must have 22 values, got {len(getattr(self, name))}")

    def to_line(self) -> str:
        return json.dumps(asdict(self), default=json_default, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, d: dict) -> "EpisodeRecord":
        if d.get("version") != EPISODE_LOG_VERSION:
            raise EpisodeLogError(f"episode log version {d.get('version')!r} is not supported (expected {EPISODE_LOG_VERSION})")
        known = set(cls.__dataclass_fields__)
        missing = {f for f in known if f not in d} - {"timings", "images", "info", "void_reason", "started_at"}
        if missing:
            raise EpisodeLogError(f"episode record is missing fields {sorted(missing)}")
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def epsilon_array(self) -> np.ndarray:
        return np.asarray(self.epsilon, dtype=np.float64)

    @property
    def xi_array(self) -> np.ndarray:
        return np.asarray(self.xi, dtype=np.float64)


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for numpy arrays/scalars and paths (shared by the durable logs)."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"value of type {type(obj).__name__} is not JSON-serialisable: {obj!r}")


def fsync_dir(path: Path) -> None:
    """Make a file's creation, rename or removal in ``path`` durable (fsync of the directory)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash or power loss leaves the old file or the new one, never
    an empty or partial one: temporary file, fsync, rename, fsync of the directory."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_safetensors_durable(path: str | Path, tensors: dict, metadata: dict | None = None) -> None:
    """:func:`write_durable` for a safetensors file: the same bytes ``safetensors.torch.save_file`` writes."""
    from safetensors.torch import save

    write_durable(path, save(tensors, metadata=metadata))


def write_json_durable(path: str | Path, data, newline: bool = True, **dumps_kwargs) -> None:
    """:func:`write_durable` for a JSON document: ``json.dumps(data, **dumps_kwargs)``, plus a newline unless
    ``newline=False`` (affordance exports never had one: their bytes, and so their digests, stay the same)."""
    write_durable(path, (json.dumps(data, **dumps_kwargs) + ("\n" if newline else "")).encode("utf-8"))


def write_png(path: Path, image: np.ndarray, what: str = "image") -> None:
    """Write an RGB uint8 image (H × W × 3) to ``path`` as PNG, durably (temporary file, fsync, rename)."""
    import cv2

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"{what} must be an H×W×3 uint8 RGB array, got shape {img.shape} dtype {img.dtype}")
    ok, png = cv2.imencode(".png", np.ascontiguousarray(img[:, :, ::-1]))
    if not ok:
        raise RuntimeError(f"could not encode the {what} as PNG")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_durable(Path(path), png.tobytes())


def successes_recorded(records) -> bool:
    """Whether a run's 'ok' episodes carry a success flag. An operator's scores do not (only an episode
    that ended in a controller error is marked a failure), so successes cannot be counted there."""
    return all(r.success is not None for r in records if r.status == "ok")


def read_jsonl(path: Path, parse, error: type[Exception], what: str) -> tuple[list, int, int]:
    """The durable JSON-lines logs' reader (the episode log here, ``deft-robot eval``'s partial log):
    ``parse(obj)`` each line's JSON (raising ValueError/TypeError when it is not a ``what``). Returns
    (parsed items, bytes of the good lines, bytes of a torn tail — a half-written last line, or a last line
    that is not JSON, left by a killed writer; 0 when the file ends cleanly). A line that is not JSON
    elsewhere, or any JSON line that ``parse`` rejects (the last one included: it was written whole),
    raises ``error`` naming ``path:line``."""
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    tail = lines.pop()  # bytes after the last newline: b"" when the file ends cleanly
    items: list = []
    good_bytes = 0
    torn = bool(tail.strip(b"\x00 \t\r"))
    for lineno, line in enumerate(lines, start=1):
        try:
            doc = json.loads(line.decode("utf-8"))
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if lineno == len(lines) and not torn:
                torn = True  # the last line is not JSON (e.g. zero-filled after a crash): treat as torn
                break
            raise error(f"{path}:{lineno}: malformed {what} ({exc}): the log is damaged at that line (only a "
                        "half-written last line is dropped by itself); restore it from a copy or fix the line by hand") from None
        try:  # a whole JSON line that is not a valid record was written so, not torn: never dropped silently
            items.append(parse(doc))
        except (ValueError, TypeError) as exc:
            raise error(f"{path}:{lineno}: not a valid {what} ({exc}): the log was written by another version "
                        "or edited; fix the line by hand or move the log aside") from None
        good_bytes += len(line) + 1
    return items, good_bytes, (len(raw) - good_bytes) if torn or good_bytes != len(raw) else 0


def truncate_durably(path: Path, size: int) -> None:
    """Cut ``path`` to ``size`` bytes (a torn tail off a log) and fsync it."""
    with open(path, "r+b") as f:
        f.truncate(size)
        f.flush()
        os.fsync(f.fileno())


def append_durably(path: Path, line: str) -> None:
    """Append one line to a log with a single write, then fsync the file and its directory."""
    with open(path, "ab") as f:
        f.write(line.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(path.parent)


def read_records(path: str | Path, *, repair: bool = False) -> list[EpisodeRecord]:
    """Parse ``episodes.jsonl``. A torn (half-written) last line is dropped with a warning, and cut off
    the file when ``repair``; any other malformed line raises :class:`EpisodeLogError` naming it."""
    path = Path(path)
    if not path.exists():
        return []
    records, good_bytes, torn = read_jsonl(path, EpisodeRecord.from_dict, EpisodeLogError, "episode record")
    if torn:
        warnings.warn(f"{path}: dropping a half-written last line ({torn} bytes) "
                      "left by an interrupted run; that attempt will be redone", RuntimeWarning, stacklevel=2)
        if repair:
            truncate_durably(path, good_bytes)
    _check_sequence(path, records)
    return records


def _check_sequence(path: Path, records: list[EpisodeRecord]) -> None:
    """Every 'ok' episode k appears once, in order 1, 2, …; voids precede the redo of their episode."""
    done, voids = 0, 0
    for i, r in enumerate(records, start=1):
        if r.episode != done + 1 or r.attempt != voids:
            raise EpisodeLogError(f"{path}:{i}: expected episode {done + 1} attempt {voids}, "
                                  f"found episode {r.episode} attempt {r.attempt}")
        if r.status == "ok":
            done, voids = done + 1, 0
        else:
            voids += 1


class EpisodeLog:
    """An append-only, fsynced episode log in ``log_dir``; reopening an existing run resumes it.

    ``run_meta`` (JSON-serialisable: task, seed, CEM config, …) is written to ``run.json`` on creation
    and must equal the stored one on resume, so a log is never continued with different settings.
    """

    def __init__(self, log_dir: str | Path, run_meta: dict) -> None:
        self.dir = Path(log_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / IMAGES_DIR).mkdir(exist_ok=True)
        self.run_meta = json.loads(json.dumps(run_meta, default=json_default))
        run_file = self.dir / RUN_FILE
        if run_file.exists():
            stored = _read_run_file(run_file)
            diff = sorted(k for k in set(stored) | set(self.run_meta) if stored.get(k) != self.run_meta.get(k))
            if diff:
                details = "; ".join(f"{k}: log has {stored.get(k)!r}, run has {self.run_meta.get(k)!r}" for k in diff)
                raise EpisodeLogError(f"{run_file} belongs to a different run ({details}); "
                                      "use a new log directory or the same settings")
        else:
            write_durable(run_file, (json.dumps(self.run_meta, indent=2) + "\n").encode())
        self.path = self.dir / EPISODES_FILE
        self.records: list[EpisodeRecord] = read_records(self.path, repair=True)

    def ok_records(self) -> list[EpisodeRecord]:
        return [r for r in self.records if r.status == "ok"]

    def void_attempts(self, episode: int) -> int:
        """How many void attempts episode ``episode`` already has (the next attempt's number)."""
        return sum(1 for r in self.records if r.episode == episode and r.status == "void")

    def image_name(self, episode: int, attempt: int, which: str) -> str:
        return f"{IMAGES_DIR}/k{episode:04d}_a{attempt}_{which}.png"

    def save_image(self, episode: int, attempt: int, which: str, image: np.ndarray) -> str:
        """Write an RGB uint8 image (H × W × 3) durably as PNG; returns its name relative to the run."""
        name = self.image_name(episode, attempt, which)
        write_png(self.dir / name, image, f"episode {episode} {which} image")
        return name

    def load_image(self, record: EpisodeRecord, which: str) -> np.ndarray:
        """The RGB uint8 image ``which`` ("initial"/"final") of a record."""
        return load_episode_image(self.dir, record, which)

    def append(self, record: EpisodeRecord) -> None:
        """Append one record durably (flush + fsync of file and directory) before returning."""
        expected_episode = len(self.ok_records()) + 1
        if record.episode != expected_episode or record.attempt != self.void_attempts(record.episode):
            raise EpisodeLogError(f"{self.path}: cannot append episode {record.episode} attempt {record.attempt}; "
                                  f"next is episode {expected_episode} attempt {self.void_attempts(expected_episode)}")
        append_durably(self.path, record.to_line())
        self.records.append(record)


def open_run(log_dir: str | Path) -> tuple[dict, list[EpisodeRecord]]:
    """Read a finished or partial run without modifying it: (run.json contents, records)."""
    log_dir = Path(log_dir)
    run_file = log_dir / RUN_FILE
    if not run_file.exists():
        raise FileNotFoundError(f"{log_dir} is not a fine-tuning run directory (no {RUN_FILE})")
    return _read_run_file(run_file), read_records(log_dir / EPISODES_FILE)


def _read_run_file(run_file: Path) -> dict:
    """``run.json``'s settings; a damaged file (it is written atomically, so only damage from outside) is an
    :class:`EpisodeLogError` naming it and the way back."""
    try:
        stored = json.loads(run_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        stored = exc
    if not isinstance(stored, dict):
        why = f"not valid JSON: {stored}" if isinstance(stored, Exception) else f"a JSON {type(stored).__name__}, not an object"
        raise EpisodeLogError(f"{run_file} is damaged ({why}); it only records the run's settings: restore it, or "
                              "delete it and run the same 'deft-robot finetune' command again to rewrite it (the "
                              "episodes in the log are kept)")
    return stored


def load_episode_image(log_dir: str | Path, record: EpisodeRecord, which: str) -> np.ndarray:
    """The RGB uint8 image ``which`` ("initial"/"final") of a record of the run in ``log_dir``."""
    import cv2

    if which not in record.images:
        raise KeyError(f"episode {record.episode} attempt {record.attempt} has no {which!r} image")
    path = Path(log_dir) / record.images[which]
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"episode image {path} is missing or unreadable")
    return bgr[:, :, ::-1].copy()
