"""Ray wiring of affordance training: Ray Data input, Ray Train ``TorchTrainer``, resume, export.

The loop itself is :func:`deft_core.affordance.train_loop.train_func` (no Ray); here it gets its batch
source (in-worker :func:`iter_batches` or ``get_dataset_shard(...).iter_torch_batches``, see "Data path"
below) and ``ray.train.report`` as its report.

Run directory ``--out`` (absolute on shared storage for multi-node clusters)::

    out/ray/<name>/checkpoint_*/   one checkpoint per epoch (export files + optimiser state), Ray storage
    out/tensorboard/               TensorBoard scalars (written by the chief worker)
    out/run.json                   the resolved configuration and the data summary
    out/model/                     the exported checkpoint (config.json, model.safetensors, metrics.json)

Resume: a worker failure is retried up to ``max_failures`` times from the last reported checkpoint
(``FailureConfig``); re-running with the same ``out`` resumes from the newest checkpoint under
``out/ray/<name>`` (found by the driver, passed to the workers as ``resume_dir``), so a killed job can simply be submitted again.

Data path (``data_mode``): ``worker`` reads the shard files inside each Train worker and decodes/augments
inline with the same :class:`ShardDecoder` and :func:`iter_batches` as the plain loop (rank-sharded, seeded
by (seed, epoch)); ``ray_data`` streams ``read_parquet`` → split → decode actors → ``iter_torch_batches``.
``auto`` (default) picks ``worker`` when the shard files total at most ``in_worker_max_mb`` (default 1024 MiB:
each worker then holds the compressed rows of its split in memory) and ``ray_data`` above. Why: Ray Data
re-executes its whole pipeline every epoch (start-up 7.6–14 s per epoch on the 2-core dev machine, measured
as the wait for the first batch), in separate processes competing with the worker for the cores, which
cost half or more of the throughput on small data (0.38× the plain loop; docs/affordance-model.md). Both need the shard paths readable
from every worker node (shared storage on a cluster).

Local Ray (:func:`init_local_ray`) pins the State API address to its own dashboard. Without that, on a
machine running several Ray instances, Ray Train 2.60's ``PlacementGroupCleaner`` (a detached actor that
polls ``ray.util.state.get_actor(controller)`` and removes the run's placement group when the controller
looks dead) resolves the State API by auto-detection, can reach another instance's dashboard, gets "actor
not found", removes the live run's placement group and kills the worker ("A worker health check failed"),
which burns a ``max_failures`` retry or fails the run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from deft_core.affordance.config import get_preset
from deft_core.affordance.data import READ_COLUMNS, ShardDecoder, hand_label_weight, is_validation, list_shard_files

RUN_NAME = "affordance"
DATA_MODES = ("auto", "worker", "ray_data")
IN_WORKER_MAX_MB = 1024.0


def load_train_state_epoch(ckpt_dir: str) -> int:
    """The epoch recorded in a checkpoint directory's ``train_state.json``."""
    return int(json.loads((Path(ckpt_dir) / "train_state.json").read_text())["epoch"])


def select_split(batch: "pa.Table", split: str, val_fraction: float) -> "pa.Table":
    """Keep the rows of ``split`` (``train``/``val``) from a pyarrow batch; the split is by video.

    Arrow in, Arrow out: a numpy batch came back from Ray Data as object arrays it could not turn into
    Arrow again ("Failed to convert column 'gmm_means' ... falling back to serialize as pickled python
    objects", on every block, seen on the H200 run of benchmarks/gpu_check.py)."""
    keep = [is_validation(str(d), str(v), val_fraction) == (split == "val")
            for d, v in zip(batch.column("dataset").to_pylist(), batch.column("video_id").to_pylist())]
    return batch.filter(pa.array(keep, pa.bool_()))


#: training settings a resumed run must keep (TrainConfig fields); ``epochs`` may grow, ``precision`` change
RESUME_KEYS = ("batch_size", "lr", "weight_decay", "warmup_steps", "lambda_mu", "lambda_theta", "lambda_pose",
               "val_fraction", "max_targets", "augment", "seed", "hand_label_weights")


