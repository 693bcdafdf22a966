"""Training throughput: the Ray Train loop (1 TorchTrainer worker) against the same ``train_func`` in a plain
process (decode inline), same config, same machine. Prints one JSON object.

Like for like: same preset and batch size, same rows and so the same number of steps per epoch, the same
augmentation (``ShardDecoder``, seeded by (seed, epoch)) and shuffle seed, and the plain process's torch
threads = the Ray worker's CPUs = its torch threads (``--threads``), one decode thread reading ahead in both
(``run``'s ``decode_threads`` default). Throughput is the last epoch's
``train_samples_per_s`` (start-up — Ray, the worker group, the first epoch — excluded). Each repeat runs the
plain loop with no Ray running, then the Ray job (a fresh local Ray, shut down after it), so on a noisy
shared machine the pairs are measured close together; ``ray_over_plain`` is the median of the per-pair ratios.
The plain process gets ``OMP_NUM_THREADS`` = ``--threads`` like Ray's worker. ``--data-mode`` picks the Ray job's data path (``auto`` = in-worker reading for small shards, see
``pipelines/train_affordance.py``; ``ray_data`` = the Ray Data pipeline).

    python benchmarks/bench_train.py --rows 256 --epochs 3 --threads 2 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _threads_from_argv(default: int = 2) -> int:
    for i, x in enumerate(sys.argv):
        if x == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if x.startswith("--threads="):
            return int(x.split("=", 1)[1])
    return default


# Like for like: Ray starts its worker with OMP_NUM_THREADS = its CPUs, which (measured here) alone changes
# a 1-thread training step by ~15 % against an unset variable; give the plain process the same before torch loads.
os.environ.setdefault("OMP_NUM_THREADS", str(_threads_from_argv()))

import torch  # noqa: E402

from deft_core.affordance.data import ShardDecoder, iter_batches, list_shard_files, read_split  # noqa: E402
from deft_core.affordance.train_loop import train_func  # noqa: E402
from pipelines.train_affordance import resolve_config, run  # noqa: E402
from tests.affordance.fake_shards import write_shards  # noqa: E402

_KEYS = ("train_samples_per_s", "train_seconds", "train_data_wait_s", "train_first_batch_s", "torch_threads", "train_loss")


def _epochs(history: list[dict]) -> list[dict]:
    return [{k: round(float(m.get(k, float("nan"))), 3) for k in _KEYS} for m in history]


def plain_run(files: list[str], cfg: dict, threads: int) -> tuple[list[dict], float]:
    """The plain loop: this process, ``threads`` torch threads, inline decode. Returns (history, wall s)."""
    torch.set_num_threads(threads)
    m, t = cfg["model"], cfg["train"]
    table = read_split(files, "train", t["val_fraction"])
    dec = ShardDecoder(m["image_size"], m["text_encoder"], t["max_targets"], augment=t["augment"], seed=t["seed"])
    bs, hist, t0 = t["batch_size"], [], time.perf_counter()
    train_func(cfg | {"steps_per_epoch": -(-table.num_rows // bs)},
               lambda e: iter_batches(table, bs, dec, True, t["seed"], e, threads=1), None, lambda met, c: hist.append(met))
    return hist, time.perf_counter() - t0


def ray_run(shards: Path, out: Path, over: dict, threads: int, data_mode: str) -> tuple[list[dict], float, str]:
    """The Ray Train job (fresh local Ray, 1 worker with ``threads`` CPUs). Returns (history, wall s, data mode)."""
    import ray

    t0 = time.perf_counter()
    try:
        res = run([str(shards)], str(out), "tiny", over, num_workers=1, cpus_per_worker=threads, data_mode=data_mode)
    finally:
        ray.shutdown()
    hist = json.loads((Path(res["export"]) / "metrics.json").read_text())["history"]
    return hist, time.perf_counter() - t0, res["data_mode"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (plain) = CPUs and torch threads per Ray Train worker")
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=1, help="plain/Ray pairs, run back to back")
    ap.add_argument("--data-mode", default="auto", choices=["auto", "worker", "ray_data"])
    a = ap.parse_args()
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    over = {"model": {"image_size": a.image_size, "text_encoder": "hash:64", "text_dim": 64},
            "train": {"epochs": a.epochs, "batch_size": a.batch_size, "val_fraction": 0.0, "seed": 0}}
    cfg = resolve_config("tiny", over)
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(tmp) / "shards"
        write_shards(shards, a.rows, files=4, seed=0, with_errors_table=False)
        files = list_shard_files([shards])
        for r in range(a.repeats):
            load0 = os.getloadavg()
            plain, plain_wall = plain_run(files, cfg, a.threads)
            try:
                ray_hist, ray_wall, mode = ray_run(shards, Path(tmp) / f"ray_run{r}", over, a.threads, a.data_mode)
            except Exception as e:  # noqa: BLE001 — e.g. Ray's dashboard killed on a loaded machine: keep the pairs so far
                print(f"[bench] pair {r}: the Ray run failed: {e!r:.300}", file=sys.stderr, flush=True)
                continue
            p, q = plain[-1]["train_samples_per_s"], ray_hist[-1]["train_samples_per_s"]
            pairs.append({"loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                          "plain_samples_per_s_last_epoch": round(p, 2), "ray_samples_per_s_last_epoch": round(q, 2),
                          "ray_over_plain": round(q / p, 3), "ray_data_mode": mode, "plain_wall_s": round(plain_wall, 1),
                          "ray_wall_s_incl_startup": round(ray_wall, 1), "plain_epochs": _epochs(plain),
                          "ray_epochs": _epochs(ray_hist)})
            print(f"[bench] pair {r}: " + json.dumps(pairs[-1]), file=sys.stderr, flush=True)
    if not pairs:
        raise SystemExit("no plain/Ray pair completed")
    after_first = {k: [e["train_samples_per_s"] for x in pairs for e in x[f"{k}_epochs"][1:]] for k in ("plain", "ray")}
    print(json.dumps({"benchmark": "affordance_train", "rows": a.rows, "epochs": a.epochs, "image_size": a.image_size,
                      "batch_size": a.batch_size, "threads": a.threads, "omp_num_threads": os.environ["OMP_NUM_THREADS"],
                      "cpu_count": os.cpu_count(), "ray_over_plain": statistics.median(x["ray_over_plain"] for x in pairs),
                      # less noisy: median samples/s over every epoch after the first, all pairs
                      "ray_over_plain_epochs_after_first": (statistics.median(after_first["ray"]) / statistics.median(after_first["plain"])
                                                            if after_first["plain"] and after_first["ray"] else None),
                      "pairs": pairs}, indent=1))


if __name__ == "__main__":
    main()
