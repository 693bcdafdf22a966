"""Describe the procedural MuJoCo world: list object variants, write a task scene's MJCF.

Examples::

    deft-robot world                                  # object variants by kind and split
    deft-robot world --kind cup --split test
    deft-robot world --scene pick_cup --seed 3 --out scene.xml
    deft-robot world --scene stir_spoon --object spoon_wood_large --support jar_blue --out stir.xml
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deft_core.cli_util import CommandError

HELP = "describe the procedural MuJoCo world (scenes, objects, hands)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from deft_core.cli_util import seed_arg

    parser.add_argument("--kind", help="only list variants of this object kind")
    parser.add_argument("--split", choices=("train", "test"), help="only list (or draw scene objects from) this split")
    parser.add_argument("--scene", metavar="TASK", help="build the workcell scene of TASK (e.g. pick_cup)")
    parser.add_argument("--seed", type=seed_arg, default=0, help="placement/variant seed for --scene (default 0)")
    parser.add_argument("--object", help="object variant for the grasped object of --scene")
    parser.add_argument("--support", help="object variant for the support object of --scene")
    parser.add_argument("--out", type=Path, help="write the scene's MJCF here (with --scene)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _list(args) -> int:
    from deft_core.world.objects import object_extent, object_variants

    try:
        variants = object_variants(args.kind, args.split)
    except (KeyError, ValueError) as exc:
        raise CommandError(str(exc).strip('"')) from None
    rows = [{"name": v.name, "kind": v.kind, "split": v.split, "shape": v.shape, "mass_kg": v.mass,
             "size_m": [round(float(x), 4) for x in 2 * object_extent(v).half_sizes]} for v in variants]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich import box
    from rich.console import Console
    from rich.table import Table

    # no vertical rules and short headers: fits 80 columns (a log, a pipe) with every name whole
    table = Table(title="object variants (size: x × y × z)", box=box.SIMPLE_HEAD)
    for col in ("kind", "split", "name", "shape", "mass (kg)", "size (cm)"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        table.add_row(r["kind"], r["split"], r["name"], r["shape"], f"{r['mass_kg']:.3f}",
                      "×".join(f"{100 * s:.1f}" for s in r["size_m"]))
    Console().print(table)
    return 0


def _scene(args) -> int:
    from deft_core.world.robot_scene import build_robot_scene

    names = {k: v for k, v in (("object", args.object), ("support", args.support)) if v}
    if args.out is not None and args.out.exists() and not args.overwrite:
        raise CommandError(f"{args.out} exists; pass --overwrite to replace it")
    try:
        xml, info = build_robot_scene(args.scene, names or None, seed=args.seed, split=args.split or "train")
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CommandError(str(exc).strip('"')) from None
    summary = {"task": info.task, "seed": info.seed, "camera": info.camera, "camera_size": list(info.camera_size),
               "K": info.K.round(3).tolist(), "T_base_cam": info.T_base_cam.round(4).tolist(),
               "objects": {r: {"variant": o.variant, "pos": [round(x, 4) for x in o.pos], "yaw": round(o.yaw, 4),
                               "sites": o.mjcf.sites} for r, o in info.objects.items()}}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(xml)
        summary["out"] = str(args.out)
    print(json.dumps(summary, indent=None if args.json else 2))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.out is not None and not args.scene:
        raise CommandError("--out needs --scene TASK")
    if (args.object or args.support) and not args.scene:
        raise CommandError("--object/--support need --scene TASK")
    return _scene(args) if args.scene else _list(args)
