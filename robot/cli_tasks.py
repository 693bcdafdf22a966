"""List the nine DEFT tasks: text given to the affordance model, grasp region, objects by split,
success criterion (paper Appendix F, as computed in the simulator) and the shaped reward.

Examples::

    deft-robot tasks
    deft-robot tasks --task pour_cup --json
"""

from __future__ import annotations

import argparse
import json

HELP = "list the nine tasks: objects by split, success criteria, rewards"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", help="show only this task")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from deft_core.cli_util import CommandError
    from robot.tasks import TASKS, get_task_definition

    try:
        tasks = [get_task_definition(args.task)] if args.task else list(TASKS.values())
    except KeyError as exc:
        raise CommandError(str(exc.args[0])) from None
    rows = [t.describe() for t in tasks]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="DEFT tasks", show_lines=True)
    for col in ("task", "text / grasp region", "train objects", "test objects", "success (Appendix F)"):
        table.add_column(col, overflow="fold")
    for r in rows:
        objs = {s: "\n".join(f"{role}: {', '.join(v)}" for role, v in r["objects"][s].items()) for s in ("train", "test")}
        table.add_row(r["name"], f"{r['text']}\n({r['grasp_region']})", objs["train"], objs["test"],
                      f"{r['success']}\nreward: {r['reward']}")
    Console().print(table)
    return 0
