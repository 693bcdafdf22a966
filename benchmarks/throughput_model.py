"""Throughput model: project wall time and cluster size of the full DEFT extraction from per-stage costs.

Measured here (on whatever machine runs it):

- **CPU stages** of the real extraction code (:class:`pipelines.stages.process.ClipProcessor`) on the
  synthetic datasets (``deft data synth all --out DIR``): decoding, contact frame, contact points +
  homography + GMM, crop, validation, and the shard write, timed per clip by wrapping the processor's
  stage runner. The hand-pose model is replaced by a zero-cost stub for Ego4D / EPIC (it is a model
  stage, costed below); HOI4D's pose is read from its pickles (a CPU stage, timed).
- **Decode rate** of consecutive frames (what a hand-object model stage decodes per clip), at the
  synthetic resolution, scaled by pixel count to ``--decode-resolution`` (an assumption, stated).
- **Model stages on CPU** (``--model-cpu``): OWLv2 / SAM / Grounding DINO at transformers' default
  config sizes (OWLv2 ViT-B/16, SAM ViT-B @ 1024², Grounding DINO Swin-T @ 800x1333), randomly
  initialised (same compute as trained weights), one image after a warm-up, wall and process CPU
  seconds, in a fresh subprocess. These are CPU costs, not GPU costs.

GPU costs per image are inputs: ``--gpu-costs FILE.json`` (see ``benchmarks/gpu_costs.json``), each
``{"s_per_image": float | null, "source": str}``. A stage whose cost is null is reported as unknown
and left out of the GPU totals (the totals are then lower bounds, and say so).

The projection (Appendix D counts: 64,666 Ego4D / 9,144 EPIC-100 / 2,707 HOI4D clips used) covers two
scenarios: ``annotations`` (contacts from the datasets' own detections / boxes / geometry; GPU work =
open-vocabulary object box + hand pose per clip) and ``raw_video`` (adds a hand-object model on
``--detect-fps`` frames of every clip). Raw (pre-filter) clip counts are inputs too (``raw_clips`` in
the JSON); CPU work is charged per raw clip, GPU work per clip that reaches the model stages.

Prints one JSON object. Example::

    python benchmarks/throughput_model.py --synth data/synth --clips 6 --model-cpu
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PAPER_USED = {"ego4d": 64666, "epic_kitchens": 9144, "hoi4d": 2707}  # Appendix D
DEFAULT_COSTS = Path(__file__).with_name("gpu_costs.json")


class _ZeroPose:
    """Hand-pose stub for timing the CPU stages only (the model's cost is a GPU input)."""

    name = "timing-stub"

    def estimate(self, record, frame_rgb, contact):
        from pipelines.stages.hand_pose import HandPose

        return HandPose(np.zeros(3), np.zeros(45), self.name)


def measure_cpu_stages(root: Path, dataset: str, n: int) -> dict:
    """Median seconds per clip of each ClipProcessor stage (+ write) on ``n`` synthetic clips."""
    import pipelines.stages.process as proc
    from pipelines.sources.base import open_source
    from pipelines.sources.filters import FilterConfig, apply_filters
    from pipelines.stages.writer import write_batch

    records = []
    for r in apply_filters(open_source(dataset, str(root / dataset)).records(), FilterConfig()):
        records.append(r)
        if len(records) >= n:
            break
    if not records:
        raise SystemExit(f"no {dataset} clips under {root / dataset} (generate them: deft data synth all --out {root})")
    config = proc.ExtractConfig(dataset=dataset, hand_pose_backend="hoi4d" if dataset == "hoi4d" else None)
    processor = proc.ClipProcessor(config, hand_pose=None if dataset == "hoi4d" else _ZeroPose())
    per_clip: list[dict] = []
    errors: dict[str, str] = {}
    original = proc._run

    def timed(stage, fn, *a, **k):
        t = time.perf_counter()
        try:
            return original(stage, fn, *a, **k)
        finally:
            current[stage] = current.get(stage, 0.0) + time.perf_counter() - t

    proc._run = timed
    ok = 0
    try:
        with tempfile.TemporaryDirectory() as out:
            for rec in records:
                current: dict = {}
                t0 = time.perf_counter()
                outcome = processor.process(rec)
                t1 = time.perf_counter()
                write_batch(out, [outcome.row] if outcome.row else [], [outcome.error] if outcome.error else [])
                current["write"] = time.perf_counter() - t1
                current["total"] = time.perf_counter() - t0
                if outcome.row is not None:
                    per_clip.append(current)  # failed clips stop early: only complete clips are costed
                else:
                    errors.setdefault(outcome.error["stage"], outcome.error["error"][:200])
    finally:
        proc._run = original
    stages = sorted({k for c in per_clip for k in c})
    return {"clips": len(records), "clips_ok": len(per_clip), "first_error_by_stage": errors,
            "median_s_per_clip": {s: round(statistics.median([c.get(s, 0.0) for c in per_clip]), 5) for s in stages}}


def measure_decode(root: Path, frames: int = 60) -> dict:
    """Consecutive-frame decode rate on one synthetic video (what a per-frame model stage needs)."""
    from pipelines.stages.video import read_frames

    video = next(iter(sorted(root.rglob("*.mp4")) + sorted(root.rglob("*.MP4"))), None)
    if video is None:
        raise SystemExit(f"no video under {root}")
    read_frames(video, [0])
    t = time.perf_counter()
    arr = read_frames(video, list(range(frames)))
    dt = time.perf_counter() - t
    return {"video": str(video), "frames": len(arr), "width": int(arr.shape[2]), "height": int(arr.shape[1]),
            "s_per_frame": round(dt / len(arr), 6)}


def measure_models_cpu(runs: int = 1) -> dict:
    """Seconds per image of real-size, randomly initialised OWLv2 / SAM / Grounding DINO on this CPU."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    out = {}

    def time_it(name, model, inputs, note):
        model.eval()
        with torch.inference_mode():
            model(**inputs)  # warm-up
            t, c = time.perf_counter(), time.process_time()
            for _ in range(runs):
                model(**inputs)
        out[name] = {"s_per_image": round((time.perf_counter() - t) / runs, 3),
                     "cpu_s_per_image": round((time.process_time() - c) / runs, 3), "torch_threads": torch.get_num_threads(),
                     "config": note}

    cfg = tf.Owlv2Config()
    s = cfg.vision_config.image_size
    time_it("owlv2", tf.Owlv2ForObjectDetection(cfg), {"pixel_values": torch.rand(1, 3, s, s),
            "input_ids": torch.randint(1, 1000, (1, 16)), "attention_mask": torch.ones(1, 16, dtype=torch.long)},
            f"Owlv2Config() default: ViT-B/{cfg.vision_config.patch_size} @ {s}px, 1 query")
    cfg = tf.SamConfig()
    time_it("sam", tf.SamModel(cfg), {"pixel_values": torch.rand(1, 3, 1024, 1024),
            "input_boxes": torch.tensor([[[100.0, 100.0, 400.0, 400.0]]])},
            f"SamConfig() default: ViT hidden {cfg.vision_config.hidden_size} x {cfg.vision_config.num_hidden_layers} layers @ 1024px, 1 box")
    cfg = tf.GroundingDinoConfig()
    time_it("grounding-dino", tf.GroundingDinoForObjectDetection(cfg), {"pixel_values": torch.rand(1, 3, 800, 1333),
            "input_ids": torch.randint(1000, 2000, (1, 8)), "attention_mask": torch.ones(1, 8, dtype=torch.long)},
            "GroundingDinoConfig() default: Swin-T backbone @ 800x1333, 1 phrase")
    return out


def project(cpu: dict, decode: dict, gpu: dict, counts: dict, detect_fps: float, clip_s: dict,
            decode_res: tuple[int, int], cores: int, gpus: int, target_h: float) -> dict:
    """Core-hours, GPU-hours, wall time on (cores, gpus) and the cluster needed for ``target_h`` hours."""
    pix_scale = decode_res[0] * decode_res[1] / (decode["width"] * decode["height"])
    measured = [d for d in cpu.values() if d["clips_ok"]]
    if not measured:
        raise SystemExit("no synthetic clip completed in any dataset: nothing to project from")
    fallback = max(measured, key=lambda d: d["median_s_per_clip"]["total"])
    decode_s = decode["s_per_frame"] * pix_scale
    known = {k: v["s_per_image"] for k, v in gpu.items() if isinstance(v, dict) and v.get("s_per_image") is not None}
    unknown = sorted(k for k, v in gpu.items() if isinstance(v, dict) and v.get("s_per_image") is None)
    scenarios = {}
    for scen in ("annotations", "raw_video"):
        cpu_s = gpu_s = 0.0
        per_ds = {}
        for ds, c in counts.items():
            raw = c["raw_clips"] or c["used_clips"]
            m = cpu[ds] if cpu[ds]["clips_ok"] else fallback  # no complete clip: the costliest measured dataset
            cpu_clip = m["median_s_per_clip"]["total"]  # includes the shard write
            cpu_clip += m["median_s_per_clip"].get("video", 0.0) * (pix_scale - 1)  # its 2 frames at full res
            g = known.get("object_boxes", 0.0) + (known.get("hand_pose", 0.0) if ds != "hoi4d" else 0.0)
            frames = 0.0
            if scen == "raw_video":
                frames = detect_fps * clip_s[ds]
                cpu_clip += frames * decode_s
                g += frames * known.get("hand_object", 0.0)
            per_ds[ds] = {"clips_charged_cpu": raw, "clips_charged_gpu": c["used_clips"], "cpu_s_per_clip": round(cpu_clip, 4),
                          "gpu_s_per_clip": round(g, 4), "model_frames_per_clip": round(frames, 1),
                          "cpu_cost_borrowed": not cpu[ds]["clips_ok"]}
            cpu_s += raw * cpu_clip
            gpu_s += c["used_clips"] * g
        wall_h = max(cpu_s / cores, gpu_s / gpus if gpus else 0.0) / 3600
        scenarios[scen] = {
            "per_dataset": per_ds, "cpu_core_hours": round(cpu_s / 3600, 2), "gpu_hours": round(gpu_s / 3600, 2),
            "wall_hours_on_cluster": round(wall_h, 2),
            "cluster_for_target": {"target_hours": target_h, "cpu_cores": int(np.ceil(cpu_s / 3600 / target_h)),
                                   "gpus": int(np.ceil(gpu_s / 3600 / target_h))},
            "gpu_totals_are_lower_bounds": bool(unknown)}
    return {"cluster": {"cpu_cores": cores, "gpus": gpus}, "decode_scaled_s_per_frame": round(decode_s, 5),
            "gpu_stages_unknown": unknown, "scenarios": scenarios}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--synth", required=True, type=Path, help="root of `deft data synth all --out DIR` (ego4d/, epic_kitchens/, hoi4d/)")
    p.add_argument("--clips", type=int, default=6, help="synthetic clips timed per dataset")
    p.add_argument("--gpu-costs", type=Path, default=DEFAULT_COSTS, help="JSON of GPU seconds per image per model stage")
    p.add_argument("--model-cpu", action="store_true", help="also time real-size model architectures on this CPU")
    p.add_argument("--detect-fps", type=float, default=10.0, help="frames/s a raw-video hand-object model scans")
    p.add_argument("--decode-resolution", default="1920x1080", help="resolution of the real videos (decode cost scales by pixels)")
    p.add_argument("--cpu-cores", type=int, default=24 * 32, help="cluster CPU cores (cluster.yaml: 24 x c6i.8xlarge)")
    p.add_argument("--gpus", type=int, default=16, help="cluster GPUs (cluster.yaml: 16 x g5.2xlarge)")
    p.add_argument("--target-hours", type=float, default=24.0, help="wall time to size a cluster for")
    a = p.parse_args(argv)
    costs = json.loads(a.gpu_costs.read_text())
    counts = {ds: {"used_clips": PAPER_USED[ds], "raw_clips": costs.get("raw_clips", {}).get(ds)} for ds in PAPER_USED}
    clip_s = {ds: float(costs.get("clip_seconds", {}).get(ds, {}).get("value", 8.0)) for ds in PAPER_USED}
    cpu = {ds: measure_cpu_stages(a.synth, ds, a.clips) for ds in PAPER_USED}
    decode = measure_decode(a.synth)
    w, h = (int(v) for v in a.decode_resolution.lower().split("x"))
    result = {
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "note": "measured on this machine; on a shared 2-core CPU the numbers are upper bounds per core"},
        "cpu_stages_measured": cpu, "decode_measured": decode,
        "gpu_costs_input": {"file": str(a.gpu_costs), **costs},
        "projection": project(cpu, decode, costs.get("gpu_s_per_image", {}), counts, a.detect_fps, clip_s, (w, h),
                              a.cpu_cores, a.gpus, a.target_hours),
    }
    if a.model_cpu:
        # A fresh process: torch models segfaulted here in a process that had already decoded video.
        import subprocess

        code = f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); import throughput_model as t; print(json.dumps(t.measure_models_cpu()))"
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"model timing failed ({run.returncode}): {run.stderr[-2000:]}")
        result["model_stages_cpu_measured"] = json.loads(run.stdout.strip().splitlines()[-1])
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
