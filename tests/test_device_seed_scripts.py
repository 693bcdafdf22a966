"""The scripts that ran the demo's robot stage for many seeds on a lent machine (benchmarks/device/):
the job plan is the demo's own commands, and the text-table shim serves exact embeddings or fails."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines import cli_demo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "device"))


def test_the_seed_plan_is_the_demos_robot_steps_per_task_and_seed(tmp_path):
    import seeds_run

    jobs = seeds_run.plan(tmp_path, tmp_path / "model", [0, 3], ["pick_cup", "open_drawer"])
    assert sorted(jobs) == [("open_drawer", 0), ("open_drawer", 3), ("pick_cup", 0), ("pick_cup", 3)]
    demo = {s.name: s.argv for s in cli_demo.robot_steps(tmp_path, tmp_path / "model", False, tmp_path / "r", 4)}
    for (task, seed), steps in jobs.items():
        assert [s.argv[1] for s in steps] == ["finetune", "finetune", "distill", "distill", "eval", "eval", "eval"]
        for s in steps:
            assert demo[s.name] == s.argv                                  # exactly the demo's command
            assert s.argv[s.argv.index("--task") + 1] == task
            assert s.argv[s.argv.index("--out") + 1] == str(tmp_path / ("runs" if seed == 0 else f"runs_seed{seed}"))
            if s.argv[1] != "eval":   # evaluation is seeded by the scenes, not the run seed
                assert ("--seed" in s.argv) == (seed != 0)
                assert seed == 0 or s.argv[s.argv.index("--seed") + 1] == str(seed)


def test_the_text_table_shim_serves_the_tables_embeddings_and_refuses_other_texts(tmp_path):
    table = tmp_path / "table.json"
    table.write_text(json.dumps({"pick up the cup": [0.5] * 384}))
    code = ("from deft_core.affordance.encoders import make_text_encoder as f\n"
            "e = f('minilm'); print(type(e).__name__, float(e.encode(['pick up the cup']).sum()))\n"
            "try:\n    e.encode(['stir the pot'])\nexcept KeyError as exc:\n    print('refused', exc)\n")
    env = dict(os.environ, DEFT_TEXT_TABLE=str(table),
               PYTHONPATH=os.pathsep.join([str(ROOT / "benchmarks" / "device" / "shim"), str(ROOT)]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "TableMiniLM 192.0" in out.stdout and "refused" in out.stdout and "stir the pot" in out.stdout


def test_unfinished_jobs_are_set_aside_so_a_pooled_report_never_counts_them(tmp_path):
    import seeds_run

    for root, task in (("runs", "pick_cup"), ("runs_seed3", "pick_cup"), ("runs_seed3", "open_drawer")):
        (tmp_path / root / task / "affordance").mkdir(parents=True)
    moved = seeds_run.set_aside_unfinished(tmp_path, {("pick_cup", 0): "ok", ("pick_cup", 3): "timeout",
                                                      ("open_drawer", 3): "rc 2 at eval", ("pour_cup", 3): "deadline"})
    assert moved == [tmp_path / "unfinished" / "runs_seed3" / "open_drawer", tmp_path / "unfinished" / "runs_seed3" / "pick_cup"]
    assert (tmp_path / "runs" / "pick_cup" / "affordance").is_dir() and not (tmp_path / "runs_seed3" / "pick_cup").exists()
    status = json.loads((tmp_path / "job_status.json").read_text())
    assert status["pick_cup seed 3"] == "timeout" and status["pick_cup seed 0"] == "ok" and len(status) == 4
