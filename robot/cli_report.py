"""Table 2/3-style tables (markdown + JSON) and Figure 6-style improvement curves (PNG) from the runs on disk.

Example::

    deft-robot report --runs runs/ --out reports/
    deft-robot report --runs runs/ runs_seed1/ runs_seed2/ --out reports/   # Table 2 pooled over runs

Reads every ``<runs>/<task>/<run>/run_meta.json`` with its ``eval/*.json`` and fine-tuning log, and
writes ``report.md``, ``report.json`` and ``improvement_curves.png`` to ``--out``. Evaluations that do
not exist are shown as ``missing`` (a Table 3 ablation evaluated on no task is one line, not a column).

With several runs roots (the same fine-tuning repeated, e.g. with ``--seed 0, 1, 2``) each root's own
report goes to ``<out>/root<i>/`` and ``<out>/report.md`` holds Table 2 pooled over the roots: cells sum
the roots' successes and trials, and a column says in how many roots the pattern held alone.
"""

from __future__ import annotations

import argparse

HELP = "Table 2/3-style tables (markdown + JSON) and improvement curves (PNG) from the runs on disk"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", nargs="+", default=["runs"],
                        help="runs root(s) (default runs/); several: Table 2 pooled over them, each root's own report beside it")
    parser.add_argument("--out", default="reports", help="output directory (default reports/)")
    parser.add_argument("--quiet", action="store_true", help="do not print the markdown")


def run(args: argparse.Namespace) -> int:
    from deft_core.cli_util import CommandError
    from robot.reporting import write_report
    from robot.runs import RunError

    try:
        res = write_report(args.runs if len(args.runs) > 1 else args.runs[0], args.out)
    except (RunError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if not args.quiet:
        print(res["markdown"].read_text())
    print(f"wrote {res['markdown']}, {res['json']}" + (f", {res['png']}" if res["png"] else " (no logs: no curves)"))
    return 0
