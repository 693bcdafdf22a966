"""``deft demo``'s step runner: parallel groups run at the same time, completed steps are recorded and
skipped on re-run, and a failing member of a group does not lose its siblings' completion."""

from __future__ import annotations

import argparse
import json
import sys

import pytest

from deft_core.cli_util import CommandError
from pipelines import cli_demo
from pipelines.cli_demo import Step


def _sleep_step(name: str, marker, seconds: float = 1.0, rc: int = 0, group: str | None = "g") -> Step:
    code = f"import time, pathlib; time.sleep({seconds}); pathlib.Path({str(marker)!r}).write_text('x'); raise SystemExit({rc})"
    return Step(name, [sys.executable, "-c", code], "nothing", parallel_group=group)


def _args(out) -> argparse.Namespace:
    return argparse.Namespace(out=str(out), quick=True, clips=1, seed=0, seeds=1, table3=False, restart=False, list=False)


def _timed_step(name: str, marker, seconds: float = 1.0) -> Step:
    """A group step that writes its start and end times (epoch seconds) to ``marker``."""
    code = (f"import time, pathlib; t0 = time.time(); time.sleep({seconds}); "
            f"pathlib.Path({str(marker)!r}).write_text(f'{{t0}} {{time.time()}}')")
    return Step(name, [sys.executable, "-c", code], "nothing", parallel_group="g")


def test_parallel_group_runs_together_and_resumes(tmp_path, monkeypatch):
    steps = [_timed_step(f"s{k}", tmp_path / f"m{k}") for k in range(3)] + \
            [_sleep_step("after", tmp_path / "after", seconds=0.0, group=None)]
    monkeypatch.setattr(cli_demo, "build_steps", lambda *a: steps)
    assert cli_demo.run(_args(tmp_path / "out")) == 0
    assert all((tmp_path / f"m{k}").exists() for k in range(3)) and (tmp_path / "after").exists()
    spans = [tuple(map(float, (tmp_path / f"m{k}").read_text().split())) for k in range(3)]
    # run together: every step started before any finished (timing-independent, so a loaded machine passes)
    assert max(s for s, _ in spans) < min(e for _, e in spans), f"group steps did not overlap: {spans}"
    state = json.loads((tmp_path / "out" / "demo_state.json").read_text())
    assert all(state[f"s{k}"]["ok"] and state[f"s{k}"]["parallel"] for k in range(3)) and state["after"]["ok"]
    assert (tmp_path / "out" / "logs" / "s0.log").is_file()
    for k in range(3):
        (tmp_path / f"m{k}").unlink()
    assert cli_demo.run(_args(tmp_path / "out")) == 0       # everything done earlier: nothing re-runs
    assert not any((tmp_path / f"m{k}").exists() for k in range(3))


def test_a_failing_group_member_keeps_the_others_done(tmp_path, monkeypatch):
    steps = [_sleep_step("ok", tmp_path / "ok", 0.2), _sleep_step("bad", tmp_path / "bad", 0.2, rc=3),
             _sleep_step("later", tmp_path / "later", 0.0, group=None)]
    monkeypatch.setattr(cli_demo, "build_steps", lambda *a: steps)
    with pytest.raises(CommandError, match=r"'bad' \(exit 3"):
        cli_demo.run(_args(tmp_path / "out"))
    state = json.loads((tmp_path / "out" / "demo_state.json").read_text())
    assert state["ok"]["ok"] and "bad" not in state and not (tmp_path / "later").exists()
    (tmp_path / "ok").unlink()
    steps[1] = _sleep_step("bad", tmp_path / "bad", 0.0)  # the cause fixed: only 'bad' and 'later' run
    assert cli_demo.run(_args(tmp_path / "out")) == 0
    assert not (tmp_path / "ok").exists() and (tmp_path / "later").exists()


def test_full_demo_synthesises_the_three_datasets_in_one_parallel_group(tmp_path):
    steps = cli_demo.build_steps(tmp_path, quick=True, clips=2, seed=0)
    groups = [s.parallel_group for s in steps if s.name.startswith("synthesise")]
    assert groups == ["synthesise"] * 3
    assert all(s.parallel_group is None for s in steps if not s.name.startswith("synthesise"))


