"""Extraction throughput: per stage, decode (decord vs ffmpeg), and Ray Data (N actors) vs the plain loop.

    python benchmarks/bench_extraction.py --source epic_kitchens --root /tmp/deft_synth/epic_kitchens \\
        [--hand-pose mediapipe --hand-pose-option fov_deg=93.9] [--workers 2] [--repeat 10] [--limit N]

Prints one JSON object. Each measurement writes to a fresh temporary output (no resume skipping).
Times are wall-clock (time.perf_counter) on this machine; Ray start-up is excluded from the Ray
Data figure and reported separately.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs._extract_common import build_parser, make_config, run_job  # noqa: E402
from pipelines.sources.base import open_source  # noqa: E402
from pipelines.sources.filters import apply_filters  # noqa: E402
from pipelines.stages import process  # noqa: E402
from pipelines.stages.loop import run_local  # noqa: E402
from pipelines.stages.process import ClipProcessor  # noqa: E402


class RepeatedSource:
    """Every record of ``source`` ``repeat`` times under new action ids (distinct sample ids, same
    work), so that fixed start-up costs (Ray workers, model loading) are amortised as on real data."""

    def __init__(self, source, repeat: int):
        self.source, self.repeat, self.dataset = source, repeat, source.dataset

    @property
    def bad_rows(self):
        return getattr(self.source, "bad_rows", [])

    @property
    def skipped(self):
        return getattr(self.source, "skipped", {})

    def records(self):
        recs = list(self.source.records())
        for k in range(self.repeat):
            for r in recs:
                yield replace(r, action_id=f"{r.action_id}-rep{k}", sample_id="")


def per_stage(source: str, root: str, config, limit: int | None) -> dict:
    """Plain loop with every stage call timed (process._run wraps each stage)."""
    totals: dict[str, float] = defaultdict(float)
    orig = process._run

    def timed(stage, fn, *a, **k):
        t = time.perf_counter()
        try:
            return orig(stage, fn, *a, **k)
        finally:
            totals[stage] += time.perf_counter() - t

    proc = ClipProcessor(config)
    recs = list(apply_filters(open_source(source, root).records()))[:limit]
    process._run = timed
    try:
        t0 = time.perf_counter()
        outcomes = [proc.process(r) for r in recs]
        total = time.perf_counter() - t0
    finally:
        process._run = orig
    n = len(recs)
    return {"clips": n, "ok": sum(o.row is not None for o in outcomes), "seconds": round(total, 3),
            "clips_per_s": round(n / total, 3) if total else None,
            "seconds_per_clip_by_stage": {k: round(v / max(1, n), 4) for k, v in sorted(totals.items())},
            "other_seconds_per_clip (hand pose, text, row)": round((total - sum(totals.values())) / max(1, n), 4)}


def decode(videos: list[str]) -> dict:
    """Decode every frame of the videos with decord and with the ffmpeg CLI (rawvideo rgb24 to a pipe)."""
    import decord

    readable = []
    for v in videos:  # broken inputs (the corrupted clips) are left out of the comparison
        try:
            decord.VideoReader(v)
            readable.append(v)
        except Exception:
            pass
    skipped, videos = len(videos) - len(readable), readable
    frames, t0 = 0, time.perf_counter()
    for v in videos:
        vr = decord.VideoReader(v)
        frames += len(vr.get_batch(list(range(len(vr)))).asnumpy())
    t_decord = time.perf_counter() - t0
    t0 = time.perf_counter()
    for v in videos:
        subprocess.run(["ffmpeg", "-v", "error", "-threads", "1", "-i", v, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                       stdout=subprocess.DEVNULL, check=True)
    t_ffmpeg = time.perf_counter() - t0
    return {"videos": len(videos), "unreadable_videos_skipped": skipped, "frames": frames, "decord_s": round(t_decord, 3), "ffmpeg_s": round(t_ffmpeg, 3),
            "decord_fps": round(frames / t_decord, 1), "ffmpeg_fps": round(frames / t_ffmpeg, 1)}


def compare_once(a, config, tmp: Path) -> dict:
    """The plain loop, then Ray Data on a fresh local Ray (its start excluded, then shut down, so no
    round reuses another's warm workers), on the same ``--repeat`` copies of the source."""
    import ray

    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    m = run_local(RepeatedSource(open_source(a.source, a.root), a.repeat), tmp / "local", config, limit=a.limit,
                  batch_size=a.batch_size)
    t_local = time.perf_counter() - t0
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=a.ray_num_cpus or a.workers, log_to_driver=False)
    t_init = time.perf_counter() - t0
    a.out = str(tmp / "ray")
    try:
        mr = run_job(a.source, a, source=RepeatedSource(open_source(a.source, a.root), a.repeat))
    finally:
        ray.shutdown()
    plain = {"clips": m["this_run"]["clips_processed"], "seconds": round(t_local, 3),
             "clips_per_s": round(m["this_run"]["clips_processed"] / t_local, 3), "samples": m["counts"]["samples"]}
    rd = {"clips": mr["this_run"]["clips_pending"], "seconds": mr["this_run"]["seconds"], "clips_per_s": mr["this_run"]["clips_per_s"],
          "samples": mr["counts"]["samples"], "ray_init_s": round(t_init, 3), "workers": a.workers,
          "batch_size": mr["this_run"]["batch_size"]}
    if plain["samples"] != rd["samples"]:
        raise RuntimeError(f"plain loop wrote {plain['samples']} samples, Ray Data {rd['samples']}")
    return {"load_average_1min": [load, os.getloadavg()[0]], "plain_loop": plain, "ray_data": rd,
            "ray_over_plain_speedup": round(rd["clips_per_s"] / plain["clips_per_s"], 3)}


def main() -> int:
    p = build_parser("any", __doc__)
    p.add_argument("--source", required=True, choices=["ego4d", "epic_kitchens", "hoi4d"])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=10, help="process every clip this many times (distinct ids) for the loop-vs-Ray comparison")
    p.add_argument("--rounds", type=int, default=1,
                   help="plain loop and Ray Data back to back this many times, alternating (a shared machine is noisy)")
    p.add_argument("--compare-only", action="store_true", help="skip the per-stage and decode measurements")
    for action in p._actions:  # each round writes to its own temporary folder
        if action.dest == "out":
            action.required, action.default = False, "unused"
    a = p.parse_args()
    a.concurrency, a.no_progress = a.workers, True
    config = make_config(a.source, a)
    load_before = os.getloadavg()[0]
    recs = list(apply_filters(open_source(a.source, a.root).records()))[:a.limit]
    result = {"source": a.source, "root": a.root, "hand_pose": config.resolved_hand_pose_backend(), "workers": a.workers,
              "repeat": a.repeat}
    if not a.compare_only:
        result["per_stage_plain_loop"] = per_stage(a.source, a.root, config, a.limit)
        result["decode"] = decode(sorted({r.video_path for r in recs if Path(r.video_path).is_file()}))
    tmp = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    try:
        rounds = [compare_once(a, config, tmp / f"round{k}") for k in range(a.rounds)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["rounds"] = rounds
    result.update({k: rounds[-1][k] for k in ("plain_loop", "ray_data")})
    result["ray_over_plain_speedup"] = round(statistics.median(r["ray_over_plain_speedup"] for r in rounds), 3)
    result["ray_over_plain_speedup_all"] = [r["ray_over_plain_speedup"] for r in rounds]
    result["load_average_before_after"] = [load_before, os.getloadavg()[0]]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
