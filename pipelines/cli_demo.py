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
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from deft_core.cli_util import CommandError

HELP = "run the whole chain on the embedded default world (synthetic data → extraction → training → fine-tuning → report)"


REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Step:
    name: str
    argv: list[str]
    produces: str  #: what the user should look at afterwards
    needs_ray: bool = False  #: runs against the demo's local Ray cluster (started on demand)
    #: consecutive steps with the same group run at the same time (independent, single-process steps such as
    #: the three synthesis runs: on 2 cores this halves their wall-clock time); output goes to OUT/logs/
    parallel_group: str | None = None
    #: run even when an earlier demo finished it: cheap steps that summarise everything before them (the
    #: report), so a demo resumed with other options never shows a stale result
    always: bool = False
    #: listed under "Where to look" at the end (the extra seeds' copies of the robot steps are not: the
    #: pooled report's line points to them)
    listed: bool = True
    #: the run seed of a robot step (``runs/`` is seed 0, ``runs_seed<s>/`` seed s); None for the others
    seed: int | None = None

    def command(self) -> str:
        return " ".join(shlex.quote(a) for a in self.argv)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from deft_core.cli_util import seed_arg

    parser.add_argument("--out", default="data/demo", help="where everything is written (default data/demo)")
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes on 2 cores); what CI runs")
    parser.add_argument("--clips", type=int, default=None, help="clips per synthetic dataset (default 100, quick 6)")
    parser.add_argument("--seed", type=seed_arg, default=0, help="seed of the synthetic datasets (default 0)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="fine-tune, distil and evaluate each task this many times (run seeds 0 … N−1) and pool "
                             "Table 2 over them (default 1; four extra seeds took 24 min on 2 cores)")
    parser.add_argument("--table3", action="store_true",
                        help="also distil and evaluate Table 3's policy ablations (MLP, transformer, direct, top-10 mean) "
                             "on Table 3's tasks (pour cup, open drawer, pick spoon; the quick demo's task with --quick)")
    parser.add_argument("--restart", action="store_true", help="ignore completed steps and run everything again")
    parser.add_argument("--list", action="store_true", help="print the steps and exit")