def test_parallel_group_prints_a_heartbeat_while_it_runs(tmp_path, monkeypatch, capsys):
    """The group's own output goes to log files, so the runner says what is still running, with each
    step's latest progress line from its log."""
    monkeypatch.setattr(cli_demo, "HEARTBEAT_S", 0.3)
    code = "import time; print('[render] 1/2 clips', flush=True); time.sleep(1.5)"
    steps = [Step("slow", [sys.executable, "-c", code], "nothing", parallel_group="g"),
             _sleep_step("fast", tmp_path / "fast", 0.1)]
    monkeypatch.setattr(cli_demo, "build_steps", lambda *a: steps)
    assert cli_demo.run(_args(tmp_path / "out")) == 0
    lines = capsys.readouterr().out.splitlines()
    beats = [i for i, line in enumerate(lines) if "still running:" in line]
    assert beats
    last = lines[beats[-1] + 1].strip()
    assert last == "slow: [render] 1/2 clips"          # the running step with its progress, brackets kept
    assert not lines[beats[-1] + 2].strip().startswith("fast")  # a finished step is no longer named


def test_render_progress_lines_for_a_log(capsys):
    """Redirected to a log (as `deft demo` does), a render prints k/N lines instead of a silent bar."""
    import io

    from pipelines.synth.generate import _progress

    buf = io.StringIO()
    with _progress("lines", "ego4d: rendering", 20, stream=buf) as advance:
        for _ in range(20):
            advance()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 10 and lines[0].startswith("ego4d: rendering 2/20 clips,") and "20/20 clips" in lines[-1]
    with pytest.raises(ValueError, match="progress must be"):
        _progress("loud", "x", 1)
    with _progress(False, "x", 1) as advance:
        advance()


def test_full_demo_fine_tunes_and_evaluates_every_demo_task(tmp_path):
    from robot.tasks import get_task_definition

    steps = cli_demo.build_steps(tmp_path, quick=False, clips=2, seed=0)
    tuned = {s.argv[s.argv.index("--task") + 1] for s in steps if "finetune" in s.argv}
    assert tuned == set(cli_demo.DEMO_TASKS) and len(cli_demo.DEMO_TASKS) >= 5
    for task in cli_demo.DEMO_TASKS:
        get_task_definition(task)  # a real task of the simulator
        evals = [s for s in steps if "eval" in s.argv and s.argv[s.argv.index("--task") + 1] == task]
        assert {s.argv[s.argv.index("--policy") + 1] for s in evals} == {"deft", "affordance", "real-world-only"}


def test_the_finished_demo_prints_table_2(tmp_path, monkeypatch, capsys):
    """The demo ends with Table 2 from the report ``deft-robot report`` wrote (the real writer, on
    evaluation files of two tasks), in columns that fit an 80-character terminal, with the verdict and
    the report's reasons; no report → no table and no crash."""
    from rich.console import Console

    from robot.reporting import write_report
    from tests.robot_ft.test_eval_report import _fake_run

    runs, out = tmp_path / "runs", tmp_path / "out"
    for task, deft in (("pick_cup", ((8, 10), (9, 10))), ("open_drawer", ((9, 10), (6, 10)))):
        _fake_run(runs, task, "affordance", "affordance", evals={
            ("affordance", "train"): (6, 10), ("affordance", "test"): (5, 10),
            ("deft", "train"): deft[0], ("deft", "test"): deft[1]})
        _fake_run(runs, task, "real-world-only", "real-world-only", evals={
            ("real-world-only", "train"): (9 if task == "open_drawer" else 0, 10), ("real-world-only", "test"): (1, 10)})
    write_report(runs, out / "reports" / "sim")
    monkeypatch.setattr(cli_demo, "build_steps", lambda *a: [_sleep_step("only", tmp_path / "m", 0.0, group=None)])
    assert cli_demo.run(_args(out)) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    cup = next(ln for ln in lines if ln.strip().startswith("pick_cup"))
    assert cup.split()[1:] == ["6/10,", "5/10", "0/10,", "1/10", "8/10,", "9/10", "yes"]
    drawer = next(ln for ln in lines if ln.strip().startswith("open_drawer"))
    assert drawer.split()[-2:] == ["no:", "train"]                     # ties real-world only's 9/10
    assert "holds on 2 of 2" not in printed and "holds on 1 of 2 task(s): pick_cup" in " ".join(printed.split())
    assert "open_drawer: train: DEFT ties Real-world only at 9/10" in " ".join(printed.split())
    assert max(len(ln) for ln in lines) <= 80
    assert cli_demo.table2_terminal(tmp_path / "missing.json") is None


