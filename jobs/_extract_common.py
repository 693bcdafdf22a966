"""Shared wiring of the three extraction jobs (``jobs/extract_{ego4d,epic_kitchens,hoi4d}.py``).

records (metadata) → Appendix D filters → ``--limit`` → skip finished ids (resume) → Ray Data
``from_items`` (one block per batch) → optional model stages (``--hand-object-model`` / ``--object-boxes``:
actor pools, :mod:`jobs._extract_models`) → ``map_batches(ExtractBatch)`` (an actor pool: each actor loads
the detector and hand-pose model once, runs every per-clip stage on its batch, so decoded frames never
leave the process, and writes it idempotently) → manifest + summary. Task-based extraction (models cached
per worker process) and larger auto-sized batches were measured slower on 2 cores (docs/extraction-jobs.md).

With ``--text-encoder`` the embedding runs in a second Ray Data stage (its own actors, hence its own
processes: MiniLM crashed when run in a process that had already used the video/image libraries):
stage 1 returns the processed rows, stage 2 embeds them and writes.

Runs against a cluster (``ray job submit``: ``RAY_ADDRESS`` is set for the driver) or, with plain
``python jobs/...``, on a local Ray started by ``ray.init()`` (``--address`` to choose).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from deft_core.cli_util import int_at_least
from jobs._extract_models import add_model_args, add_model_stages, model_options, model_settings
from pipelines.sources.base import open_source
from pipelines.sources.filters import FilterConfig, FilterStats, apply_filters
from pipelines.stages.process import ClipProcessor, ExtractBatch, ExtractConfig, embed_rows
from pipelines.stages.hand_pose import hand_pose_target
from pipelines.stages.text import TEXT_ENCODERS, make_text_encoder
from pipelines.stages.writer import (begin_manifest, check_resumable, done_ids, error_row, pending, source_identity, write_batch,
                                     write_manifest)


def build_parser(dataset: str, doc: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help=f"{dataset} dataset root (native layout)")
    p.add_argument("--out", required=True, help="output folder (shards, errors, manifest.json); reuse it to resume")
    p.add_argument("--hand-pose", default=None,
                   help="hand-pose backend: hoi4d | mediapipe | frankmocap | module:Class (default: hoi4d for HOI4D, else required)")
    p.add_argument("--hand-pose-option", action="append", default=[], metavar="KEY=VALUE",
                   help="backend option, repeatable (e.g. fov_deg=90, checkout=/opt/frankmocap); values parsed as JSON when possible")
    p.add_argument("--text-encoder", default="none", help="minilm | clip[:ARCH] (weights file in DEFT_CLIP_WEIGHTS) | none (default none: embed at training)")
    p.add_argument("--limit", type=int_at_least(1), default=None, help="process at most N clips after filtering (this run)")
    p.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per extraction actor")
    p.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per extraction actor (model backends)")
    p.add_argument("--text-num-gpus", type=float, default=0.0, help="GPUs per text-embedding actor")
    p.add_argument("--concurrency", type=int, default=2, help="extraction actors")
    p.add_argument("--batch-size", type=int, default=4,
                   help="clips per map_batches batch (one shard write each); 4 measured fastest on 2 cores "
                        "(docs/extraction-jobs.md, Throughput)")
    p.add_argument("--max-rows-per-shard", type=int, default=256)
    p.add_argument("--max-batch-retries", type=int_at_least(0), default=2,
                   help="times a batch is retried when its worker process dies (a native crash in a decoder, "
                        "out of memory) before its clips are given up as 'worker' errors (default 2; Ray Data's "
                        "own default retries forever, so one clip that crashes its worker never let a job end)")
    p.add_argument("--address", default=None, help="Ray address (default: RAY_ADDRESS, else a local Ray)")
    p.add_argument("--ray-num-cpus", type=int, default=None,
                   help="start a fresh local Ray with this many CPUs (ignored with --address / RAY_ADDRESS)")
    add_model_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--retry-errors", action="store_true",
                   help="on a re-run, process again the clips of the errors table (e.g. after the missing videos "
                        "arrived); by default a re-run skips finished and failed clips. A clip that now succeeds "
                        "is no longer counted as an error; one that fails again gets its new reason")
    p.add_argument("--no-progress", action="store_true", help="no live progress display")
    if dataset == "hoi4d":
        p.add_argument("--no-masks", action="store_true",
                       help="find the contact points by skin colour, as before pipeline 0.2.0, instead of from the "
                            "sequences' 2Dseg masks and depth (docs/extraction-jobs.md)")
    return p


def _options(pairs: list[str], flag: str = "--hand-pose-option") -> dict[str, Any]:
    out = {}
    for kv in pairs:
        if "=" not in kv:
            raise ValueError(f"{flag} {kv!r}: expected KEY=VALUE")
        k, v = kv.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def make_config(dataset: str, a: argparse.Namespace) -> ExtractConfig:
    text = None if a.text_encoder in (None, "", "none") else a.text_encoder
    # a GPU reserved for the text stage (--text-num-gpus) is one its encoder uses (they default to the CPU)
    text_options = {"device": "cuda"} if text and getattr(a, "text_num_gpus", 0) else {}
    if text is not None and text.split(":")[0] == "clip":  # clip[:ARCH], the weights from DEFT_CLIP_WEIGHTS as in training
        weights = os.environ.get("DEFT_CLIP_WEIGHTS")
        if not weights or not Path(weights).is_file():
            raise ValueError(f"--text-encoder {text} needs DEFT_CLIP_WEIGHTS=FILE, a local open_clip weight file "
                             f"(nothing is downloaded); got {weights!r}")
        text, text_options = "clip", {**text_options, "arch": text.partition(":")[2] or "ViT-B-32",
                                      "weights": str(Path(weights).resolve())}
    cfg = ExtractConfig(dataset=dataset, hand_pose_backend=a.hand_pose, hand_pose_options=_options(a.hand_pose_option),
                        text_encoder=text, text_encoder_options=text_options, seed=a.seed,
                        contact_detector="model" if a.hand_object_model else None,
                        use_masks=not getattr(a, "no_masks", False))
    # fail in the driver, before Ray starts and every actor dies on it: the backend's name, its import, the
    # option names it takes, and the text encoder's name
    _check_constructor("--hand-pose", hand_pose_target(cfg.resolved_hand_pose_backend()), cfg.hand_pose_options,
                       "--hand-pose-option")
    if text is not None and text not in TEXT_ENCODERS:
        raise ValueError(f"unknown text encoder {text!r} (--text-encoder); known: {', '.join(TEXT_ENCODERS)}, or none")
    opts = model_options(a)  # bad --model-option pairs too
    remote = a.address or os.environ.get("RAY_ADDRESS")  # on a cluster the weights may live on the GPU nodes only
    if a.object_boxes in ("owlv2", "grounding-dino") and not remote:  # found or not here, not in every actor
        from pipelines.models.open_vocab import GroundingDinoBoxes, Owlv2Boxes
        from deft_core.segment import resolve_pretrained_dir

        cls = Owlv2Boxes if a.object_boxes == "owlv2" else GroundingDinoBoxes
        try:
            resolve_pretrained_dir(opts["object_boxes"].get("weights"), cls.name, cls.default_weights)
        except (FileNotFoundError, ImportError) as exc:
            raise ValueError(f"--object-boxes {a.object_boxes}: {exc} (--model-option object-boxes.weights=DIR)") from None
    return cfg


def _check_constructor(flag: str, target: str, options: dict, option_flag: str) -> None:
    """Import ``module:Class`` and check ``options`` are keyword arguments its constructor takes."""
    import importlib
    import inspect

    module, _, name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{flag} {target}: cannot import it ({type(exc).__name__}: {exc})") from None
    params = inspect.signature(cls).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    takes = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise ValueError(f"{option_flag} {', '.join(unknown)}: not an option of {target} (it takes "
                         f"{', '.join(takes) or 'none'})")


class ProcessRows:
    """Stage 1 when a text encoder is configured: process clips, return rows (pickled) + error rows."""

    def __init__(self, config: ExtractConfig):
        self.processor = ClipProcessor(ExtractConfig(**{**config.as_dict(), "text_encoder": None}))

    def __call__(self, batch):
        rows, errors = self.processor.process_many(batch.to_dict("records"))
        items = [("ok", r) for r in rows] + [("error", e) for e in errors]
        return {"sample_id": [x[1]["sample_id"] for x in items], "payload": [pickle.dumps(x) for x in items]}


class EmbedAndWrite:
    """Stage 2: embed the texts of a batch of processed rows (its own process) and write the batch."""

    def __init__(self, config: ExtractConfig, out: str, max_rows: int):
        self.encoder = make_text_encoder(config.text_encoder, **config.text_encoder_options)
        self.out, self.max_rows = out, max_rows

    def __call__(self, batch):
        items = [pickle.loads(p) for p in batch["payload"]]
        rows = [r for k, r in items if k == "ok"]
        errors = [r for k, r in items if k == "error"]
        if rows:
            rows, failed = embed_rows(self.encoder, rows)
            errors += failed
        write_batch(self.out, rows, errors, self.max_rows)
        return {"sample_id": [r["sample_id"] for r in rows] + [e["sample_id"] for e in errors],
                "status": ["ok"] * len(rows) + ["error"] * len(errors),
                "stage": [""] * len(rows) + [e["stage"] for e in errors]}


def run_job(dataset: str, a: argparse.Namespace, source=None) -> dict:
    """Run one extraction job; returns the manifest (also written to OUT/manifest.json).
    ``source`` overrides ``open_source(dataset, a.root)`` (benchmarks)."""
    import ray

    for flag, v in (("--batch-size", a.batch_size), ("--concurrency", a.concurrency)):
        if v is not None and v < 1:
            raise ValueError(f"{flag} must be >= 1, got {v}")
    out = Path(a.out)
    config = make_config(dataset, a)
    # absolute: the actors may run in another working directory (an existing cluster, or `ray job submit`'s upload)
    source = source if source is not None else open_source(dataset, str(Path(a.root).resolve()))
    provenance = source_identity(getattr(source, "root", None))
    check_resumable(out, config.as_dict(), provenance)  # before anything is skipped or written
    stats = FilterStats()
    records = apply_filters(source.records(), FilterConfig(), stats)
    if a.limit is not None:
        records = itertools.islice(records, a.limit)
    retry = bool(getattr(a, "retry_errors", False))
    seen = [0]

    def counted(it):
        for r in it:
            seen[0] += 1
            yield r

    todo = [r.to_row() for r in pending(counted(records), out, retry_errors=retry)]
    already = seen[0] - len(todo)  # this source's clips already in OUT (not every id there)
    statuses: Counter = Counter()
    stages: Counter = Counter()
    t0 = time.perf_counter()
    if todo:
        try:  # an unwritable --out fails here, in one line, not inside every actor
            (out / "data").mkdir(parents=True, exist_ok=True)
            probe = out / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ValueError(f"--out {a.out}: cannot write there ({exc.strerror or exc})") from None
        begin_manifest(out, config.as_dict(), provenance)  # a run killed before its last manifest is still checked
        if not ray.is_initialized():
            address = a.address or os.environ.get("RAY_ADDRESS")
            if address is None and a.ray_num_cpus is not None:  # a fresh local Ray of that size
                ray.init(address="local", num_cpus=a.ray_num_cpus, log_to_driver=False)
            else:  # RAY_ADDRESS / --address, else an existing local cluster, else a new one
                ray.init(address=address, log_to_driver=False)
        from pipelines.storage import warn_unshared_paths

        warn_unshared_paths(ray, [("--root", a.root), ("--out", a.out)])
        t0 = time.perf_counter()  # throughput excludes starting Ray
        pool = ray.data.ActorPoolStrategy(size=a.concurrency)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = not a.no_progress
        # a batch whose worker died on every attempt is dropped, not the job: its clips get error rows below
        ctx.max_errored_blocks = -1
        # passed through **ray_remote_args, which Ray 2.60 deprecates (removal announced for 2.64) without a
        # named parameter for it: the RayDeprecationWarning every job prints comes from here
        retries = {"max_task_retries": a.max_batch_retries}
        # one block per batch: each task/actor call gets exactly one block, no re-batching between operators
        ds = ray.data.from_items(todo, override_num_blocks=-(-len(todo) // a.batch_size))
        ds = add_model_stages(ds, a, str(out.resolve()))  # --hand-object-model / --object-boxes actor pools
        if config.text_encoder is None:  # every per-clip stage fused: decoded frames never leave the actor
            ds = ds.map_batches(ExtractBatch, fn_constructor_args=(config, str(out.resolve()), a.max_rows_per_shard),
                                batch_size=a.batch_size, batch_format="pandas", compute=pool,
                                num_cpus=a.num_cpus, num_gpus=a.num_gpus, **retries)
        else:
            ds = ds.map_batches(ProcessRows, fn_constructor_args=(config,), batch_size=a.batch_size, batch_format="pandas",
                                compute=pool, num_cpus=a.num_cpus, num_gpus=a.num_gpus, **retries)
            ds = ds.map_batches(EmbedAndWrite, fn_constructor_args=(config, str(out.resolve()), a.max_rows_per_shard),
                                batch_size=a.batch_size, batch_format="pandas", compute=ray.data.ActorPoolStrategy(size=1),
                                num_cpus=1, num_gpus=a.text_num_gpus, **retries)
        for row in ds.iter_rows():
            statuses[row["status"]] += 1
            if row["stage"]:
                stages[row["stage"]] += 1
        written = done_ids(out)  # one scan of OUT, not one per clip
        lost = [r for r in todo if r["sample_id"] not in written]
        if lost:  # their batch's worker died on every attempt: recorded, so the job ends and says so
            why = (f"the extraction worker died on all {1 + a.max_batch_retries} attempts while it held the batch of "
                   f"this clip ({a.batch_size} clips per batch; a batch queued on a dying worker loses an attempt too): "
                   "a crash in native code (a video decoder) or out of memory; re-run with --retry-errors "
                   "--batch-size 1 to find the clip")
            write_batch(out, [], [error_row(r["sample_id"], r["dataset"], r["video_id"], "worker", why) for r in lost])
            statuses["error"] += len(lost)
            stages["worker"] += len(lost)
            print(f"warning: {len(lost)} clips lost their worker on every attempt (stage 'worker' in the errors table)",
                  file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t0
    finished = done_ids(out)
    bad = [e for e in getattr(source, "bad_rows", []) if e["sample_id"] not in finished]
    if bad:
        write_batch(out, [], [error_row(**{k: e[k] for k in ("sample_id", "dataset", "video_id", "stage", "error")}) for e in bad])
    extra = {"filters": stats.as_dict(), "source_skipped": dict(getattr(source, "skipped", {}) or {}),
             "this_run": {"runner": "ray_data", "clips_pending": len(todo), "already_done": already,
                          "samples_written": statuses["ok"], "errors": statuses["error"], "errors_by_stage": dict(stages),
                          "source_errors": len(bad), "seconds": round(elapsed, 3),
                          "clips_per_s": round(len(todo) / elapsed, 3) if todo and elapsed > 0 else None,
                          "concurrency": a.concurrency, "batch_size": a.batch_size, "limit": a.limit},
             "models": model_settings(a), "source": provenance}
    return write_manifest(out, config.as_dict(), extra)


def print_summary(dataset: str, manifest: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    f, run, counts = manifest["filters"], manifest["this_run"], manifest["counts"]
    t = Table(title=f"extract {dataset}", show_header=False)
    t.add_row("clips read (annotations)", str(f["read"]))
    for name, n in sorted(f["removed"].items()):
        t.add_row(f"  filtered: {name}", str(n))
    for name, n in sorted(manifest.get("source_skipped", {}).items()):
        t.add_row(f"  skipped by source: {name}", str(n))
    t.add_row("already done (resume)", str(run["already_done"]))
    t.add_row("processed this run", str(run["clips_pending"]))
    t.add_row("samples written this run", str(run["samples_written"]))
    for stage, n in sorted(run["errors_by_stage"].items()):
        t.add_row(f"  errors this run: {stage}", str(n))
    t.add_row("source rows unreadable", str(run["source_errors"]))
    idle = ("nothing to process: the source listed no clips" if f["read"] == 0 else
            "nothing to process: every clip was filtered out" if run["clips_pending"] + run["already_done"] == 0 else
            "nothing to process (every clip already done)")
    t.add_row("throughput", f"{run['clips_per_s']} clips/s ({run['seconds']} s)" if run['clips_per_s'] is not None
              else idle)
    t.add_row("total samples in OUT", str(counts["samples"]))
    t.add_row("total errors in OUT", f"{counts['errors']} {counts['errors_by_stage']}")
    if counts.get("contact_mapping"):  # how the contact points reached v1 (docs/extraction-jobs.md)
        t.add_row("contact points mapped to v1 by", ", ".join(f"{k} {n}" for k, n in sorted(counts["contact_mapping"].items())))
    if counts.get("contact_points_source"):  # how they were found at the contact frame
        t.add_row("contact points found by", ", ".join(f"{k} {n}" for k, n in sorted(counts["contact_points_source"].items())))
    Console(stderr=True).print(t)


def main(dataset: str, doc: str | None = None, argv=None) -> int:
    a = build_parser(dataset, doc).parse_args(argv)
    if not Path(a.root).is_dir():
        print(f"--root {a.root}: not a directory", file=sys.stderr)
        return 2
    try:
        manifest = run_job(dataset, a)
    except ValueError as exc:
        print(f"extract {dataset}: error: {exc}", file=sys.stderr)
        return 2
    print_summary(dataset, manifest)
    print(json.dumps({"out": str(Path(a.out).resolve()), "counts": manifest["counts"], "this_run": manifest["this_run"]}))
    return 0