def summarise_data(files: list[str], val_fraction: float, hand_label_weights: dict | None = None) -> dict[str, Any]:
    """Row / video counts per split and per dataset (reads only the identity columns), and
    ``hand_label_texts``: for every text, how many training rows supervise the wrist and pose heads with it
    (rows whose ``hand_pose_source`` has a weight > 0 in ``hand_label_weights``; absent sources weigh 1).
    The exported checkpoint keeps it, so a robot can tell whether its task's text is one the hand heads
    were ever trained on (:meth:`deft_core.affordance.AffordancePredictor.hand_text_support`)."""
    first = pq.read_schema(files[0]) if files else None
    has_source = first is not None and "hand_pose_source" in first.names
    has_frames = first is not None and {"frame_width", "frame_height"} <= set(first.names)
    cols = (["dataset", "video_id", "text"] + (["hand_pose_source"] if has_source else [])
            + (["frame_width", "frame_height"] if has_frames else []))
    tables = [pq.read_table(f, columns=cols) for f in files]
    t = pa.concat_tables(tables)
    ds, vid, texts = t.column("dataset").to_pylist(), t.column("video_id").to_pylist(), t.column("text").to_pylist()
    sources = t.column("hand_pose_source").to_pylist() if has_source else [None] * len(ds)
    weights = {str(k): float(v) for k, v in (hand_label_weights or {}).items()}
    val = [is_validation(d, v, val_fraction) for d, v in zip(ds, vid)]
    per_ds: dict[str, int] = {}
    for d in ds:
        per_ds[d] = per_ds.get(d, 0) + 1
    hand_texts: dict[str, int] = {}
    for text, src, is_val in zip(texts, sources, val):
        if not is_val and hand_label_weight(weights, src) > 0:
            hand_texts[text] = hand_texts.get(text, 0) + 1
    # the crops' padding relative to their frames, for the robot to frame its crops alike (deft_core.crop)
    crop = None
    if has_frames and len(ds):
        pads = {f: _crop_pad_px(f) for f in files}
        short = np.minimum(t.column("frame_width").to_numpy(), t.column("frame_height").to_numpy()).astype(np.float64)
        row_pad = np.concatenate([np.full(tb.num_rows, pads[f]) for f, tb in zip(files, tables)])
        crop = {"square": True, "pad_fraction_of_short_side": round(float(np.median(row_pad / np.maximum(short, 1))), 6),
                "pad_px": sorted(set(pads.values())), "frame_short_side_px": sorted({int(v) for v in short})[:8]}
    return {"files": len(files), "rows": len(ds), "train_rows": len(ds) - sum(val), "val_rows": sum(val),
            "train_videos": len({(d, v) for d, v, x in zip(ds, vid, val) if not x}),
            "val_videos": len({(d, v) for d, v, x in zip(ds, vid, val) if x}), "rows_per_dataset": per_ds,
            "distinct_texts": len(set(texts)), "val_fraction": val_fraction,
            "split": "sha1(salt, dataset, video_id) < val_fraction",
            "hand_label_texts": dict(sorted(hand_texts.items())), "crop": crop}


def _crop_pad_px(shard_file: str) -> float:
    """``crop_pad_px`` of the extraction that wrote ``shard_file`` (its output folder's manifest, one or two
    levels up: OUT/data/*.parquet); 20 px, the extraction default (VRB's), where no manifest says."""
    for d in list(Path(shard_file).parents)[:2]:
        m = d / "manifest.json"
        if m.is_file():
            try:
                return float(json.loads(m.read_text())["config"]["crop_pad_px"])
            except (ValueError, KeyError, TypeError):
                break
    return 20.0