def test_the_demo_prints_the_pooled_table_2_of_several_seeds(tmp_path):
    from rich.console import Console

    from robot.reporting import write_report
    from tests.robot_ft.test_eval_report import _table2_root

    _table2_root(tmp_path / "runs", {"pick_cup": ((6, 6), (1, 0), (8, 7)), "pick_grape": ((0, 0), (0, 0), (10, 10))})
    _table2_root(tmp_path / "runs_seed1", {"pick_cup": ((6, 6), (0, 0), (5, 7)), "pick_grape": ((0, 0), (0, 0), (10, 10))})
    write_report([tmp_path / "runs", tmp_path / "runs_seed1"], tmp_path / "sim")
    console = Console(width=80, record=True)
    for part in cli_demo.table2_terminal(tmp_path / "sim" / "report.json"):
        console.print(part)
    text = " ".join(console.export_text().split())
    # the verdict's significance is the across-runs test, not the pooled trials': pick grape's 20 scenes won
    # and none lost are p < 0.001 as trials, but two runs cannot go below p = 0.25
    assert "pick_cup 12/20, 12/20 1/20, 0/20 13/20, 14/20 yes pick_grape 0/20, 0/20 0/20, 0/20 20/20, 20/20 yes The" in text
    assert "holds on the cells pooled over 2 seeds (in each seed alone: 2, 1) on 2 of 2 task(s): pick_cup, pick_grape" in text


def test_seeds_repeat_the_robot_stage_and_the_report_pools_them(tmp_path):
    """--seeds 3: seed 0 keeps the single-seed commands (so a finished demo resumes into more seeds without
    redoing them), seeds 1 and 2 fine-tune and distil with their own run seed into runs_seed<s>/, the seeds'
    copies of each step run together, and one report, always re-run, pools the three roots."""
    one = cli_demo.build_steps(tmp_path, quick=False, clips=2, seed=0)
    three = cli_demo.build_steps(tmp_path, quick=False, clips=2, seed=0, seeds=3)
    robot_one = [s for s in one if "deft-robot" in s.argv[0] and "report" not in s.argv]
    before_robot = len(one) - 1 - len(robot_one)
    assert [(s.name, s.argv) for s in three[:before_robot]] == [(s.name, s.argv) for s in one[:before_robot]]
    seed0 = {s.name: s.argv for s in three}
    assert all(seed0[s.name] == s.argv for s in one[:-1])           # seed 0: the single-seed commands
    assert len(three) == len(one) + 2 * len(robot_one)
    assert len({s.name for s in three}) == len(three)                     # completed-step records are by name
    for seed in (1, 2):
        mine = [s for s in three if s.name.endswith(f"(seed {seed})")]
        assert len(mine) == len(robot_one)
        for s in mine:
            assert s.argv[s.argv.index("--out") + 1] == str(tmp_path / f"runs_seed{seed}")
            if s.argv[1] in ("finetune", "distill"):
                assert s.argv[s.argv.index("--seed") + 1] == str(seed)
            else:                                                       # eval: the same scenes in every root
                assert "--seed" not in s.argv and "--eval-seed" not in s.argv
    # the seeds' copies of a step form one parallel group, in step order: k of every seed, then k + 1
    robot_three = three[len(one) - 1 - len(robot_one):-1]
    groups = [s.parallel_group for s in robot_three]
    assert all(groups[3 * k:3 * k + 3] == [groups[3 * k]] * 3 for k in range(len(robot_one)))
    assert len(set(groups)) == len(robot_one)
    assert [s.name for s in robot_three[:3]] == [robot_one[0].name, robot_one[0].name + " (seed 1)", robot_one[0].name + " (seed 2)"]
    assert all(s.parallel_group is None for s in robot_one)
    # "Where to look" lists seed 0's steps and the pooled report, whose line names the other seeds' runs
    assert [s.name for s in three if s.listed] == [s.name for s in one[:-1]] + [three[-1].name]
    assert "runs_seed<s>/" in three[-1].produces
    report = three[-1]
    assert report.always and one[-1].always and report.name == "report pooled over 3 seeds (Table 2)"
    roots = report.argv[report.argv.index("--runs") + 1:report.argv.index("--out")]
    assert roots == [str(tmp_path / "runs"), str(tmp_path / "runs_seed1"), str(tmp_path / "runs_seed2")]


