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
    from rich.console import Console, Group
    from rich.markup import escape
    from rich.padding import Padding
    from rich.table import Table

    # one block per task, labels left and values wrapping at spaces: readable at 80 columns (a wide
    # five-column table folded object names mid-word there)
    blocks = []
    for r in rows:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column()
        for split in ("train", "test"):
            grid.add_row(f"{split} objects", escape("; ".join(f"{role}: {', '.join(v)}" for role, v in r["objects"][split].items())))
        grid.add_row("success", escape(r["success"]))
        grid.add_row("reward", escape(r["reward"]))
        blocks.append(Group(f"[bold]{escape(r['name'])}[/]  text \"{escape(r['text'])}\", grasp region: {escape(r['grasp_region'])}",
                            Padding(grid, (0, 0, 1, 2), expand=False)))
    Console().print(Group(*blocks))
    return 0
