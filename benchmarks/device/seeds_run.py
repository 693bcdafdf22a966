"""The demo's robot stage for TASKS × SEEDS as independent jobs in parallel processes: exactly the commands
``deft demo --seeds`` runs (:func:`pipelines.cli_demo.robot_steps`), seed s into ``OUT/runs_seed<s>`` (seed 0
into ``OUT/runs``), one job = one task and seed, its seven commands in order. Unlike the demo's parallel
groups, no job waits for the slowest copy of a step, so 16 cores stay busy. Jobs start seed by seed; at
``--deadline`` seconds the running commands are stopped; a cut or failed job's runs are moved to
``OUT/unfinished/`` (``job_status.json`` lists every job), so the pooled report never counts them. The
evaluation results, run descriptions and episode logs (not the images or policy weights) are packed into
``--tar``. Used through ``run_seeds.sh`` on a lent machine; runs anywhere."""
import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, os.getcwd())
from pipelines.cli_demo import DEMO_TASKS, robot_steps  # noqa: E402


def plan(out: Path, model: Path, seeds: list[int], tasks: list[str]) -> dict[tuple[str, int], list]:
    """(task, seed) → that job's demo steps (:class:`pipelines.cli_demo.Step`), in the demo's order."""
    steps = robot_steps(out, model, False, out / "reports", max(seeds) + 1)[:-1]   # [:-1]: not the report
    jobs: dict[tuple[str, int], list] = {}
    for s in steps:
        task = s.argv[s.argv.index("--task") + 1]
        if s.seed in seeds and task in tasks:
            jobs.setdefault((task, s.seed), []).append(s)
    return jobs


def set_aside_unfinished(out: Path, statuses: dict[tuple[str, int], str]) -> list[Path]:
    """Move the runs of every job whose status is not ``ok`` (cut at the deadline, failed) from
    ``out/<root>/<task>`` to ``out/unfinished/<root>/<task>``, so that ``deft-robot report --runs
    out/runs_seed*`` pools only finished jobs; write every job's status to ``out/job_status.json``.
    Returns the new places. A job that finished its last command just as the deadline struck is still set
    aside: its status is what says it finished, not the files."""
    moved = []
    for (task, seed), status in sorted(statuses.items()):
        root = "runs" if seed == 0 else f"runs_seed{seed}"
        src = out / root / task
        if status != "ok" and src.exists():
            dst = out / "unfinished" / root / task
            dst.parent.mkdir(parents=True, exist_ok=True)
            src.rename(dst)
            moved.append(dst)
    (out / "job_status.json").write_text(json.dumps({f"{t} seed {s}": v for (t, s), v in sorted(statuses.items())},
                                                    indent=1))
    return moved


RUN = [sys.executable, "-c", "import sys; from robot.cli import main; sys.exit(main(sys.argv[1:]))"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--tasks", nargs="+", default=list(DEMO_TASKS))
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--deadline", type=float, default=480)
    ap.add_argument("--tar", required=True)
    a = ap.parse_args()
    out, t0 = Path(a.out), time.time()
    jobs = plan(out, Path(a.model), a.seeds, a.tasks)
    print(f"{len(jobs)} jobs, {sum(len(v) for v in jobs.values())} commands", flush=True)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def run(key):
        task, seed = key
        t = time.time()
        with open(logs / f"{task}_seed{seed}.log", "w") as fh:
            for s in jobs[key]:
                left = a.deadline - (time.time() - t0)
                if left <= 5:
                    return key, "deadline", time.time() - t
                try:
                    rc = subprocess.run(RUN + s.argv[1:], stdout=fh, stderr=subprocess.STDOUT, timeout=left).returncode
                except subprocess.TimeoutExpired:
                    return key, "timeout", time.time() - t
                if rc != 0:
                    return key, f"rc {rc} at {s.name}", time.time() - t
        return key, "ok", time.time() - t

    statuses = {}
    with ThreadPoolExecutor(a.workers) as ex:
        for key, status, dt in ex.map(run, sorted(jobs, key=lambda k: (k[1], k[0]))):
            print(f"{key[0]} seed {key[1]}: {status} in {dt:.0f} s", flush=True)
            statuses[key] = status
    for where in set_aside_unfinished(out, statuses):
        print(f"not finished, moved to {where} (left out of any pooled report)", flush=True)
    with tarfile.open(a.tar, "w:gz") as tf:
        for p in sorted(out.rglob("*")):
            if p.is_file() and p.suffix in (".json", ".jsonl", ".log") and "images" not in p.parts:
                tf.add(p, arcname=str(p.relative_to(out)))
    print(f"done in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