def test_table3_adds_the_policy_ablations_of_table_3s_tasks_in_every_seed(tmp_path):
    """--table3: each of Table 3's policy ablations is distilled from the DEFT run of pour cup, open drawer
    and pick spoon and evaluated like DEFT, before the report and in every seed; without it nothing changes."""
    plain = cli_demo.build_steps(tmp_path, quick=False, clips=2, seed=0, seeds=2)
    t3 = cli_demo.build_steps(tmp_path, quick=False, clips=2, seed=0, seeds=2, table3=True)
    added = [s for s in t3[:-1] if s.name not in {p.name for p in plain}]
    assert len(added) == 2 * 3 * 2 * len(cli_demo.TABLE3_KINDS) and len(t3) == len(plain) + len(added)
    assert t3[-1].argv == plain[-1].argv and t3[-1].name == "report pooled over 2 seeds (Table 2, 3a)"
    for seed, runs, tag in ((0, tmp_path / "runs", ""), (1, tmp_path / "runs_seed1", " (seed 1)")):
        mine = [s for s in added if s.name.endswith(tag) and (seed or "(seed" not in s.name)]
        assert {s.argv[s.argv.index("--task") + 1] for s in mine} == set(cli_demo.TABLE3_TASKS)
        distil = {(s.argv[s.argv.index("--task") + 1], s.argv[s.argv.index("--kind") + 1]) for s in mine if s.argv[1] == "distill"}
        evals = {(s.argv[s.argv.index("--task") + 1], s.argv[s.argv.index("--policy") + 1]) for s in mine if s.argv[1] == "eval"}
        assert distil == evals == {(t, k) for t in cli_demo.TABLE3_TASKS for k in cli_demo.TABLE3_KINDS}
        assert all(s.argv[s.argv.index("--out") + 1] == str(runs) and s.argv[s.argv.index("--prior") + 1] == "affordance"
                   for s in mine)
        assert all(("--seed" in s.argv) == (seed == 1 and s.argv[1] == "distill") for s in mine)
        assert all("--trials" in s.argv and "both" in s.argv for s in mine if s.argv[1] == "eval")
    quick = cli_demo.build_steps(tmp_path, quick=True, clips=2, seed=0, table3=True)   # the quick demo's one task
    assert {s.argv[s.argv.index("--task") + 1] for s in quick if "Table 3" in s.name} == {cli_demo.DEMO_TASKS[0]}
    # each ablation is distilled after its task's fine-tuning and evaluated after its distillation
    names = [s.name for s in t3]
    for task in cli_demo.TABLE3_TASKS:
        for tag in ("", " (seed 1)"):
            ft = names.index(f"{task}: fine-tune from the affordance model (Algorithm 1){tag}")
            for kind in cli_demo.TABLE3_KINDS:
                assert ft < names.index(f"{task}: distil Table 3's {kind} policy{tag}") < \
                    names.index(f"{task}: evaluate the {kind} policy{tag}") < len(names) - 1


