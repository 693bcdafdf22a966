"""Table 2/3-style tables (markdown + JSON) and Figure 6-style improvement curves (PNG) from the runs on disk.

Example::

    deft-robot report --runs runs/ --out reports/

Reads every ``<runs>/<task>/<run>/run_meta.json`` with its ``eval/*.json`` and fine-tuning log, and
writes ``report.md``, ``report.json`` and ``improvement_curves.png`` to ``--out``. Evaluations that do
not exist are shown as ``missing`` (a Table 3 ablation evaluated on no task is one line, not a column).
"""

from __future__ import annotations

import argparse

HELP = "Table 2/3-style tables (markdown + JSON) and improvement curves (PNG) from the runs on disk"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", default="runs", help="runs root (default runs/)")
    parser.add_argument("--out", default="reports", help="output directory (default reports/)")
    parser.add_argument("--quiet", action="store_true", help="do not print the markdown")


def run(args: argparse.Namespace) -> int:
    from deft_core.cli_util import CommandError
    from robot.reporting import write_report
    from robot.runs import RunError

    try:
        res = write_report(args.runs, args.out)
    except (RunError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if not args.quiet:
        print(res["markdown"].read_text())
    print(f"wrote {res['markdown']}, {res['json']}" + (f", {res['png']}" if res["png"] else " (no logs: no curves)"))
    return 0
