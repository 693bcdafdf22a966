"""Run the whole DEFT chain on the embedded default world (the README's main command).

Each step runs a real entry point exactly as a user would type it (``deft data synth``,
``ray job submit -- python jobs/...``, ``deft-robot ...``), in order, and records its completion
under ``--out`` so an interrupted demo resumes where it stopped. ``--quick`` shrinks every step to a
size that finishes in a few minutes on 2 CPU cores (used by CI).

Examples::

    deft demo                 # full-size demo under data/demo/
    deft demo --quick         # small and fast
    deft demo --list          # show the steps without running them
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from deft_core.cli_util import CommandError

HELP = "run the whole chain on the embedded default world (synthetic data → extraction → training → fine-tuning → report)"


@dataclass
class Step:
    name: str
    argv: list[str]
    produces: str  #: what the user should look at afterwards

    def command(self) -> str:
        return " ".join(shlex.quote(a) for a in self.argv)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="data/demo", help="where everything is written (default data/demo)")
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes on 2 cores); what CI runs")
    parser.add_argument("--clips", type=int, default=None, help="clips per synthetic dataset (default 24, quick 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--restart", action="store_true", help="ignore completed steps and run everything again")
    parser.add_argument("--list", action="store_true", help="print the steps and exit")


def _bin(name: str) -> str:
    """The console script next to the running interpreter (the project's .venv)."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def build_steps(out: Path, quick: bool, clips: int, seed: int) -> list[Step]:
    deft = _bin("deft")
    synth = out / "synth"
    steps = [
        Step("synthesise datasets", [deft, "data", "synth", "all", "--out", str(synth), "--clips", str(clips),
                                     "--seed", str(seed), "--overwrite"],
             f"{synth}/{{ego4d,epic_kitchens,hoi4d}} in the native layouts, ground truth in */_groundtruth/"),
    ]
    for ds in ("ego4d", "epic_kitchens", "hoi4d"):
        steps.append(Step(f"contact sheet ({ds})", [deft, "data", "show", str(synth / ds), "--out", str(out / f"sheet_{ds}.png")],
                          str(out / f"sheet_{ds}.png")))
    return steps


def _state_path(out: Path) -> Path:
    return out / "demo_state.json"


def _load_state(out: Path) -> dict:
    p = _state_path(out)
    return json.loads(p.read_text()) if p.exists() else {}


def _save_state(out: Path, state: dict) -> None:
    p = _state_path(out)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, p)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console()
    out = Path(args.out).resolve()
    clips = args.clips or (6 if args.quick else 24)
    if clips < 1:
        raise CommandError(f"--clips must be at least 1, got {clips}")
    steps = build_steps(out, args.quick, clips, args.seed)
    if args.list:
        for i, s in enumerate(steps, 1):
            console.print(f"{i:2d}. [bold]{s.name}[/]\n    {s.command()}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    state = {} if args.restart else _load_state(out)
    key = f"quick={args.quick},clips={clips},seed={args.seed}"
    if state.get("_config") != key:
        state = {"_config": key}
    t_all = time.perf_counter()
    for i, step in enumerate(steps, 1):
        if state.get(step.name, {}).get("ok"):
            console.print(f"[dim]{i:2d}/{len(steps)} {step.name}: done earlier, skipped[/]")
            continue
        console.rule(f"{i}/{len(steps)} {step.name}")
        console.print(f"[dim]$ {step.command()}[/]")
        t0 = time.perf_counter()
        proc = subprocess.run(step.argv)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            _save_state(out, state)
            raise CommandError(f"step '{step.name}' failed (exit {proc.returncode}) after {elapsed:.0f} s; "
                               f"fix the cause and re-run: completed steps are skipped")
        state[step.name] = {"ok": True, "seconds": round(elapsed, 1)}
        _save_state(out, state)
    total = time.perf_counter() - t_all
    console.rule("done")
    console.print(f"Finished in {total / 60:.1f} min. Where to look:")
    for step in steps:
        console.print(f"  • {step.name}: {step.produces}")
    return 0