def _bin(name: str) -> str:
    """The console script next to the running interpreter (the project's .venv)."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


#: Ports of the demo's own local Ray cluster (not Ray's defaults, so a user's cluster is left alone).
RAY_PORT, RAY_DASHBOARD_PORT = 6390, 8290
#: Horizontal field of view (deg) of the synthetic head camera at 456×256 (fovy 62°): the mediapipe
#: backend needs it for PnP because Ego4D/EPIC ship no intrinsics.
SYNTH_FOV_DEG = 93.9


def build_steps(out: Path, quick: bool, clips: int, seed: int, seeds: int = 1, table3: bool = False) -> list[Step]:
    deft, ray, python = _bin("deft"), _bin("ray"), _bin("python")
    synth, shards, reports = out / "synth", out / "shards", out / "reports"
    address = f"http://127.0.0.1:{RAY_DASHBOARD_PORT}"
    steps = []
    for k, ds in enumerate(("ego4d", "epic_kitchens", "hoi4d")):
        # The nine human task demos (τ and goal images) are rendered once, with the Ego4D-format data.
        demos = [] if ds == "ego4d" else ["--no-demos"]
        steps.append(Step(f"synthesise {ds}", [deft, "data", "synth", ds, "--out", str(synth / ds), "--clips", str(clips),
                                               "--seed", str(seed + k), "--overwrite", *demos],
                          f"{synth / ds} in the native layout, ground truth in _groundtruth/"
                          + (", task demos in _demos/" if not demos else ""), parallel_group="synthesise"))
    for ds in ("ego4d", "epic_kitchens", "hoi4d"):
        steps.append(Step(f"contact sheet ({ds})", [deft, "data", "show", str(synth / ds), "--out", str(reports / f"sheet_{ds}.png")],
                          str(reports / f"sheet_{ds}.png")))
    for ds in ("ego4d", "epic_kitchens", "hoi4d"):
        pose = ["--hand-pose", "hoi4d"] if ds == "hoi4d" else ["--hand-pose", "mediapipe", "--hand-pose-option", f"fov_deg={SYNTH_FOV_DEG}"]
        steps.append(Step(f"extract {ds} (ray job submit)",
                          [ray, "job", "submit", "--address", address, "--working-dir", ".", "--",
                           "python", f"jobs/extract_{ds}.py", "--root", str(synth / ds), "--out", str(shards / ds),
                           "--no-progress", *pose],
                          f"{shards / ds}/ (data/*.parquet, errors/, manifest.json)", needs_ray=True))
    steps.append(Step("extraction quality vs ground truth",
                      [deft, "data", "evaluate", "--shards", *(str(shards / d) for d in ("ego4d", "epic_kitchens", "hoi4d")),
                       "--truth", *(str(synth / d) for d in ("ego4d", "epic_kitchens", "hoi4d")), "--out", str(reports / "extraction")],
                      f"{reports / 'extraction'}/extraction_quality.json and extraction_examples.png"))
    train_out = out / "affordance"
    steps.append(Step("train the affordance model (ray job submit)",
                      [ray, "job", "submit", "--address", address, "--working-dir", ".", "--",
                       "python", "jobs/train.py", "--shards", str(shards), "--out", str(train_out), "--preset", "tiny",
                       # the validation split is by video: hold out enough videos that a small demo has some
                       "--val-fraction", "0.3", "--epochs", "4" if quick else str(FULL_EPOCHS),
                       # MediaPipe's wrists on this data: median 46°, p90 164° off (extraction report); the
                       # wrist and pose heads learn from HOI4D's exact fits only
                       "--hand-label-weight", "mediapipe=0"],
                      f"{train_out}/model/ (the exported checkpoint), TensorBoard logs in {train_out}/tensorboard/",
                      needs_ray=True))
    steps.append(Step("evaluate the affordance model",
                      [deft, "model", "evaluate", "--checkpoint", str(train_out / "model"), "--shards", str(shards),
                       "--out", str(reports / "affordance")],
                      f"{reports / 'affordance'}/metrics.json and heatmaps.png"))
    steps += robot_steps(out, train_out / "model", quick, reports, seeds, table3)
    return steps


#: Epochs of the full demo's tiny model: on the 100-clip default (~230 samples, ~5 steps per epoch) the
#: preset's 8 epochs stop while the wrist and pose errors are still falling (measured in the README).
FULL_EPOCHS = 30

#: Tasks fine-tuned by the full demo: the seven of the paper's nine whose hand-tuned grasps succeed in the
#: simulator (scoop grape and flip bagel do not yet, so no prior could be judged on them).
DEMO_TASKS = ("pick_cup", "pour_cup", "open_drawer", "pick_spoon", "stir_spoon", "pick_grape", "squeeze_lemon")

#: The tasks of the paper's Table 3 (its policy and reward ablations), and the policy ablations ``--table3``
#: distils from each DEFT run and evaluates (``mean``, the top-10 mean residual, is §3.2's "we could take
#: the mean values of the top N trajectories"). The reward ablations need R3M / ImageNet weights, which the
#: embedded default does not have.
TABLE3_TASKS = ("pour_cup", "open_drawer", "pick_spoon")
TABLE3_KINDS = ("mlp", "transformer", "direct", "mean")


def robot_steps(out: Path, checkpoint: Path, quick: bool, reports: Path, seeds: int = 1, table3: bool = False) -> list[Step]:
    """DEFT in the simulator from the demo's own affordance model, against the §5 baselines. ``seeds`` > 1
    repeats the fine-tuning, distillation and evaluation with run seeds 1 … seeds − 1 (``runs_seed<s>/``;
    seed 0 is ``runs/``) and the report pools Table 2 over them (``deft-robot report --runs`` with every root).
    ``table3``: also each of :data:`TABLE3_KINDS` distilled from the DEFT run of every :data:`TABLE3_TASKS`
    task (the quick task with ``quick``) and evaluated like DEFT, in every seed (Table 3a of the report).
    The seeds' copies of each step run at the same time (one parallel group): every robot command uses one
    torch thread, so on 2 cores two seeds take about as long as one."""
    robot = _bin("deft-robot")
    tasks = DEMO_TASKS[:1] if quick else DEMO_TASKS
    budget = ["--episodes", "12", "--warmup", "4", "--elites", "4"] if quick else []
    trials = ["--trials", "3" if quick else "10"]
    per_seed, roots = [], []
    # every command that opens an affordance run names the model: a demo folder moved elsewhere resumes
    # (the runs record the model's path at the time; the model's digest is what is checked)
    model = ["--checkpoint", str(checkpoint)]
    for seed in range(seeds):
        runs = out / "runs" if seed == 0 else out / f"runs_seed{seed}"
        roots.append(runs)
        # seed 0 keeps the commands (and so the completed-step records) of a single-seed demo
        run_seed = [] if seed == 0 else ["--seed", str(seed)]
        tag = "" if seed == 0 else f" (seed {seed})"
        steps = []
        for task in tasks:
            common = ["--task", task, "--out", str(runs)]
            steps += [
                Step(f"{task}: fine-tune from the affordance model (Algorithm 1){tag}",
                     [robot, "finetune", *common, *model, "--no-live", *budget, *run_seed],
                     f"{runs / task / 'affordance'}/finetune.png (reward, elite mean, σ per episode) and "
                     "episodes.png (every episode's images and outcome)"),
                Step(f"{task}: real-world-only baseline (same CEM budget){tag}",
                     [robot, "finetune", *common, "--prior", "real-world-only", "--no-live", *budget, *run_seed],
                     f"{runs / task / 'real-world-only'}/finetune.png"),
                Step(f"{task}: distil the cVAE residual policies{tag}",
                     [robot, "distill", *common, "--prior", "affordance", "--kind", "deft", *run_seed],
                     f"{runs / task / 'affordance'}/policies/"),
                Step(f"{task}: distil the baseline's policy{tag}",
                     [robot, "distill", *common, "--prior", "real-world-only", "--kind", "deft", *run_seed],
                     f"{runs / task / 'real-world-only'}/policies/"),
                Step(f"{task}: evaluate DEFT{tag}",
                     [robot, "eval", *common, "--policy", "deft", "--prior", "affordance", *model, "--objects", "both", *trials],
                     f"{runs / task / 'affordance'}/eval/ (results as JSON, each trial's images in deft_*.png)"),
                Step(f"{task}: evaluate the affordance model alone{tag}",
                     [robot, "eval", *common, "--policy", "affordance", *model, "--objects", "both", *trials],
                     f"{runs / task}/*/eval/"),
                Step(f"{task}: evaluate real-world-only{tag}",
                     [robot, "eval", *common, "--policy", "real-world-only", "--objects", "both", *trials],
                     f"{runs / task / 'real-world-only'}/eval/"),
            ]
        for task in ([t for t in tasks if t in TABLE3_TASKS] or tasks[:1]) if table3 else ():
            common = ["--task", task, "--out", str(runs)]
            steps += [Step(f"{task}: distil Table 3's {kind} policy{tag}",
                           [robot, "distill", *common, "--prior", "affordance", "--kind", kind, *run_seed],
                           f"{runs / task / 'affordance'}/policies/{kind}/") for kind in TABLE3_KINDS]
            steps += [Step(f"{task}: evaluate the {kind} policy{tag}",
                           [robot, "eval", *common, "--policy", kind, "--prior", "affordance", *model, "--objects", "both",
                            *trials],
                           f"{runs / task / 'affordance'}/eval/") for kind in TABLE3_KINDS]
        per_seed.append([replace(s, seed=seed) for s in steps])
    if seeds == 1:
        steps = per_seed[0]
    else:  # step k of every seed, then step k + 1 of every seed, …: each k is one parallel group
        steps = [replace(s[k], parallel_group=f"seeds, step {k + 1}", listed=seed == 0)
                 for k in range(len(per_seed[0])) for seed, s in enumerate(per_seed)]
    report = [robot, "report", "--runs", *(str(r) for r in roots), "--out", str(reports / "sim")]
    if seeds == 1:
        steps.append(Step("report (Tables 2/3, Figure 6)", report,
                          f"{reports / 'sim'}/ (tables as markdown + JSON, improvement curves PNG)", always=True))
    else:
        steps.append(Step(f"report pooled over {seeds} seeds (Table 2{', 3a' if table3 else ''})", report,
                          f"{reports / 'sim'}/ (Table 2 pooled over the seeds; each seed's own report in root<i>/; "
                          f"the runs of seeds 1 … {seeds - 1} in {out}/runs_seed<s>/, laid out as runs/)", always=True))
    return steps


class LocalRay:
    """The demo's own single-node Ray cluster, started from this venv (so jobs run the project's
    ``python``) on non-default ports, and stopped when the demo ends or fails."""

    def __init__(self, env: dict, console) -> None:
        self.env, self.console, self.started = env, console, False

    def ensure(self) -> None:
        if self.started:
            return
        ray = _bin("ray")
        token = Path(self.env.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
        if self.env.get("RAY_AUTH_MODE") == "token" and not token.exists() and not self.env.get("RAY_AUTH_TOKEN"):
            # a fresh machine has no token yet, and `ray start` in token mode refuses to run without one
            subprocess.run([ray, "get-auth-token", "--generate"], env=self.env, stdout=subprocess.DEVNULL, check=True)
        cmd = [ray, "start", "--head", "--num-cpus", "4", "--port", str(RAY_PORT), "--dashboard-host", "127.0.0.1",
               "--dashboard-port", str(RAY_DASHBOARD_PORT), "--include-dashboard", "true", "--disable-usage-stats"]
        self.console.print(f"[dim]$ {' '.join(cmd)}[/]")
        if subprocess.run(cmd, env=self.env, stdout=subprocess.DEVNULL).returncode != 0:
            raise CommandError("could not start the local Ray cluster (is another Ray running on port "
                               f"{RAY_PORT}? stop it with `ray stop`)")
        self.started = True

    def stop(self) -> None:
        if self.started:
            subprocess.run([_bin("ray"), "stop"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.started = False


def _run_one(step: Step, i: int, n: int, env: dict, state: dict, console, local_ray: "LocalRay") -> None:
    console.rule(f"{i + 1}/{n} {step.name}")
    if step.needs_ray:
        local_ray.ensure()
    console.print(f"[dim]$ {step.command()}[/]")
    t0 = time.perf_counter()
    # `ray job submit --working-dir .` uploads the repository, so those steps run from its root.
    proc = subprocess.run(step.argv, env=env, cwd=REPO_ROOT if step.needs_ray else None)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise CommandError(f"step '{step.name}' failed (exit {proc.returncode}) after {elapsed:.0f} s; "
                           f"fix the cause and re-run: completed steps are skipped")
    state[step.name] = {"ok": True, "seconds": round(elapsed, 1)}


#: seconds between the "still running" lines of a parallel group
HEARTBEAT_S = 60.0


def _last_line(path: Path, max_chars: int = 160) -> str:
    """The last non-empty line of a (growing) log file, shortened to ``max_chars``; '' if none yet."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 4096))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in tail.replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-1][:max_chars] if lines else ""


