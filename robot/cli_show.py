"""``deft-robot show``: a contact sheet of a fine-tuning run's episodes — each one's initial and final
image, reward, outcome and controller error, the elites framed in gold (deft_core.finetune.sheet).

Examples::

    deft-robot show --task pick_cup                                  # the task's DEFT run under runs/
    deft-robot show --task pick_cup --prior real-world-only --sort reward
    deft-robot show --task pick_cup --run runs/lab/pick_cup/affordance --png /tmp/pick_cup.png

``deft-robot finetune`` writes the same sheet to ``<run>/episodes.png`` when a run finishes; ``show``
draws it for any run, a partial one (still running, or killed) included, with another order or size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "a contact sheet of a fine-tuning run's episodes: images, rewards, outcomes, elites"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from deft_core.cli_util import int_at_least
    from deft_core.finetune.sheet import SORTS

    parser.add_argument("--task", required=True, help="task name")
    parser.add_argument("--run", help="run directory (default: the task's only DEFT run under --out)")
    parser.add_argument("--prior", help="pick the run by its name under OUT/<task>/ (e.g. real-world-only, oracle)")
    parser.add_argument("--out", default="runs", help="runs root (default runs/)")
    parser.add_argument("--png", metavar="FILE", help="where to write the sheet (default <run>/episodes.png)")
    parser.add_argument("--sort", choices=SORTS, default="episode",
                        help="episode: as run (default); reward: best first, CEM's order (void attempts last)")
    parser.add_argument("--columns", type=int_at_least(1),
                        help="tiles per row (default 5, or 4 when the tiles have the zoom around μ)")
    parser.add_argument("--thumb", type=int_at_least(16), default=150,
                        help="width of each image in pixels (default 150)")
    parser.add_argument("--max", type=int_at_least(1), dest="max_tiles",
                        help="draw only the first N tiles of the chosen order")


def run(args: argparse.Namespace) -> int:
    from deft_core.cli_util import CommandError
    from deft_core.finetune.sheet import SheetLayout, write_sheet
    from robot.cli_finetune import _check_task
    from robot.runs import RunError, open_run_episodes

    _check_task(args.task)
    if args.png and Path(args.png).suffix.lower() != ".png":
        raise CommandError(f"--png {args.png}: the sheet is written as PNG; give a file name ending in .png")
    try:
        rd, meta, records = open_run_episodes(args.out, args.task, args.run, args.prior)
    except RunError as exc:
        raise CommandError(str(exc)) from None
    if not records:
        raise CommandError(f"{rd.finetune_dir} has no episodes yet; nothing to show")
    png = Path(args.png) if args.png else rd.sheet_png
    layout = SheetLayout(thumb=args.thumb, columns=args.columns)
    unreadable = write_sheet(rd.finetune_dir, records, meta.elites, png, sort=args.sort, layout=layout,
                             max_tiles=args.max_tiles, title=f"{meta.task}: {rd.path.name} (seed {meta.seed})")
    ok = sum(r.status == "ok" for r in records)
    print(f"{meta.task}: {ok} of {meta.episodes} episodes"
          + (f", {len(records) - ok} void attempt(s)" if len(records) > ok else ""))
    if unreadable:
        shown = "; ".join(unreadable[:3]) + (f"; and {len(unreadable) - 3} more" if len(unreadable) > 3 else "")
        print(f"warning: {len(unreadable)} image(s) drawn grey — {shown}")
    print(f"wrote {png}")
    return 0
