"""Generate a synthetic egocentric dataset in a real dataset's native layout.

``generate_dataset("epic_kitchens", out, clips=20, seed=0)`` plans the clips (tasks cycled over the
nine DEFT tasks, varied objects, ~10 % left-hand and ~10 % no-contact clips, per-dataset fps and
grouping into videos), renders them one by one, hands each to the dataset writer, writes the
ground-truth sidecar, one human demo per task, and optionally breaks K inputs on purpose.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from deft_core.tasks import TASK_NAMES
from pipelines.synth.writers.common import ClipPlan, DatasetWriter, uuid_from_rng
from pipelines.synth.writers.groundtruth import SIDECAR_DIR, GroundTruthWriter

DATASETS = ("ego4d", "epic_kitchens", "hoi4d")
#: (module, class) of each dataset's writer — an explicit table, imported on use.
WRITERS = {"ego4d": ("pipelines.synth.writers.ego4d", "Ego4DWriter"),
           "epic_kitchens": ("pipelines.synth.writers.epic_kitchens", "EpicKitchensWriter"),
           "hoi4d": ("pipelines.synth.writers.hoi4d", "HOI4DWriter")}
EPIC_FPS = (59.94, 50.0, 29.97)  #: the first three EPIC videos use these; later ones draw 0.6 / 0.3 / 0.1
HOI4D_FPS = 15.0
DEMO_FPS = 30.0


class OutputExistsError(ValueError):
    """The output directory exists and is not empty (and ``overwrite`` was not given)."""


@dataclass
class Summary:
    dataset: str
    root: str
    clips: int
    videos: int
    files: int
    bytes: int
    seconds: float
    corrupted: int

    @property
    def clips_per_minute(self) -> float:
        return 60.0 * self.clips / self.seconds if self.seconds > 0 else float("nan")


def plan_clips(dataset: str, clips: int, seed: int, corrupt: int = 0) -> list[ClipPlan]:
    """The reproducible clip plan of a dataset (see module doc). Corrupted clips get a video of their own."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if clips < 1:
        raise ValueError(f"--clips must be at least 1, got {clips}")
    if not 0 <= corrupt <= clips:
        raise ValueError(f"--corrupt must be between 0 and the number of clips ({clips}), got {corrupt}")
    rng = np.random.default_rng([seed, 0x5EED])
    task_offset = int(rng.integers(0, len(TASK_NAMES)))
    # Spread corruptions evenly, sparing the left-hand / no-contact clips while there are enough others.
    pool = [i for i in range(clips) if i % 10 not in (4, 7)]
    pool = pool if len(pool) >= corrupt else list(range(clips))
    corrupt_at = {pool[j] for j in np.linspace(0, len(pool) - 1, corrupt).round().astype(int)} if corrupt else set()
    while len(corrupt_at) < corrupt:  # rounding collisions when corrupt is close to clips
        corrupt_at.add(min(set(pool) - corrupt_at))
    plans: list[ClipPlan] = []
    video_left = 0
    video_id, fps = "", 30.0
    n_videos = 0
    epic_counts: dict[int, int] = {}
    for i in range(clips):
        is_corrupt = i in corrupt_at
        if video_left == 0 or is_corrupt or (plans and plans[-1].corrupt):
            video_left = 1 if is_corrupt else int(rng.integers(1, 4)) if dataset != "hoi4d" else 1
            fps, video_id = _new_video(dataset, n_videos, rng, epic_counts)
            n_videos += 1
        video_left -= 1
        plans.append(ClipPlan(
            clip_id=f"clip_{i:04d}", index=i, seed=int(seed) * 100_003 + i,
            task=TASK_NAMES[(i + task_offset) % len(TASK_NAMES)],
            hand_side="left" if i % 10 == 7 else "right", has_contact=i % 10 != 4,
            object_split="test" if rng.random() < 0.15 else "train", fps=fps, video_id=video_id,
            corrupt="pending" if is_corrupt else None))
    return plans


def _new_video(dataset: str, k: int, rng: np.random.Generator, epic_counts: dict[int, int]) -> tuple[float, str]:
    if dataset == "ego4d":
        return 30.0, uuid_from_rng(rng)
    if dataset == "hoi4d":
        return HOI4D_FPS, f"seq_{k:04d}"
    fps = EPIC_FPS[k] if k < len(EPIC_FPS) else float(rng.choice(EPIC_FPS, p=[0.6, 0.3, 0.1]))
    participant = 1 + k // 4
    n = epic_counts.get(participant, 0) + 1
    epic_counts[participant] = n
    # EK-100 extension videos (PXX_1YY) are the 50 fps ones.
    return fps, (f"P{participant:02d}_{100 + n}" if fps == 50.0 else f"P{participant:02d}_{n:02d}")