def _run_parallel(group: list[Step], i: int, n: int, out: Path, env: dict, state: dict, console) -> None:
    """Run independent steps at once, each logging to OUT/logs/<step>.log; every step that succeeds is
    recorded even when another fails (a re-run then repeats only the failed ones)."""
    from rich.markup import escape

    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    console.rule(f"{i + 1}-{i + len(group)}/{n} " + ", ".join(s.name for s in group) + " (in parallel)")
    procs = []
    t0 = time.perf_counter()
    for step in group:
        log = logs / (step.name.replace(" ", "_").replace("/", "_") + ".log")
        console.print(f"[dim]$ {step.command()}  > {log}[/]")
        fh = open(log, "w")
        procs.append((step, subprocess.Popen(step.argv, env=env, stdout=fh, stderr=subprocess.STDOUT), fh, log))
    failed = []
    last = t0
    while running := [(step.name, log) for step, proc, _, log in procs if proc.poll() is None]:
        if time.perf_counter() - last >= HEARTBEAT_S:  # a heartbeat: the steps' own output goes to their logs
            last = time.perf_counter()
            console.print(f"  [dim]{last - t0:.0f} s: still running:[/]")
            for name, log in running:  # with each step's latest progress line (e.g. a render's k/N clips)
                line = _last_line(log)  # escaped: a log line may hold square brackets that rich would parse
                console.print(f"    [dim]{escape(name + (': ' + line if line else ''))}[/]", highlight=False)
        time.sleep(min(1.0, HEARTBEAT_S))
    for step, proc, fh, log in procs:
        rc = proc.wait()
        fh.close()
        elapsed = time.perf_counter() - t0
        if rc == 0:
            state[step.name] = {"ok": True, "seconds": round(elapsed, 1), "parallel": True}
            console.print(f"  {step.name}: done in {elapsed:.0f} s")
        else:
            failed.append(f"'{step.name}' (exit {rc}; log {log})")
    if failed:
        raise CommandError(f"step(s) {', '.join(failed)} failed; fix the cause and re-run: completed steps are skipped")


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
    if args.clips is not None and args.clips < 1:  # 0 is a bad value, not "unset": it must not run the full demo
        raise CommandError(f"--clips must be at least 1, got {args.clips}")
    clips = args.clips if args.clips is not None else (6 if args.quick else 100)
    if args.seeds < 1:
        raise CommandError(f"--seeds must be at least 1, got {args.seeds}")
    steps = build_steps(out, args.quick, clips, args.seed, args.seeds, args.table3)
    if args.list:
        for i, s in enumerate(steps, 1):
            console.print(f"{i:2d}. [bold]{s.name}[/]\n    {s.command()}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    stored = _load_state(out)
    state = {} if args.restart else stored
    key = f"quick={args.quick},clips={clips},seed={args.seed}"
    earlier = stored.get("_config")
    if earlier is not None and earlier != key:
        # other data (--quick after a full demo, another --seed or --clips): everything made from the earlier
        # data would be resumed or skipped against the new one (extraction refuses to mix them; the fine-tuning
        # runs refuse another model), so the earlier demo's derived outputs go; the renders are overwritten
        stale = [d for d in (out / "shards", out / "affordance", out / "reports", *sorted(out.glob("runs*"))) if d.is_dir()]
        if stale:
            console.print(f"[yellow]the earlier demo in {out} used other data ({earlier}); removing its "
                          f"{', '.join(d.name + '/' for d in stale)} to start over with {key}[/]")
            for d in stale:
                shutil.rmtree(d)
    if state.get("_config") != key:
        state = {"_config": key}
    t_all = time.perf_counter()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    # Ray 2.5x+ token authentication: the cluster and `ray job submit` must agree on the mode; with it
    # unset they can disagree (the CLI then sends no token). The token lives in ~/.ray/auth_token.
    env.setdefault("RAY_AUTH_MODE", "token")
    local_ray = LocalRay(env, console)
    try:
        i = 0
        while i < len(steps):
            span = 1  # this step and the consecutive steps of its parallel group
            while steps[i].parallel_group and i + span < len(steps) and \
                    steps[i + span].parallel_group == steps[i].parallel_group:
                span += 1
            pending = []
            for k, step in enumerate(steps[i:i + span], i + 1):
                if state.get(step.name, {}).get("ok") and not step.always:
                    console.print(f"[dim]{k:2d}/{len(steps)} {step.name}: done earlier, skipped[/]")
                else:
                    pending.append(step)
            if len(pending) > 1:
                _run_parallel(pending, i, len(steps), out, env, state, console)
            elif pending:
                _run_one(pending[0], steps.index(pending[0]), len(steps), env, state, console, local_ray)
            _save_state(out, state)
            i += span
    finally:
        _save_state(out, state)
        local_ray.stop()
    total = time.perf_counter() - t_all
    console.rule("done")
    console.print(f"Finished in {total / 60:.1f} min. Where to look:")
    for step in steps:
        if step.listed:
            console.print(f"  • {step.name}: {step.produces}")
    table = table2_terminal(out / "reports" / "sim" / "report.json")
    if table is not None:  # the headline result, so nobody has to open a file to see it
        console.rule("result: Table 2 (deft-robot report)")
        for part in table:
            console.print(part)
    return 0


#: Table 2's methods in the report's column order: report.json key prefix → short column title
_TABLE2_METHODS = (("affordance", "affordance\nmodel only"), ("real-world-only", "real-world\nonly"), ("deft", "DEFT"))


def table2_terminal(report_json: Path) -> list | None:
    """Table 2 of a ``deft-robot report`` (its ``report.json``) laid out for a terminal: one column per
    method with "train, test" successes (report.md's nine columns do not fit 80 characters), the
    verdict, then the report's summary line and its reasons for the rows that fail. ``None`` when there
    is no report (yet) or it cannot be read; report.md stays the full record."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    try:
        report = json.loads(Path(report_json).read_text())
        rows = report["table2"]
    except (OSError, ValueError, KeyError, TypeError):
        return None

    def cell(row: dict, method: str) -> str:
        parts = []
        for split in ("train", "test"):
            ev = row.get(f"{method}_{split}")
            parts.append(f"{ev['successes']}/{ev['trials']}" if isinstance(ev, dict) else "missing")
        return ", ".join(parts)

    table = Table(title="successes on held-out resets: train objects, test objects", title_justify="left",
                  box=box.SIMPLE_HEAD)
    table.add_column("task")
    for _, title in _TABLE2_METHODS:
        table.add_column(title, justify="center")
    table.add_column("DEFT above\nboth?", no_wrap=True)
    for row in rows:
        label = row["task"] if row.get("prior") in ("affordance", None) else f"{row['task']} ({row['prior']} prior)"
        table.add_row(escape(label), *(cell(row, m) for m, _ in _TABLE2_METHODS), _verdict(row.get("pattern") or {}))
    summary = report.get("table2_summary") or {}
    holds = summary.get("holds") or []
    reasons = Table.grid(padding=(0, 1))
    reasons.add_column(no_wrap=True)
    reasons.add_column()
    for row in rows:
        if row.get("warning"):
            reasons.add_row(f"! {escape(row['task'])}:", f"[yellow]{escape(row['warning'])}[/]")
        if row.get("why_not"):
            reasons.add_row(f"• {escape(row['task'])}:", escape("; ".join(row["why_not"])))
    per_root = [len((p.get("table2_summary") or {}).get("holds") or []) for p in report.get("per_root") or []]
    pooled = (f" on the cells pooled over {len(per_root)} seeds (in each seed alone: {', '.join(map(str, per_root))})"
              if report.get("pooled") else "")
    verdict = (f"The pattern (DEFT strictly above both baselines on train and test objects) holds{pooled} on "
               f"[bold]{len(holds)} of {summary.get('tasks', len(rows))}[/] task(s)" + (f": {', '.join(holds)}" if holds else "")
               + (". Why not, from the report:" if reasons.row_count else "."))
    return [table, verdict, reasons] if reasons.row_count else [table, verdict]


def _verdict(pattern: dict) -> str:
    """Short form of the report's "DEFT above both?" cell from a row's ``pattern``."""
    splits = ("train", "test")
    if any((pattern.get(s) or {}).get("above") is None for s in splits):
        return "missing cells"
    if pattern.get("holds"):
        if "significant_across_runs" in pattern:  # pooled over seeds: the run is the unit, not the trial
            return "yes, p < 0.05 (runs)" if pattern["significant_across_runs"] else "yes"
        return "yes, p < 0.05" if pattern.get("significant") else "yes"
    return "no: " + ", ".join(s for s in splits if not pattern[s]["above"])
