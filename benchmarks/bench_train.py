"""Training throughput: the Ray Train loop (Ray Data decode → TorchTrainer, 1 worker) against the same
``train_func`` in a plain process (decode inline), same config, same machine. Prints one JSON object.

Throughput is the last epoch's ``train_samples_per_s`` (the first epochs include start-up).

    python benchmarks/bench_train.py --rows 256 --epochs 3 --threads 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from deft_core.affordance.data import ShardDecoder, iter_batches, list_shard_files, read_split  # noqa: E402
from deft_core.affordance.train_loop import train_func  # noqa: E402
from pipelines.train_affordance import resolve_config, run  # noqa: E402
from tests.affordance.fake_shards import write_shards  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (plain) = CPUs per Ray Train worker")
    ap.add_argument("--image-size", type=int, default=96)
    a = ap.parse_args()
    over = {"model": {"image_size": a.image_size, "text_encoder": "hash:64", "text_dim": 64},
            "train": {"epochs": a.epochs, "batch_size": 32, "val_fraction": 0.0}}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        write_shards(Path(tmp) / "shards", a.rows, files=4, seed=0, with_errors_table=False)
        files = list_shard_files([Path(tmp) / "shards"])
        cfg = resolve_config("tiny", over)
        torch.set_num_threads(a.threads)
        table = read_split(files, "train", 0.0)
        dec = ShardDecoder(a.image_size, "hash:64", augment=True, seed=0)
        plain: list[dict] = []
        t0 = time.perf_counter()
        train_func(cfg | {"steps_per_epoch": -(-table.num_rows // 32)}, lambda e: iter_batches(table, 32, dec, True, 0, e),
                   None, lambda m, c: plain.append(m))
        plain_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        res = run([str(Path(tmp) / "shards")], str(Path(tmp) / "ray_run"), "tiny", over, num_workers=1,
                  cpus_per_worker=a.threads)
        ray_wall = time.perf_counter() - t0
        hist = json.loads((Path(res["export"]) / "metrics.json").read_text())["history"]
    p_sps, r_sps = plain[-1]["train_samples_per_s"], hist[-1]["train_samples_per_s"]
    print(json.dumps({"benchmark": "affordance_train", "rows": a.rows, "epochs": a.epochs, "image_size": a.image_size,
                      "threads": a.threads, "cpu_count": os.cpu_count(),
                      "loadavg_1_5_15_before": load_before, "loadavg_1_5_15_after": os.getloadavg(),
                      "plain_samples_per_s_last_epoch": p_sps, "ray_samples_per_s_last_epoch": r_sps,
                      "ray_over_plain": r_sps / p_sps, "plain_wall_s": plain_wall, "ray_wall_s_incl_startup": ray_wall,
                      "plain_per_epoch": [m["train_samples_per_s"] for m in plain],
                      "ray_per_epoch": [m["train_samples_per_s"] for m in hist]}))


if __name__ == "__main__":
    main()