def _make_writer(dataset: str, root: Path, seed: int) -> DatasetWriter:
    import importlib

    module, cls = WRITERS[dataset]
    return getattr(importlib.import_module(module), cls)(root, seed=seed)


def prepare_output(root: Path, overwrite: bool, datasets: tuple[str, ...] | None = None) -> None:
    """Refuse a non-empty ``root`` unless ``overwrite``; with it, remove a previously generated dataset.

    To avoid deleting unrelated data, ``overwrite`` only removes a folder that is entirely ours: one
    dataset (``datasets`` None: a ``_groundtruth/`` folder at its top), or, for ``data synth all``
    (``datasets`` = the names it writes), a folder holding nothing but those datasets' folders, at least one
    with its ``_groundtruth/``. Anything else inside (shards, a trained model, notes) makes it refuse,
    naming what it would have deleted. (Until 2026-11-27 a ``_groundtruth/`` one level down was enough, and
    ``data synth ego4d --out proj --overwrite`` deleted a whole project folder that held a dataset.)
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise OutputExistsError(f"--out {root} exists and is not a directory")
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"--out {root} exists and is not empty; pass --overwrite to replace it")
        if datasets is None:
            ours, others = (root / SIDECAR_DIR).is_dir(), []
        else:
            entries = list(root.iterdir())
            others = sorted(p.name for p in entries if not (p.is_dir() and p.name in datasets))
            ours = not others and any((p / SIDECAR_DIR).is_dir() for p in entries)
        if not ours:
            what = (f"it also holds {', '.join(others[:5])}{' …' if len(others) > 5 else ''}" if others
                    else f"no {SIDECAR_DIR}/ at its top" if datasets is None
                    else f"none of its dataset folders has a {SIDECAR_DIR}/")
            raise OutputExistsError(f"--out {root} does not look like a generated dataset ({what}); refusing to "
                                    "delete it even with --overwrite: give the dataset its own folder")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)


def _default_renderers() -> tuple[Callable, Callable]:
    try:
        from pipelines.synth.render import render_clip, render_demo
    except ImportError as exc:  # pragma: no cover - depends on the renderer being installed
        raise RuntimeError(f"the synthetic renderer is not available ({exc}); install with pip install 'deft[sim]'") from exc
    return render_clip, render_demo


def generate_dataset(dataset: str, out: str | Path, *, clips: int, seed: int = 0, corrupt: int = 0,
                     width: int = 456, height: int = 256, overwrite: bool = False, demos: bool = True,
                     render_fn: Callable | None = None, demo_fn: Callable | None = None,
                     progress: bool | str = False) -> Summary:
    """Render and write ``clips`` clips of ``dataset`` under ``out``; returns a :class:`Summary`.

    ``render_fn`` / ``demo_fn`` default to ``pipelines.synth.render.render_clip`` / ``render_demo``.
    Image size is ``width`` x ``height`` pixels (both even).
    """
    from pipelines.synth.writers.corrupt import apply_corruptions, corruption_kinds

    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError(f"--width/--height must be even and at least 16, got {width}x{height}")
    plans = plan_clips(dataset, clips, seed, corrupt)
    root = Path(out)
    prepare_output(root, overwrite)
    if render_fn is None or (demos and demo_fn is None):
        default_clip, default_demo = _default_renderers()
        render_fn, demo_fn = render_fn or default_clip, demo_fn or default_demo
    kinds = corruption_kinds(dataset)
    k = 0
    for plan in plans:
        if plan.corrupt:
            plan.corrupt, k = kinds[k % len(kinds)], k + 1
    t0 = time.perf_counter()
    writer = _make_writer(dataset, root, seed)
    truth = GroundTruthWriter(root, dataset=dataset, seed=seed, width=width, height=height)
    placements = {}
    n_videos = 0
    with _progress(progress, f"{dataset}: rendering", len(plans) + (len(TASK_NAMES) if demos else 0)) as advance:
        current = None
        for plan in plans:
            if plan.video_id != current:
                if current is not None:
                    writer.close_video()
                writer.open_video(plan.video_id, plan.fps)
                current, n_videos = plan.video_id, n_videos + 1
            clip = _render_with_retries(render_fn, plan, width, height, with_depth=dataset == "hoi4d")
            clip.validate()
            placement = writer.add_clip(clip, plan)
            truth.add(clip, plan, placement)
            placements[plan.clip_id] = placement
            del clip
            advance()
        writer.close_video()
        writer.finish()
        truth.manifest["filtered_annotations"] = list(getattr(writer, "filtered", []))
        if demos:
            truth.manifest["demos"] = write_demos(root, demo_fn, seed=seed, width=width, height=height, advance=advance)
    truth.manifest["corruptions"] = apply_corruptions(dataset, root, plans, placements, np.random.default_rng([seed, 0xBAD]))
    truth.close()
    seconds = time.perf_counter() - t0
    files = [p for p in root.rglob("*") if p.is_file()]
    return Summary(dataset, str(root), len(plans), n_videos, len(files), sum(p.stat().st_size for p in files),
                   seconds, corrupt)


RENDER_ATTEMPTS = 4  #: the renderer may reject a seed (e.g. no collision-free grasp); retry with new seeds


def _render_with_retries(render_fn: Callable, plan: ClipPlan, width: int, height: int, *, with_depth: bool):
    """Render ``plan``; on a RuntimeError from the renderer retry with derived seeds (recorded in the clip)."""
    errors = []
    for attempt in range(RENDER_ATTEMPTS):
        seed = plan.seed + attempt * 7919
        try:
            clip = render_fn(clip_id=plan.clip_id, seed=seed, fps=plan.fps, width=width, height=height,
                             task=plan.task, hand_side=plan.hand_side, has_contact=plan.has_contact,
                             with_depth=with_depth, object_split=plan.object_split)
        except RuntimeError as exc:
            errors.append(f"seed {seed}: {exc}")
            continue
        plan.seed = seed
        return clip
    raise RuntimeError(f"{plan.clip_id} ({plan.task}): the renderer failed {RENDER_ATTEMPTS} times: " + "; ".join(errors))


def write_demos(root: Path, demo_fn: Callable, *, seed: int, width: int, height: int,
                advance: Callable = lambda: None) -> dict:
    """One human demo per task: ``_demos/<task>.mp4`` + ``_demos/<task>_wrist.npz``.

    The npz holds ``T_world_wrist`` (T, 4, 4) metres, ``T_world_camera`` (T, 4, 4), ``fps``,
    ``grasp_frame`` (0-based index of the first contact frame, -1 if none) and ``K`` (3, 3).
    """
    from deft_core.video import write_video

    out = {}
    for i, task in enumerate(TASK_NAMES):
        demo = demo_fn(task, seed=int(seed) * 1009 + i, fps=DEMO_FPS, width=width, height=height)
        video = Path("_demos") / f"{task}.mp4"
        write_video(root / video, demo.frames, DEMO_FPS)
        wrist = Path("_demos") / f"{task}_wrist.npz"
        np.savez(root / wrist, T_world_wrist=demo.wrist_pose_world, T_world_camera=demo.camera_pose_world,
                 fps=np.float64(DEMO_FPS), grasp_frame=np.int64(-1 if demo.contact_frame is None else demo.contact_frame),
                 K=np.asarray(demo.K, np.float64))
        out[task] = {"video": str(video), "wrist": str(wrist), "num_frames": demo.num_frames}
        advance()
    return out


class _progress:
    """Progress of a render, ``with _progress(mode, ...) as advance: advance()``. ``mode``: ``"bar"`` (or
    True) a rich bar for a terminal; ``"lines"`` plain lines for a log file (``deft demo`` sends each
    render's output to one): ``<description> k/N clips, m.m min, ~r.r min left`` at every 10 % and at
    least every ``every_s`` seconds, flushed; ``"off"`` (or False/None) nothing."""

    def __init__(self, mode, description: str, total: int, every_s: float = 60.0, stream=None):
        self.mode = {True: "bar", False: "off", None: "off"}.get(mode, mode)
        if self.mode not in ("bar", "lines", "off"):
            raise ValueError(f"progress must be 'bar', 'lines' or 'off', got {mode!r}")
        self.description, self.total, self.every_s, self.stream = description, total, every_s, stream
        self._bar = None

    def __enter__(self) -> Callable[[], None]:
        if self.mode == "off":
            return lambda: None
        if self.mode == "lines":
            return self._lines()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

        self._bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TimeRemainingColumn())
        self._bar.start()
        task = self._bar.add_task(self.description, total=self.total)
        return lambda: self._bar.advance(task)

    def _lines(self) -> Callable[[], None]:
        import sys

        stream = self.stream or sys.stderr
        t0, state = time.perf_counter(), {"done": 0, "last_t": time.perf_counter(), "last_decile": 0}

        def advance() -> None:
            state["done"] += 1
            done, now = state["done"], time.perf_counter()
            decile = (10 * done) // max(self.total, 1)
            if decile > state["last_decile"] or now - state["last_t"] >= self.every_s or done == self.total:
                elapsed = now - t0
                left = elapsed / done * (self.total - done)
                print(f"{self.description} {done}/{self.total} clips, {elapsed / 60:.1f} min, ~{left / 60:.1f} min left",
                      file=stream, flush=True)
                state["last_t"], state["last_decile"] = now, decile
        return advance

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