def choose_data_mode(files: list[str], mode: str = "auto", in_worker_max_mb: float = IN_WORKER_MAX_MB) -> str:
    """``worker`` or ``ray_data`` for ``mode`` (``auto``: ``worker`` when the files total ≤ ``in_worker_max_mb`` MiB)."""
    if mode not in DATA_MODES:
        raise ValueError(f"data_mode must be one of {DATA_MODES}, got {mode!r}")
    if mode != "auto":
        return mode
    total = sum(Path(f).stat().st_size for f in files)
    return "worker" if total <= in_worker_max_mb * 2**20 else "ray_data"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint directory under ``run_dir`` with the highest completed epoch, or None."""
    best, best_epoch = None, -1
    for state in run_dir.glob("**/train_state.json"):
        try:
            epoch = int(json.loads(state.read_text())["epoch"])
        except (ValueError, KeyError, json.JSONDecodeError):
            continue
        if epoch > best_epoch and (state.parent / "model.safetensors").is_file():
            best, best_epoch = state.parent, epoch
    return best


def resolve_config(preset: str, overrides: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Preset dataclasses with ``{"model": {...}, "train": {...}}`` overrides applied (None = keep)."""
    p = get_preset(preset)
    for section, obj in (("model", p.model), ("train", p.train)):
        for k, v in overrides.get(section, {}).items():
            if v is None:
                continue
            if not hasattr(obj, k):
                raise ValueError(f"unknown {section} option {k!r}")
            setattr(obj, k, v)
        obj.__post_init__() if hasattr(obj, "__post_init__") else None
    return {"model": dataclasses.asdict(p.model), "train": dataclasses.asdict(p.train)}


def init_local_ray(num_cpus: int | None = None, **kwargs) -> None:
    """Start a local Ray with ≥ 4 logical CPUs (a Train worker and the Data pipeline's list/read/decode
    must all be schedulable on a small machine; they share the physical cores) and its dashboard on a
    free port, with ``RAY_API_SERVER_ADDRESS`` pointing every worker's State API at that dashboard (see
    the module docstring: otherwise Ray Train's placement-group cleaner can query another Ray instance)."""
    import socket

    import ray

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{port}"}
    # address="local": always a fresh instance, never an unrelated Ray cluster already running on this machine
    ray.init(address="local", num_cpus=num_cpus or max(4, os.cpu_count() or 1), include_dashboard=True, dashboard_host="127.0.0.1",
             dashboard_port=port, runtime_env={"env_vars": env}, **kwargs)


#: logical CPUs the ray_data path needs beyond the Train workers: Ray Data's parquet read operator asks for
#: a whole CPU whatever ``num_cpus`` it is given (Ray 2.60), next to the fractional decode actors
RAY_DATA_SPARE_CPUS = 2.0


def check_ray_data_cpus(cluster_cpus: float, num_workers: int, cpus_per_worker: float) -> None:
    """Refuse the ``ray_data`` path on a cluster too small to schedule the Train workers and the Data
    pipeline together: it would wait forever ("Cluster resources are not enough to run any task from
    ...ReadFiles...", seen on ``ray start --head`` on 2 cores). Logical CPUs may exceed the physical
    ones: the work shares the cores, as :func:`init_local_ray` does with its 4."""
    need = num_workers * cpus_per_worker + RAY_DATA_SPARE_CPUS
    if cluster_cpus < need:
        raise ValueError(f"--data-mode ray_data needs >= {need:g} logical CPUs on the cluster ({num_workers} Train "
                         f"worker(s) × {cpus_per_worker:g} + {RAY_DATA_SPARE_CPUS:g} for Ray Data's read and decode); "
                         f"it has {cluster_cpus:g}, and the job would wait forever. Start Ray with more logical CPUs "
                         f"(e.g. 'ray start --head --num-cpus {int(-(-need // 1))}'; they share the physical cores) "
                         "or use --data-mode worker (the shards are read inside each worker); on an autoscaling "
                         "cluster whose nodes start on demand (cluster.yaml), pass --no-cpu-check: the job then "
                         "waits for them")


def _ray_train_loop(config: dict) -> None:
    """Per-worker entry point of the TorchTrainer (runs in the Ray Train worker processes)."""
    import tempfile

    import ray.train
    import torch

    # the worker's torch threads = its CPUs (Ray sets OMP_NUM_THREADS, but torch may have been imported first)
    torch.set_num_threads(max(1, int(config.get("torch_threads", 1))))
    # Ray Train logs every report at INFO with all its metrics ("Reporting training result N: TrainingReport(
    # ... metrics={...})"), once per epoch beside our own one-line summary: keep its warnings only. Its logger
    # is named after the module's file path (Ray 2.60), and the module is private: skipped where it moved.
    try:
        from ray.train.v2._internal.execution import context as train_context

        logging.getLogger(train_context.__file__).setLevel(logging.WARNING)
    except ImportError:
        pass
    ckpt = ray.train.get_checkpoint()
    # a retried worker group gets Ray's latest checkpoint; a re-submitted job gets the newest one on disk.
    # Ray's copy (~150 MB for the default model) is ours to delete: left behind, every retry leaked one in /tmp.
    copied = tempfile.mkdtemp(prefix="deft-resume-") if ckpt else None
    try:
        _train_worker(config, ckpt.to_directory(copied) if ckpt else config.get("resume_dir"), ckpt is not None)
    finally:
        if copied:
            shutil.rmtree(copied, ignore_errors=True)


