"""Extraction quality against a synthetic dataset's ground-truth sidecar → JSON + PNG.

Examples::

    deft data evaluate --shards data/shards/epic --truth data/synth/epic_kitchens --out reports/extract_epic
    deft data evaluate --shards out/ego4d out/hoi4d --truth synth/ego4d synth/hoi4d --out reports/extract

--shards and --truth are paired in order (one extraction output per generated dataset). Writes
OUT/extraction_quality.json (per dataset and hand-pose backend: valid clips extracted, contact-frame
error in frames, contact-point error in % of the crop side, wrist-rotation and hand-pose errors in
degrees) and OUT/extraction_examples.png (crops with predicted vs true contact points).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deft_core.cli_util import CommandError

HELP = "extraction quality vs the synthetic ground truth (JSON + PNG)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shards", nargs="+", required=True, help="extraction output folder(s) (data/, errors/)")
    p.add_argument("--truth", nargs="+", required=True, help="generated dataset root(s) holding _groundtruth/")
    p.add_argument("--out", required=True, help="report folder")


def run(a: argparse.Namespace) -> int:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from pipelines.quality import QualityInputError, draw_examples, evaluate

    if len(a.shards) != len(a.truth):
        raise CommandError(f"--shards has {len(a.shards)} folders but --truth has {len(a.truth)}; pair them in order")
    out = Path(a.out)
    reports, all_rows, all_samples = [], [], []
    for shards, truth in zip(a.shards, a.truth):
        try:
            rep, samples, rows = evaluate(shards, truth)
        except (FileNotFoundError, QualityInputError) as exc:
            raise CommandError(str(exc)) from exc
        reports.append(rep)
        all_rows += rows
        all_samples += samples
    out.mkdir(parents=True, exist_ok=True)
    (out / "extraction_quality.json").write_text(json.dumps({"reports": reports}, indent=2))
    png = draw_examples(all_rows, [s for s in all_samples], out / "extraction_examples.png")
    # fits 80 columns (the width rich assumes when the output is a log file or a pipe): the names never
    # wrap or truncate, the headers wrap instead
    t = Table(title="extraction quality (median errors)", box=box.SIMPLE_HEAD,
              caption="valid: valid clips extracted / valid clips; contact frame in frames; contact points in % of the "
                      "crop side; wrist rotation in degrees; hand pose in degrees per joint")
    t.add_column("dataset/backend", no_wrap=True)
    for col in ("valid", "contact frame", "contact points", "wrist", "hand pose"):
        t.add_column(col, justify="right")
    for rep in reports:
        for g, m in rep["groups"].items():
            med = lambda k: f"{m[k]['median']:.2f}" if m[k].get("n") else "-"  # noqa: E731
            t.add_row(g, f"{rep['valid_extracted']}/{rep['valid_clips']}", med("contact_frame_error_frames"),
                      med("contact_point_error_pct"), med("wrist_rotation_error_deg"), med("hand_pose_error_deg"))
        if not rep["groups"]:
            t.add_row(Path(rep["truth"]).name, f"{rep['valid_extracted']}/{rep['valid_clips']}", "-", "-", "-", "-")
    Console(stderr=True).print(t)
    for rep in reports:
        for w in rep.get("warnings", []):
            Console(stderr=True).print(f"warning ({rep['shards']}): {w}")
    by_mapping = [f"{k} {v['median']:.1f} % (n={v['n']})" for rep in reports
                  for k, v in rep.get("contact_point_error_by_mapping", {}).items() if v.get("n")]
    if by_mapping:
        Console(stderr=True).print("contact points, median error by how they reached v1: " + "; ".join(by_mapping))
    by_source = [f"{k} {v['median']:.1f} % (n={v['n']})" for rep in reports
                 for k, v in rep.get("contact_point_error_by_source", {}).items() if v.get("n")]
    if by_source:
        Console(stderr=True).print("contact points, median error by how they were found: " + "; ".join(by_source))
    print(json.dumps({"json": str(out / "extraction_quality.json"), "png": str(png)}))
    return 0
