"""Render a synthetic egocentric dataset in a real dataset's native layout.

Examples::

    deft data synth epic_kitchens --out data/synth/epic --clips 20 --seed 0
    deft data synth all --out data/synth --clips 10 --corrupt 2

``all`` writes DIR/ego4d, DIR/epic_kitchens and DIR/hoi4d. DIR must be empty or absent unless
--overwrite (which only replaces a previously generated dataset).
"""

from __future__ import annotations

import argparse

from deft_core.cli_util import CommandError

HELP = "render a synthetic egocentric dataset in a real dataset's native layout"
CHOICES = ("ego4d", "epic_kitchens", "hoi4d", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=CHOICES, help="which dataset format to write (or all three)")
    parser.add_argument("--out", required=True, help="output directory (must be empty or absent)")
    parser.add_argument("--clips", type=int, default=20, help="number of clips per dataset (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--corrupt", type=int, default=0, help="number of deliberately broken inputs (default 0)")
    parser.add_argument("--width", type=int, default=456, help="frame width in pixels, even (default 456)")
    parser.add_argument("--height", type=int, default=256, help="frame height in pixels, even (default 256)")
    parser.add_argument("--no-demos", action="store_true", help="skip the per-task human demo videos")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing generated dataset in --out")


def _check(args: argparse.Namespace) -> None:
    if args.clips < 1:
        raise CommandError(f"--clips must be at least 1, got {args.clips}")
    if args.corrupt < 0 or args.corrupt > args.clips:
        raise CommandError(f"--corrupt must be between 0 and --clips ({args.clips}), got {args.corrupt}")
    for name in ("width", "height"):
        v = getattr(args, name)
        if v < 16 or v % 2 or v > 4096:  # beyond 4096 the clip's frames do not fit in memory (and no camera is that)
            raise CommandError(f"--{name} must be an even number of pixels from 16 to 4096; got {v}")
    if args.seed < 0:
        raise CommandError(f"--seed must be non-negative, got {args.seed}")


def run(args: argparse.Namespace, *, render_fn=None, demo_fn=None) -> int:
    from pathlib import Path

    from rich.console import Console

    from pipelines.synth.generate import DATASETS, OutputExistsError, generate_dataset, prepare_output

    _check(args)
    out = Path(args.out)
    datasets = DATASETS if args.dataset == "all" else (args.dataset,)
    try:
        if args.dataset == "all":
            prepare_output(out, args.overwrite, datasets=DATASETS)
    except OutputExistsError as exc:
        raise CommandError(str(exc)) from None
    console = Console(stderr=True)
    summaries = []
    for i, name in enumerate(datasets):
        root = out / name if args.dataset == "all" else out
        try:
            summaries.append(generate_dataset(
                name, root, clips=args.clips, seed=args.seed + i, corrupt=args.corrupt, width=args.width,
                height=args.height, overwrite=args.overwrite, demos=not args.no_demos,
                render_fn=render_fn, demo_fn=demo_fn, progress="bar" if console.is_terminal else "lines"))
        except OutputExistsError as exc:
            raise CommandError(str(exc)) from None
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
    for s in summaries:
        print(f"{s.dataset}: {s.clips} clips in {s.videos} videos, {s.files} files ({s.bytes / 1e6:.1f} MB), "
              f"{s.corrupted} corrupted, {s.seconds:.1f} s, {s.clips_per_minute:.1f} clips/min -> {s.root}")
    return 0