def _train_worker(config: dict, resume: str | None, from_ray: bool) -> None:
    import ray.train
    import ray.train.torch
    from ray.train import Checkpoint

    from deft_core.affordance.train_loop import train_func

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    bs = int(config["train"]["batch_size"])
    fail_at, marker = config.get("simulate_failure_at_epoch"), config.get("failure_marker")
    if marker and from_ray and rank == 0:  # test instrumentation: this attempt got Ray's checkpoint
        Path(marker + ".resumed").write_text(json.dumps({"epoch": load_train_state_epoch(resume), "dir": resume}))

    def report(metrics: dict, ckpt_dir: str | None) -> None:
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(ckpt_dir) if ckpt_dir else None)
        if rank == 0:
            val = (f"val_contact {metrics.get('val_contact_px', float('nan')):.1f}px "
                   f"(centre {metrics.get('val_baseline_centre_contact_px', float('nan')):.1f}px) "
                   f"wrist {metrics.get('val_wrist_deg', float('nan')):.1f}° pose {metrics.get('val_pose_deg', float('nan')):.1f}°"
                   if config.get("has_val") else "no validation split")
            # not print(): Ray Train replaces it in its workers with one that prints AND logs each line, so
            # every epoch line appeared twice in `ray job logs`
            sys.stdout.write(f"[train] epoch {metrics['epoch'] + 1}/{config['train']['epochs']} "
                             f"loss {metrics['train_loss']:.4f} {val} {metrics['train_samples_per_s']:.1f} samples/s\n")
            sys.stdout.flush()
        if fail_at is not None and metrics["epoch"] == fail_at and marker and not Path(marker).exists():
            Path(marker).write_text("failed once")  # test instrumentation: one simulated worker crash
            raise RuntimeError(f"simulated worker failure after epoch {fail_at}")

    if config.get("data_mode") == "worker":
        train_batches, val_batches = _worker_batches(config, rank, world)
    else:
        train_shard, val_shard = ray.train.get_dataset_shard("train"), ray.train.get_dataset_shard("val")

        def train_batches(epoch: int):
            return train_shard.iter_torch_batches(batch_size=bs, local_shuffle_buffer_size=4 * bs,
                                                  local_shuffle_seed=int(config["train"]["seed"]) + epoch)

        def val_batches():
            return val_shard.iter_torch_batches(batch_size=bs)

    train_func(config, train_batches, val_batches if config.get("has_val") else None, report, resume_dir=resume,
               device=ray.train.torch.get_device(), wrap_model=ray.train.torch.prepare_model, is_chief=rank == 0)


def _worker_batches(config: dict, rank: int, world: int):
    """The in-worker data path: this rank's training batches per epoch and the validation batches."""
    from deft_core.affordance.data import iter_batches, read_split

    m, t = config["model"], config["train"]
    files, bs, seed = config["shard_files"], int(t["batch_size"]), int(t["seed"])
    train_table = read_split(files, "train", t["val_fraction"])
    val_table = read_split(files, "val", t["val_fraction"]) if config.get("has_val") else None
    dec = ShardDecoder(m["image_size"], m["text_encoder"], t["max_targets"], augment=t["augment"], seed=seed,
                       hand_label_weights=t.get("hand_label_weights"))
    vdec = ShardDecoder(m["image_size"], m["text_encoder"], t["max_targets"])

    threads = int(config.get("decode_threads", 1))

    def train_batches(epoch: int):
        return iter_batches(train_table, bs, dec, shuffle=True, seed=seed, epoch=epoch, rank=rank, world_size=world,
                            threads=threads)

    def val_batches():  # every rank validates on all of it, as with the unsplit Ray Data "val" dataset
        return iter_batches(val_table, bs, vdec, threads=threads)

    return train_batches, val_batches