def test_an_always_step_runs_again_when_the_demo_resumes(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"

    def append(name, marker, **kw):
        return Step(name, [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x')"], f"{name} output", **kw)

    steps = [append("work", tmp_path / "w"), append("copy", tmp_path / "c", listed=False),
             append("summary", tmp_path / "n", always=True)]
    monkeypatch.setattr(cli_demo, "build_steps", lambda *a: steps)
    assert cli_demo.run(_args(out)) == 0 and cli_demo.run(_args(out)) == 0
    assert (tmp_path / "w").read_text() == "x" and (tmp_path / "n").read_text() == "xx"
    where = capsys.readouterr().out.rsplit("Where to look", 1)[1]
    assert "work output" in where and "summary output" in where and "copy output" not in where


def test_seeds_below_one_are_refused(tmp_path):
    args = argparse.Namespace(out=str(tmp_path / "out"), quick=True, clips=None, seed=0, seeds=0, table3=False, restart=False, list=True)
    with pytest.raises(CommandError, match="--seeds must be at least 1, got 0"):
        cli_demo.run(args)


@pytest.mark.parametrize("clips", [0, -3])
def test_clips_below_one_is_refused_not_the_full_demo(tmp_path, monkeypatch, clips):
    """--clips 0 is a mistake, not "unset": it must not fall back to the full 100-clip demo."""
    seen = []
    monkeypatch.setattr(cli_demo, "build_steps", lambda out, quick, n, seed, seeds, table3: seen.append(n) or [])
    args = argparse.Namespace(out=str(tmp_path / "out"), quick=False, clips=clips, seed=0, seeds=1, table3=False, restart=False, list=True)
    with pytest.raises(CommandError, match=f"--clips must be at least 1, got {clips}"):
        cli_demo.run(args)
    assert seen == []
    assert cli_demo.run(argparse.Namespace(**{**vars(args), "clips": None})) == 0 and seen == [100]  # None: the default


def test_a_demo_with_other_data_removes_the_earlier_demos_derived_outputs(tmp_path, monkeypatch, capsys):
    """--quick then the full demo (or another --seed) in the same folder: the earlier shards, model, runs and
    reports are made from other data and would be resumed or skipped against the new data, so they go
    (the renders are overwritten by the synthesis steps); the same demo again keeps everything."""
    out = tmp_path / "out"
    monkeypatch.setattr(cli_demo, "build_steps", lambda *a: [_sleep_step("only", tmp_path / "m", 0.0, group=None)])
    assert cli_demo.run(_args(out)) == 0
    for d in ("shards/ego4d", "affordance/model", "runs/pick_cup", "runs_seed1", "reports", "synth/ego4d", "logs"):
        (out / d).mkdir(parents=True, exist_ok=True)
    assert cli_demo.run(_args(out)) == 0              # the same demo: nothing removed
    assert (out / "shards" / "ego4d").is_dir() and (out / "runs_seed1").is_dir()
    other = _args(out)
    other.seed = 3
    capsys.readouterr()
    assert cli_demo.run(other) == 0
    said = capsys.readouterr().out
    said = " ".join(said.split())   # rich wraps long lines
    assert "used other data" in said and "shards/" in said
    assert not any((out / d).exists() for d in ("shards", "affordance", "runs", "runs_seed1", "reports"))
    assert (out / "synth" / "ego4d").is_dir()


def test_every_command_that_opens_an_affordance_run_names_the_model(tmp_path):
    """So that a demo folder moved elsewhere resumes: its runs record the model's old path, and each command
    that opens an affordance run passes the model's current folder (``--checkpoint``, checked by digest);
    the real-world-only baseline's commands use no model and get none."""
    steps = cli_demo.build_steps(tmp_path, quick=False, clips=2, seed=0, seeds=2, table3=True)
    model = None
    for s in steps:
        if s.argv[1] not in ("finetune", "eval"):
            continue
        affordance = ("--prior" not in s.argv or s.argv[s.argv.index("--prior") + 1] == "affordance") and \
            ("--policy" not in s.argv or s.argv[s.argv.index("--policy") + 1] != "real-world-only")
        assert ("--checkpoint" in s.argv) == affordance, s.name
        if affordance:
            model = model or s.argv[s.argv.index("--checkpoint") + 1]
            assert s.argv[s.argv.index("--checkpoint") + 1] == model
    assert model is not None
