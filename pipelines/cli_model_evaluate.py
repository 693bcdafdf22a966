"""Evaluate an exported affordance checkpoint on shards against trivial baselines.

    deft model evaluate --checkpoint runs/affordance/model --shards data/shards --out reports/affordance

Writes OUT/metrics.json (model errors: contact px, wrist deg, per-joint pose deg; baselines: crop centre,
training-split mean; how far contact moves when the text is swapped) and OUT/heatmaps.png (crops with
the predicted contact heatmap, predicted points × and true GMM means ○). By default it evaluates the
held-out videos of the split the checkpoint was trained with.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deft_core.cli_util import CommandError

HELP = "evaluate an affordance checkpoint on shards (JSON metrics vs baselines + heatmap PNG)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from deft_core.cli_util import int_at_least, open_fraction

    parser.add_argument("--checkpoint", required=True, help="exported checkpoint directory (config.json, model.safetensors)")
    parser.add_argument("--shards", nargs="+", required=True, help="shard directories")
    parser.add_argument("--out", required=True, help="report directory")
    parser.add_argument("--split", default="val", choices=["val", "train", "all"], help="video split to evaluate")
    parser.add_argument("--val-fraction", type=open_fraction, help="override the checkpoint's validation fraction")
    parser.add_argument("--batch-size", type=int_at_least(1), default=64)
    parser.add_argument("--images", type=int_at_least(1), default=16, help="crops drawn in heatmaps.png")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                        help="where the model runs (auto: a visible CUDA GPU, else the CPU); the metrics agree to "
                             "~1e-3 between the two (measured on an H200, docs/affordance-model.md)")


def run(args: argparse.Namespace) -> int:
    import torch

    from deft_core.affordance.checkpoint import CheckpointError
    from deft_core.affordance.evaluate import draw_sheet, evaluate_checkpoint
    from deft_core.schema import SchemaError
    from deft_core.segment import pick_device

    device = pick_device(args.device)
    if device == "cuda" and not torch.cuda.is_available():
        raise CommandError("--device cuda: torch sees no CUDA GPU here (torch.cuda.is_available() is False); "
                           "use --device cpu or auto")
    try:
        report = evaluate_checkpoint(args.checkpoint, args.shards, args.split, args.val_fraction, args.batch_size,
                                     max_sheet=args.images, device=device)
    except (CheckpointError, SchemaError, FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sheet = report.pop("_sheet")
    report["device"] = device
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    draw_sheet(sheet, out / "heatmaps.png")
    m, b = report["model"], report["baselines"]
    print(f"{report['samples']} samples ({report['split']}): contact {m['contact_px']:.1f}px (crop centre "
          f"{b['crop_centre_contact_px']:.1f}px), wrist {m['wrist_deg']:.1f}° (mean {b['train_mean_wrist_deg']:.1f}°), "
          f"pose {m['pose_deg']:.1f}°/joint (mean {b['train_mean_pose_deg']:.1f}°)")
    print(f"wrote {out / 'metrics.json'} and {out / 'heatmaps.png'}")
    return 0