def build_datasets(files: list[str], model_cfg: dict, train_cfg: dict, decode_concurrency: int = 1,
                   decode_cpus: float = 0.5, read_cpus: float = 0.25):
    """Ray Data pipelines: read_parquet → split by video → decode (+ augment for train).

    The decode actors and read tasks ask for fractional CPUs so that, next to the Train workers, the
    Data pipeline can always schedule both (on a 2-CPU machine a whole-CPU actor plus a whole-CPU read
    task would wait on each other forever)."""
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False  # one line per epoch comes from train
    common = {"image_size": model_cfg["image_size"], "text_encoder": model_cfg["text_encoder"],
              "max_targets": train_cfg["max_targets"]}
    # Recent Ray (2.60 here) deprecates read_parquet(columns=, ray_remote_args=): the columns become a
    # projection (pushed down into the Parquet read), the read tasks' CPUs a named argument; releases
    # without that argument (pyproject allows Ray >= 2.40) still get ray_remote_args=
    import inspect

    named = "num_cpus" in inspect.signature(ray.data.read_parquet).parameters
    remote = {"num_cpus": read_cpus} if named else {"ray_remote_args": {"num_cpus": read_cpus}}
    # the files in another order every epoch (reseeded per execution; the 4-batch local shuffle buffer
    # alone left each epoch's batches in the shards' order, e.g. grouped by video)
    try:
        from ray.data import FileShuffleConfig

        remote["shuffle"] = FileShuffleConfig(seed=int(train_cfg["seed"]), reseed_after_execution=True)
    except ImportError:  # older Ray: unseeded
        remote["shuffle"] = "files"
    raw = ray.data.read_parquet(files, **remote).select_columns(list(READ_COLUMNS))
    out = {}
    for split in ("train", "val"):
        ds = raw.map_batches(select_split, fn_kwargs={"split": split, "val_fraction": train_cfg["val_fraction"]},
                             batch_format="pyarrow")
        # seed=None for training: fresh augmentations on every pass (Ray re-executes the pipeline per epoch)
        kwargs = common | ({"augment": train_cfg["augment"], "seed": None,
                            "hand_label_weights": train_cfg.get("hand_label_weights")} if split == "train" else {"augment": False})
        out[split] = ds.map_batches(ShardDecoder, fn_constructor_kwargs=kwargs, batch_format="numpy",
                                    batch_size=train_cfg["batch_size"], num_cpus=decode_cpus,
                                    compute=ray.data.ActorPoolStrategy(size=decode_concurrency))
    return out


