"""Train the DEFT affordance model on affordance shards with Ray Train (each worker reads its rows of the
shards itself, or, with --data-mode ray_data or shard sets over --in-worker-max-mb, from Ray Data).

    ray job submit --working-dir . -- python jobs/train.py --shards /data/shards --out /data/ckpt/affordance --preset paper --num-workers 4 --use-gpu --cpus-per-worker 8 --decode-threads 8
    python jobs/train.py --shards data/shards --out runs/affordance --preset tiny          # local Ray

Re-submitting the same command with the same --out resumes from the newest checkpoint. The exported
checkpoint (config.json, model.safetensors, metrics.json) lands in OUT/model; load it with
deft_core.affordance.load_affordance(OUT/model). TensorBoard: tensorboard --logdir OUT/tensorboard.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a --working-dir checkout

from pipelines.train_affordance import run  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shards", nargs="+", required=True, help="shard directories (searched recursively for *.parquet)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, TensorBoard, export); reuse it to resume")
    p.add_argument("--preset", default="tiny", choices=["tiny", "paper"])
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int,
                   help="per worker: the global batch is this times --num-workers (preset tiny 32, paper 224)")
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--val-fraction", type=float, help="fraction of videos held out for validation")
    p.add_argument("--image-size", type=int)
    p.add_argument("--text-encoder", help="minilm | clip:ARCH (DEFT_CLIP_WEIGHTS=file) | hash:DIM (test stand-in)")
    p.add_argument("--text-dim", type=int, help="embedding width of --text-encoder (minilm 384, clip 512)")
    p.add_argument("--visual-encoder", choices=["resnet", "r3m"])
    p.add_argument("--visual-arch", choices=["resnet18", "resnet50"])
    p.add_argument("--visual-weights", help="local weights file (R3M model.pt for r3m; torchvision .pth/.safetensors)")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--precision", choices=["fp32", "bf16"],
                   help="bf16: forward pass and loss under bfloat16 autocast (weights and export stay float32); "
                        "for GPUs with bfloat16 tensor cores (A100, H100), where the GPU is the bottleneck; no dependable gain "
                        "measured for the paper's ResNet-18 on an H200. Default fp32")
    p.add_argument("--num-workers", type=int, default=1, help="Ray Train workers")
    p.add_argument("--use-gpu", action="store_true")
    p.add_argument("--cpus-per-worker", type=float, default=1.0)
    p.add_argument("--decode-concurrency", type=int, default=1, help="Ray Data decode actors (data mode ray_data)")
    p.add_argument("--decode-threads", type=int, default=1,
                   help="threads in each Train worker decoding the next batches while it trains (data mode worker); "
                        "on a GPU the decode is the bottleneck: give it the worker's CPUs, e.g. --cpus-per-worker 8 "
                        "--decode-threads 8 (same batches, same model, whatever the number)")
    p.add_argument("--data-mode", default="auto", choices=["auto", "worker", "ray_data"],
                   help="worker: each Train worker reads and decodes its rows inline; ray_data: Ray Data pipeline; "
                        "auto: worker when the shards total <= --in-worker-max-mb")
    p.add_argument("--in-worker-max-mb", type=float, default=1024.0, help="auto's threshold (MiB of shard files)")
    p.add_argument("--max-failures", type=int, default=2, help="worker failures retried from the last checkpoint")
    p.add_argument("--no-cpu-check", action="store_true",
                   help="skip the check that the cluster's live CPUs can run --data-mode ray_data (an autoscaling "
                        "cluster counts only the nodes already up; without nodes to come the job would wait forever)")
    p.add_argument("--hand-label-weight", action="append", default=[], metavar="SOURCE=W",
                   help="weight of the wrist/pose loss for rows whose hand_pose_source is SOURCE (default 1), e.g. "
                        "mediapipe=0 to learn wrist and pose only from exact labels; repeatable")
    return p.parse_args(argv)


def hand_label_weights(items: list[str]) -> dict[str, float] | None:
    """['mediapipe=0', ...] → {'mediapipe': 0.0}; a malformed item exits with a message naming it."""
    out = {}
    for item in items:
        source, sep, value = item.partition("=")
        try:
            if not sep or not source or float(value) < 0:
                raise ValueError
            out[source] = float(value)
        except ValueError:
            raise SystemExit(f"--hand-label-weight {item!r}: expected SOURCE=W with W >= 0, e.g. mediapipe=0") from None
    return out or None


def main(argv=None) -> int:
    a = parse_args(argv)
    overrides = {
        "model": {"image_size": a.image_size, "text_encoder": a.text_encoder, "text_dim": a.text_dim,
                  "visual_encoder": a.visual_encoder, "visual_arch": a.visual_arch, "visual_weights": a.visual_weights},
        "train": {"epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr, "seed": a.seed,
                  "val_fraction": a.val_fraction, "augment": False if a.no_augment else None, "precision": a.precision,
                  "hand_label_weights": hand_label_weights(a.hand_label_weight)},
    }
    import pyarrow as pa

    try:
        result = run(a.shards, a.out, a.preset, overrides, num_workers=a.num_workers, use_gpu=a.use_gpu,
                     cpus_per_worker=a.cpus_per_worker, max_failures=a.max_failures, decode_concurrency=a.decode_concurrency,
                     data_mode=a.data_mode, in_worker_max_mb=a.in_worker_max_mb, check_cpus=not a.no_cpu_check,
                     decode_threads=a.decode_threads)
    except (FileNotFoundError, ValueError, pa.ArrowException) as exc:  # bad --shards / --out / options, as the extraction jobs
        print(f"train: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