def run(shards: list[str], out: str, preset: str = "tiny", overrides: dict | None = None, num_workers: int = 1,
        use_gpu: bool = False, cpus_per_worker: float = 1.0, max_failures: int = 2, decode_concurrency: int = 1,
        extra_config: dict | None = None, data_mode: str = "auto", in_worker_max_mb: float = IN_WORKER_MAX_MB,
        check_cpus: bool = True, decode_threads: int = 1) -> dict:
    """Train, checkpoint every epoch, export to ``out/model``; returns {"export": path, "metrics": last,
    "data_mode": the data path used}. ``data_mode``/``in_worker_max_mb``: see the module docstring;
    each worker runs ``max(1, int(cpus_per_worker))`` torch threads. ``check_cpus=False`` skips
    :func:`check_ray_data_cpus` (an autoscaling cluster whose nodes are not up yet: it counts live nodes).
    ``decode_threads``: background threads decoding batches ahead in each worker (``worker`` data mode; see
    :func:`deft_core.affordance.data.iter_batches`); the batches are the same whatever the number."""
    import ray
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    out_dir = Path(out).resolve()
    # absolute: the Train workers (and Ray Data's read tasks) do not run in the driver's working directory
    files = [str(Path(f).resolve()) for f in list_shard_files(shards)]  # bad --shards fail before OUT is created
    cfg = resolve_config(preset, overrides or {})
    summary = summarise_data(files, cfg["train"]["val_fraction"], cfg["train"].get("hand_label_weights"))
    if summary["train_rows"] == 0:
        raise ValueError(f"no training rows in {shards} after the video split (val_fraction {cfg['train']['val_fraction']})")
    if summary["val_rows"] == 0:
        print(f"warning: no validation rows: {summary['rows']} rows, val_fraction {cfg['train']['val_fraction']} of the "
              "videos gave none; the epochs report no validation metrics and 'deft model evaluate' needs --split all "
              "(raise --val-fraction or add clips)", file=sys.stderr, flush=True)
    mode = choose_data_mode(files, data_mode, in_worker_max_mb)
    steps = -(-summary["train_rows"] // (cfg["train"]["batch_size"] * max(1, num_workers)))
    config = cfg | {"steps_per_epoch": steps, "data_summary": summary, "has_val": summary["val_rows"] > 0,
                    "data_mode": mode, "shard_files": files if mode == "worker" else None,
                    "torch_threads": max(1, int(cpus_per_worker)), "decode_threads": max(0, int(decode_threads)),
                    "tensorboard_dir": str(out_dir / "tensorboard"), "preset": preset} | (extra_config or {})
    out_dir.mkdir(parents=True, exist_ok=True)
    run_json = out_dir / "run.json"
    # only a run with a checkpoint to resume binds OUT to its model config: a start that failed before its
    # first checkpoint (a bad flag found in the workers) must not block the corrected command
    if run_json.exists() and latest_checkpoint(out_dir / "ray" / RUN_NAME) is not None:
        try:
            prev = json.loads(run_json.read_text())
        except ValueError:
            prev = {}
        if prev.get("model") != json.loads(json.dumps(config["model"])):  # compare in JSON form (tuples → lists)
            raise ValueError(f"{out_dir} holds a run with a different model config; use a new --out to start afresh")
        # what defines the data split, the batches and the schedule the checkpoint continues (more --epochs may
        # continue a run; another --val-fraction would validate on videos it trained on)
        now = json.loads(json.dumps(config["train"]))
        changed = [f"{k}: {prev.get('train', {}).get(k)!r} -> {now.get(k)!r}" for k in RESUME_KEYS
                   if k in prev.get("train", {}) and prev["train"][k] != now.get(k)]
        if prev.get("num_workers") is not None and prev["num_workers"] != num_workers:
            changed.append(f"num_workers: {prev['num_workers']} -> {num_workers} (the global batch)")
        if changed:
            raise ValueError(f"{out_dir} holds a run trained with other settings ({'; '.join(changed)}); resume it "
                             "with the same ones, or use a new --out to start afresh")
    run_json.write_text(json.dumps(config | {"shards": [str(s) for s in shards], "num_workers": num_workers}, indent=2))
    if not ray.is_initialized():
        # under `ray job submit` (RAY_ADDRESS set) this joins the cluster; otherwise a local Ray
        if os.environ.get("RAY_ADDRESS"):
            ray.init()
        else:
            init_local_ray()
    from pipelines.storage import warn_unshared_paths

    warn_unshared_paths(ray, [("--out", out_dir)] + [("--shards", s) for s in shards])
    if mode == "ray_data" and check_cpus:
        check_ray_data_cpus(float(ray.cluster_resources().get("CPU", 0.0)), num_workers, cpus_per_worker)
    resume = latest_checkpoint(out_dir / "ray" / RUN_NAME)
    config["resume_dir"] = str(resume) if resume else None
    trainer = TorchTrainer(
        _ray_train_loop, train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": cpus_per_worker}),
        run_config=RunConfig(name=RUN_NAME, storage_path=str(out_dir / "ray"),
                             failure_config=FailureConfig(max_failures=max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=3)),
        datasets=build_datasets(files, cfg["model"], cfg["train"], decode_concurrency) if mode == "ray_data" else None,
        dataset_config=DataConfig(datasets_to_split=["train"]) if mode == "ray_data" else None)
    trainer.fit()
    final = latest_checkpoint(out_dir / "ray" / RUN_NAME)
    if final is None:
        raise RuntimeError(f"training finished without a checkpoint under {out_dir / 'ray'}")
    export = out_dir / "model"
    export.mkdir(exist_ok=True)
    for name in ("config.json", "model.safetensors", "metrics.json"):
        shutil.copy2(final / name, export / name)
    metrics = json.loads((export / "metrics.json").read_text())
    return {"export": str(export), "checkpoint": str(final), "metrics": metrics.get("final", {}), "resumed_from": str(resume) if resume else None,
            "data_mode": mode}
