"""deft-robot distill / eval / report on tiny runs: the toy environment for the whole chain, and
hand-written evaluation files whose numbers the report must reproduce cell by cell."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robot.cli import main
from robot.evaluation import TrialResult, eval_record, eval_seeds, evaluate, load_eval, summarise, zero_residual
from robot.reporting import collect, to_markdown, write_report
from robot.runs import RunDir, RunMeta, resolve_run, write_json

TOY = ["--task", "pick_cup", "--robot", "toy", "--size", "32x24", "--no-live"]


def test_eval_seeds_are_deterministic_distinct_and_skip_the_finetune_seeds():
    a = eval_seeds(7, 20)
    assert a == eval_seeds(7, 20) and len(set(a)) == 20 and a != eval_seeds(8, 20)
    b = eval_seeds(7, 20, exclude=a[:5])
    assert not set(b) & set(a[:5]) and b[:15] == a[5:]


def test_evaluate_paired_prior_vs_known_residual():
    from deft_core.finetune.toy_env import ToyEnv

    env = ToyEnv()
    seeds = eval_seeds(0, 4)
    prior = evaluate(env, zero_residual, seeds)
    best = evaluate(env, lambda obs, xi, trial: env.target, seeds)       # the known optimal residual
    assert [t.seed for t in prior] == seeds == [t.seed for t in best]
    assert all(t.reward == pytest.approx(1.0) and t.success for t in best)
    assert all(t.reward < 0.8 for t in prior)
    np.testing.assert_allclose(np.array(best[0].executed) - np.array(best[0].xi), env.target)
    s = summarise(best + prior)
    assert s["trials"] == 8 and s["successes"] == sum(t.success for t in best + prior)
    assert s["mean_reward"] == pytest.approx(np.mean([t.reward for t in best + prior]))
    with pytest.raises(ValueError, match="residual of shape"):
        evaluate(env, lambda obs, xi, trial: np.zeros(3), seeds)


def test_finetune_distill_eval_chain_on_the_toy_env(tmp_path, capsys):
    out = str(tmp_path)
    assert main(["finetune", *TOY, "--episodes", "4", "--warmup", "2", "--elites", "2", "--out", out]) == 0
    # eval before distillation: a clear error naming the command to run
    assert main(["eval", "--task", "pick_cup", "--policy", "deft", "--out", out, "--trials", "2"]) == 2
    assert "deft-robot distill --task pick_cup --kind deft" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["distill", "--task", "pick_cup", "--kind", "mean", "--out", out]) == 0
    # it says what the policy learned from (its top 10 of the 4 episodes), read back from the log
    from deft_core.finetune.episode_log import open_run
    from deft_core.finetune.policy_checkpoint import load_policy

    _, records = open_run(tmp_path / "pick_cup" / "toy" / "finetune")
    used = load_policy(tmp_path / "pick_cup" / "toy" / "policies" / "mean").training_summary["episodes"]
    wins = sum(r.success for r in records if r.episode in used)
    assert len(used) == 4 and f"learned from 4 episode(s), {wins} of them successful" in capsys.readouterr().out
    assert main(["distill", "--task", "pick_cup", "--kind", "deft", "--steps", "5", "--out", out]) == 0
    assert main(["eval", "--task", "pick_cup", "--policy", "mean", "--objects", "both", "--trials", "3", "--out", out]) == 0
    assert main(["eval", "--task", "pick_cup", "--policy", "affordance", "--trials", "3", "--out", out]) == 0
    rd = RunDir(tmp_path / "pick_cup" / "toy")
    doc = load_eval(rd.eval_path("mean", "train"))
    assert doc["trials"] == 3 and doc["successes"] == sum(t["success"] for t in doc["per_trial"])
    assert doc["mean_reward"] == pytest.approx(np.mean([t["reward"] for t in doc["per_trial"]]))
    # held out: no evaluation reset reuses a fine-tuning reset, and every policy meets the same scenes
    logged = {json.loads(line)["env_seed"] for line in (rd.finetune_dir / "episodes.jsonl").read_text().splitlines()}
    trial_seeds = [t["seed"] for t in doc["per_trial"]]
    assert not logged & set(trial_seeds) and doc["excluded_finetune_seeds"] == 4
    assert trial_seeds == [t["seed"] for t in load_eval(rd.eval_path("affordance", "train"))["per_trial"]]
    # the mean policy adds the top-2 mean residual to every prior
    residual = np.array(doc["per_trial"][0]["executed"]) - np.array(doc["per_trial"][0]["xi"])
    from deft_core.finetune.policy_checkpoint import load_policy

    policy = load_policy(rd.policy_dir("mean"))
    np.testing.assert_allclose(residual, policy.act(np.zeros((24, 32, 3), np.uint8), np.zeros(22)), atol=1e-5)
    assert rd.eval_path("mean", "test").is_file()


def test_distill_warns_when_the_policy_learns_mostly_failures():
    from types import SimpleNamespace

    from robot.cli_distill import training_note

    recs = [SimpleNamespace(episode=i, status="ok", success=i in (4, 30)) for i in range(1, 31)]
    recs.append(SimpleNamespace(episode=5, status="void", success=True))        # a voided attempt is not an episode
    lemon = training_note([4, 30, 23, 13, 19, 25, 29, 24, 12, 27], recs)         # the demo's squeeze_lemon elites
    assert lemon.startswith("learned from 10 episode(s), 2 of them successful; warning")
    assert "(2 of 30 fine-tuning episodes succeeded)" in lemon
    half = training_note([4, 30, 1, 2], recs)                                      # 2 of 4: no warning
    assert half == "learned from 4 episode(s), 2 of them successful"
    assert training_note(None, recs).startswith("learned from 30 episode(s), 2 of them")  # kinds fit on every episode
    assert training_note([], []) is None
    # the reward-conditioned transformer learns from every episode by design and is queried at the best reward
    rc = training_note(None, recs, reward_conditioned=True)
    assert rc == "learned from 30 episode(s), 2 of them successful, conditioned on the reward and queried at the best one"
    none = [SimpleNamespace(episode=i, status="ok", success=False) for i in range(1, 31)]
    assert "warning: no fine-tuning episode succeeded" in training_note(None, none, reward_conditioned=True)
    from deft_core.finetune.policies import make_policy

    assert make_policy("transformer").reward_conditioned and not make_policy("deft").reward_conditioned


def test_trajectory_argument_errors(tmp_path, capsys):
    """--trajectory is checked before anything runs: a file that is not a τ, a τ made for another task,
    and the toy environment (no arm) are refused with a one-line error; nothing is written."""
    from deft_core.trajectory import PostGraspTrajectory

    bad = tmp_path / "demo.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    pour = PostGraspTrajectory(np.zeros((40, 6)), task="pour_cup").save(tmp_path / "pour.npz")
    base = ["finetune", "--task", "pick_cup", "--prior", "oracle", "--out", str(tmp_path / "runs")]
    assert main([*base, "--trajectory", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "is not a post-grasp trajectory .npz" in err and "Traceback" not in err
    assert main([*base, "--trajectory", str(pour)]) == 2
    assert "was made for task 'pour_cup', not 'pick_cup'" in capsys.readouterr().err
    assert main(["finetune", *TOY, "--trajectory", str(pour), "--out", str(tmp_path / "runs")]) == 2
    assert "toy environment has no arm" in capsys.readouterr().err
    assert main(["run-episode", "--task", "pick_cup", "--params", "auto", "--trajectory", str(pour),
                 "--out", str(tmp_path / "ep")]) == 2
    assert "made for task 'pour_cup'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_runs_trajectory_travels_with_it(tmp_path):
    """The run keeps its own copy of τ under the digest its meta records; a changed copy is refused."""
    from deft_core.trajectory import PostGraspTrajectory
    from robot.runs import RunError

    tau = PostGraspTrajectory(np.linspace(0, 0.01, 240).reshape(40, 6), task="pick_cup")
    rd = RunDir(tmp_path / "pick_cup" / "affordance")
    meta = RunMeta(task="pick_cup", prior="affordance", reward="sim", trajectory=tau.digest())
    assert rd.load_trajectory(RunMeta(task="pick_cup", prior="affordance", reward="sim")) is None  # scripted τ
    rd.store_trajectory(tau)
    rd.write_or_check_meta(meta)
    np.testing.assert_array_equal(rd.load_trajectory(rd.read_meta()).deltas, tau.deltas)
    with pytest.raises(RunError, match="different run.*trajectory"):
        rd.write_or_check_meta(RunMeta(task="pick_cup", prior="affordance", reward="sim"))  # resume without τ
    PostGraspTrajectory(np.zeros((40, 6)), task="pick_cup").save(rd.trajectory_path)
    with pytest.raises(RunError, match="changed after fine-tuning"):
        rd.load_trajectory(meta)
    assert PostGraspTrajectory(np.zeros((40, 6))).digest() != tau.digest()


def test_damaged_inputs_give_one_line_errors(tmp_path, capsys):
    """A malformed line inside a fine-tuning log (distill, eval), a report with no runs (an earlier
    report survives), a checkpoint config that is JSON but not an object: exit 2, no traceback."""
    out = str(tmp_path / "runs")
    assert main(["finetune", *TOY, "--episodes", "3", "--warmup", "1", "--elites", "1", "--out", out]) == 0
    log = tmp_path / "runs" / "pick_cup" / "toy" / "finetune" / "episodes.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    capsys.readouterr()
    for cmd in (["distill", "--task", "pick_cup", "--kind", "mean", "--out", out],
                ["eval", "--task", "pick_cup", "--policy", "affordance", "--trials", "1", "--out", out]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert "malformed" in err and "damaged at that line" in err and "Traceback" not in err
    rep = tmp_path / "rep"
    _fake_run(tmp_path / "good", "pick_cup", "oracle", "oracle", evals={("deft", "train"): (3, 5)})
    assert main(["report", "--runs", str(tmp_path / "good"), "--out", str(rep), "--quiet"]) == 0
    before = (rep / "report.md").read_text()
    (tmp_path / "empty").mkdir()
    assert main(["report", "--runs", str(tmp_path / "empty"), "--out", str(rep)]) == 2
    assert "no runs under" in capsys.readouterr().err and (rep / "report.md").read_text() == before
    ck = tmp_path / "ck"
    ck.mkdir()
    from deft_core.affordance.checkpoint import REQUIRED_FILES, CheckpointError, read_config

    for name in REQUIRED_FILES:
        (ck / name).write_bytes(b"")
    (ck / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="not an object"):
        read_config(ck)
    # eval of a new 'affordance' run with that checkpoint: refused, and no run is left behind that would
    # refuse the corrected command ("was made with checkpoint ...")
    capsys.readouterr()
    assert main(["eval", "--task", "pick_cup", "--policy", "affordance", "--checkpoint", str(ck), "--trials", "1",
                 "--out", str(tmp_path / "ev")]) == 2
    assert "not an object" in capsys.readouterr().err
    assert not (tmp_path / "ev" / "pick_cup" / "affordance" / "run_meta.json").exists()
    pol = tmp_path / "runs" / "pick_cup" / "toy" / "policies" / "mean"
    pol.mkdir(parents=True)
    (pol / "model.safetensors").write_bytes(b"")
    (pol / "config.json").write_text('"deft"')
    from deft_core.finetune.policy_checkpoint import CheckpointError as PolicyCheckpointError, load_policy

    with pytest.raises(PolicyCheckpointError, match="not an object"):
        load_policy(pol)


def test_eval_of_a_damaged_distilled_policy_is_a_one_line_error_naming_the_fix(tmp_path, capsys):
    out = str(tmp_path / "runs")
    assert main(["finetune", *TOY, "--episodes", "3", "--warmup", "1", "--elites", "1", "--out", out]) == 0
    assert main(["distill", "--task", "pick_cup", "--kind", "mean", "--out", out]) == 0
    pol = tmp_path / "runs" / "pick_cup" / "toy" / "policies" / "mean"
    weights = (pol / "model.safetensors").read_bytes()
    cmd = ["eval", "--task", "pick_cup", "--policy", "mean", "--trials", "1", "--out", out]
    for damage, message in ((lambda: (pol / "model.safetensors").write_bytes(weights[:20]), "not a readable safetensors file"),
                            (lambda: (pol / "config.json").write_text('{"format": '), "is not valid JSON")):
        damage()
        capsys.readouterr()
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert message in err and "deft-robot distill --task pick_cup" in err and "--kind mean" in err
        assert "Traceback" not in err
    assert not (tmp_path / "runs" / "pick_cup" / "toy" / "eval" / "mean_train.json").exists()


def test_report_warns_when_deft_and_the_baseline_ran_different_trajectories(tmp_path):
    evals = {("affordance", "train"): (5, 10), ("affordance", "test"): (5, 10), ("deft", "train"): (8, 10),
             ("deft", "test"): (8, 10)}
    rd = RunDir(tmp_path / "pick_cup" / "affordance")
    rd.write_or_check_meta(RunMeta(task="pick_cup", prior="affordance", reward="sim", trajectory="0123456789abcdef"))
    _fake_run(tmp_path, "pick_cup", "affordance", "affordance", evals=evals, meta=False)
    _fake_run(tmp_path, "pick_cup", "real-world-only", "real-world-only",
              evals={("real-world-only", "train"): (0, 10), ("real-world-only", "test"): (0, 10)})
    report = collect(tmp_path)
    row = report["table2"][0]
    assert row["trajectory"] == "0123456789abcdef" and "different post-grasp trajectories" in row["warning"]
    assert "(τ 0123456789abcdef vs the scripted τ)" in to_markdown(report)
    _fake_run(tmp_path, "open_drawer", "affordance", "affordance", evals=evals)          # both scripted: no warning
    _fake_run(tmp_path, "open_drawer", "real-world-only", "real-world-only", evals={("real-world-only", "train"): (0, 10)})
    assert "warning" not in next(r for r in collect(tmp_path)["table2"] if r["task"] == "open_drawer")


def test_distill_refuses_an_unfinished_run(tmp_path, capsys):
    meta = RunMeta(task="pick_cup", prior="toy", reward="sim", robot="toy", episodes=30)
    RunDir(tmp_path / "pick_cup" / "toy").write_or_check_meta(meta)
    assert main(["distill", "--task", "pick_cup", "--out", str(tmp_path)]) == 2
    assert "run 'deft-robot finetune' for this run first" in capsys.readouterr().err


def test_eval_argument_errors(tmp_path, capsys):
    assert main(["eval", "--task", "pick_cup", "--policy", "deft", "--out", str(tmp_path)]) == 2
    assert "no fine-tuning run of 'pick_cup'" in capsys.readouterr().err
    # only a baseline and a custom-named test-split run: they are named, not reported as absent
    RunDir(tmp_path / "pick_cup" / "real-world-only").write_or_check_meta(RunMeta(task="pick_cup", prior="real-world-only", reward="sim"))
    RunDir(tmp_path / "pick_cup" / "mine").write_or_check_meta(RunMeta(task="pick_cup", prior="oracle", reward="sim", split="test"))
    assert main(["distill", "--task", "pick_cup", "--out", str(tmp_path)]) == 2
    assert "the runs there: mine, real-world-only — choose one with --prior NAME" in capsys.readouterr().err
    assert main(["eval", "--task", "pick_cup", "--policy", "deft", "--trials", "0", "--out", str(tmp_path)]) == 2
    assert "--trials must be >= 1" in capsys.readouterr().err
    assert main(["eval", "--task", "pick_cup", "--policy", "affordance", "--checkpoint", str(tmp_path),
                 "--out", str(tmp_path)]) == 2
    assert "not an exported affordance model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--task", "pick_cup", "--policy", "bogus"])


def _fake_run(root: Path, task: str, name: str, prior: str, reward: str = "sim", evals: dict | None = None,
              meta: bool = True, seed: int = 0, extra: dict | None = None) -> RunDir:
    """Evaluation files with ``evals[(policy, split)] = (successes, trials)`` in a run (and its meta unless
    ``meta`` is False: a run that ``deft-robot finetune`` already made)."""
    rd = RunDir(root / task / name)
    if meta:
        rd.write_or_check_meta(RunMeta(task=task, prior=prior, reward=reward, seed=seed, extra=extra or {}))
    for (policy, split), (succ, n) in (evals or {}).items():
        trials = [TrialResult(trial=i + 1, seed=i, success=i < succ, reward=1.0 if i < succ else 0.25, xi=[0.0] * 22,
                              executed=[0.0] * 22) for i in range(n)]
        write_json(rd.eval_path(policy, split), eval_record(task, policy, split, trials))
    return rd


def test_report_tables_show_the_numbers_on_disk_and_mark_missing_cells(tmp_path):
    _fake_run(tmp_path, "pick_cup", "oracle", "oracle", evals={
        ("affordance", "train"): (6, 10), ("affordance", "test"): (5, 10), ("deft", "train"): (9, 10),
        ("deft", "test"): (7, 10), ("mlp", "train"): (4, 10)})
    _fake_run(tmp_path, "pick_cup", "real-world-only", "real-world-only", evals={("real-world-only", "train"): (1, 10)})
    _fake_run(tmp_path, "pick_cup", "oracle-r3m", "oracle", reward="r3m", evals={("deft", "train"): (3, 5)})
    _fake_run(tmp_path, "open_drawer", "oracle", "oracle", evals={("deft", "test"): (2, 4)})
    report = collect(tmp_path)
    rows = {r["task"]: r for r in report["table2"]}
    cup = rows["pick_cup"]
    assert (cup["affordance_train"]["successes"], cup["affordance_test"]["successes"]) == (6, 5)
    assert cup["deft_train"]["success_rate"] == 0.9 and cup["deft_test"]["success_rate"] == 0.7
    assert cup["real-world-only_train"]["successes"] == 1 and cup["real-world-only_test"] is None
    assert cup["deft_train"]["mean_reward"] == pytest.approx(0.9 + 0.1 * 0.25)
    assert rows["open_drawer"]["deft_test"]["success_rate"] == 0.5 and rows["open_drawer"]["deft_train"] is None
    rewards = {(r["task"], r["reward"]): r for r in report["table3_reward"]}
    assert rewards[("pick_cup", "r3m")]["deft_train"]["successes"] == 3
    assert rewards[("pick_cup", "sim")]["deft_train"]["successes"] == 9
    md = to_markdown(report)
    line = next(l for l in md.splitlines() if l.startswith("| pick_cup | oracle | 60 %"))
    assert line == "| pick_cup | oracle | 60 % (6/10) | 50 % (5/10) | 10 % (1/10) | missing | 90 % (9/10) | 70 % (7/10) | missing |"
    assert "| pick_cup | oracle | r3m | 60 % (3/5) | missing |" in md
    assert "40 % (4/10)" in md                                      # the mlp ablation cell
    # Table 3a: the mlp column (evaluated once) stays; kinds evaluated on no task are a line, not columns
    t3 = md[md.index("## Table 3a"):md.index("## Table 3b")]
    assert "| mlp (train) | mlp (test) |" in t3 and "transformer (train)" not in t3 and "mean (test)" not in t3
    assert "Not evaluated on any task: transformer, direct, mean." in t3 and "--kind all" in t3
    # only the tasks where an ablation was evaluated: open_drawer's row would repeat Table 2 with "missing" cells
    assert "| pick_cup |" in t3 and "| open_drawer |" not in t3
    # missing: Table 2 6 (cup: rwo test; drawer: all five but deft test), Table 3a 1 (cup: mlp test; the drawer
    # row is not shown), Table 3b 2 (drawer train, r3m test)
    assert "9 cell(s) missing." in md
    files = write_report(tmp_path, tmp_path / "rep")
    assert json.loads(files["json"].read_text())["table2"][1]["deft_train"]["successes"] == 9
    assert files["png"] is None                                     # no fine-tuning logs: no curves


def test_report_cli_writes_curves_from_logs(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["finetune", *TOY, "--episodes", "3", "--warmup", "1", "--elites", "1", "--out", str(runs)]) == 0
    assert main(["report", "--runs", str(runs), "--out", str(tmp_path / "rep"), "--quiet"]) == 0
    assert (tmp_path / "rep" / "improvement_curves.png").stat().st_size > 1000
    curve = json.loads((tmp_path / "rep" / "report.json").read_text())["curves"]["pick_cup"]["runs"][0]
    assert curve["episode"] == [1, 2, 3] and len(curve["reward"]) == 3
    assert main(["report", "--runs", str(tmp_path / "empty"), "--out", str(tmp_path / "rep2")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_resolve_run_is_explicit_about_ambiguity(tmp_path):
    _fake_run(tmp_path, "pick_cup", "oracle", "oracle")
    _fake_run(tmp_path, "pick_cup", "real-world-only", "real-world-only")
    assert resolve_run(tmp_path, "pick_cup").path.name == "oracle"          # the only main run
    _fake_run(tmp_path, "pick_cup", "oracle-seed1", "oracle")
    with pytest.raises(ValueError, match="several runs of 'pick_cup'"):
        resolve_run(tmp_path, "pick_cup")
    with pytest.raises(ValueError, match="not 'open_drawer'"):
        resolve_run(tmp_path, "open_drawer", run=str(tmp_path / "pick_cup" / "oracle"))


def test_report_judges_table2_pattern_per_task_with_a_significance_test(tmp_path):
    """DEFT must be strictly above the better baseline on both splits; ties and one-split wins do not count;
    the p-value is one-sided, the larger against either baseline (exact McNemar here: the fake runs share trial seeds)."""
    def task(name, aff, rwo, deft):
        _fake_run(tmp_path, name, "affordance", "affordance", evals={
            ("affordance", "train"): (aff[0], 10), ("affordance", "test"): (aff[1], 10),
            ("deft", "train"): (deft[0], 10), ("deft", "test"): (deft[1], 10)})
        _fake_run(tmp_path, name, "real-world-only", "real-world-only", evals={
            ("real-world-only", "train"): (rwo[0], 10), ("real-world-only", "test"): (rwo[1], 10)})
    task("pick_cup", (2, 1), (0, 0), (9, 8))      # holds, significant
    task("pour_cup", (3, 2), (1, 1), (5, 3))      # holds, not significant
    task("open_drawer", (5, 5), (1, 0), (9, 5))   # tie on test: does not hold
    task("pick_grape", (1, 1), (4, 0), (3, 6))    # below real-world-only on train
    report = collect(tmp_path)
    pats = {r["task"]: r["pattern"] for r in report["table2"]}
    assert pats["pick_cup"]["holds"] and pats["pick_cup"]["significant"]
    # 9/10 vs 2/10 on the same seeds: 7 scenes won, none lost -> exact McNemar p = 0.5 ** 7
    assert pats["pick_cup"]["train"]["test"] == "mcnemar" and pats["pick_cup"]["train"]["p"] == pytest.approx(0.5 ** 7)
    assert pats["pour_cup"]["holds"] and not pats["pour_cup"]["significant"]
    assert not pats["open_drawer"]["holds"] and pats["open_drawer"]["train"]["above"] and not pats["open_drawer"]["test"]["above"]
    assert not pats["pick_grape"]["holds"] and not pats["pick_grape"]["train"]["above"]
    assert report["table2_summary"] == {"tasks": 4, "holds": ["pick_cup", "pour_cup"], "significant": ["pick_cup"]}
    why = {r["task"]: r["why_not"] for r in report["table2"]}
    assert why["pick_cup"] == [] and why["pour_cup"] == []
    assert why["open_drawer"][0] == "test: DEFT ties Affordance model only at 5/10" and len(why["open_drawer"]) == 2
    assert "does not carry over" in why["open_drawer"][1]
    assert why["pick_grape"] == ["train: DEFT 3/10 below Real-world only 4/10"]   # the prior is not what it lost to
    md = to_markdown(report)
    assert "- **open_drawer** (affordance prior): test: DEFT ties Affordance model only at 5/10; above both" in md
    assert "holds on **2 of 4** task(s)" in md and "significant on both splits" in md
    assert "| no (not on test) |" in md and "| no (not on train) |" in md and "| yes (p < 0.05 on both) |" in md


def test_pattern_falls_back_to_fisher_when_trials_are_not_paired():
    from robot.reporting import pattern

    def cell(k, seeds):
        return {"successes": k, "trials": 10, "success_rate": k / 10, "trial_outcomes": [(s, i < k) for i, s in enumerate(seeds)]}

    a, b = range(10), range(100, 110)
    row = {"deft_train": cell(9, a), "affordance_train": cell(2, b), "real-world-only_train": cell(0, b),
           "deft_test": cell(3, a), "affordance_test": cell(3, a), "real-world-only_test": cell(0, a)}
    p = pattern(row)
    assert p["train"]["test"] == "fisher" and p["train"]["p"] == pytest.approx(0.00274, abs=1e-4)
    assert p["test"] == {"above": False, "p": 1.0, "test": "mcnemar"}  # identical outcomes: nothing discordant
    assert not p["holds"] and not p["significant"]


def test_report_explains_a_failed_pattern_from_the_finetuning_log(tmp_path):
    """The fine-tuning statistics come from the run's own episode log, and the reasons name a perfect
    baseline, a split where nothing succeeds, and how many distillation elites were failures."""
    runs = tmp_path / "runs"
    assert main(["finetune", *TOY, "--episodes", "4", "--warmup", "2", "--elites", "3", "--out", str(runs)]) == 0
    log = [json.loads(line) for line in (runs / "pick_cup" / "toy" / "finetune" / "episodes.jsonl").read_text().splitlines()]
    successes = sum(bool(r["success"]) for r in log if r["status"] == "ok")
    _fake_run(runs, "pick_cup", "toy", "toy", evals={("affordance", "train"): (10, 10), ("affordance", "test"): (0, 10),
                                                     ("deft", "train"): (10, 10), ("deft", "test"): (0, 10)}, meta=False)
    _fake_run(runs, "pick_cup", "real-world-only", "real-world-only", evals={
        ("real-world-only", "train"): (0, 10), ("real-world-only", "test"): (0, 10)})
    row = next(r for r in collect(runs)["table2"] if r["prior"] == "toy")
    ft = row["finetune"]
    assert (ft["episodes"], ft["successes"], ft["elites"]) == (4, successes, 3)
    top3 = sorted(range(4), key=lambda i: -log[i]["reward"])[:3]            # before distillation: the top E
    assert ft["successful_elites"] == sum(bool(log[i]["success"]) for i in top3) and ft["controller_errors"] == 0
    rewards = [r["reward"] for r in log]
    assert ft["mean_reward_first10"] == pytest.approx(np.mean(rewards)) == ft["mean_reward_last10"]
    assert row["finetune_rwo"] is None                               # the fake baseline run has no log
    why = row["why_not"]
    assert why[:2] == ["train: Affordance model only is already 10/10, nothing to be strictly above",
                       "test: nothing succeeds (0/10 for every method)"]
    if successes == 0:
        assert why[2] == "no fine-tuning episode succeeded: CEM had no success to move towards and the policy was distilled from failures"
    elif successes < 3:
        assert why[2].endswith(f"{3 - successes} of the 3 episodes the policy is distilled from are failures")
    else:
        assert len(why) == 2
    md = to_markdown(collect(runs))
    assert "## Fine-tuning (Algorithm 1) per run" in md
    assert f"| pick_cup | toy | {successes}/4 | 0 |" in md
    # after distillation: the episodes the DEFT checkpoint was trained on
    assert main(["distill", "--task", "pick_cup", "--kind", "deft", "--steps", "5", "--out", str(runs)]) == 0
    used = json.loads((runs / "pick_cup" / "toy" / "policies" / "deft" / "config.json").read_text())["training_data"]["episodes"]
    ft = next(r for r in collect(runs)["table2"] if r["prior"] == "toy")["finetune"]
    assert ft["elites"] == len(used) and ft["successful_elites"] == sum(bool(log[e - 1]["success"]) for e in used)


# ------------------------------------------------------------------ resuming an interrupted evaluation

def _toy_run_with_policy(tmp_path) -> tuple[str, RunDir]:
    out = str(tmp_path / "runs")
    assert main(["finetune", *TOY, "--episodes", "3", "--warmup", "1", "--elites", "2", "--out", out]) == 0
    assert main(["distill", "--task", "pick_cup", "--kind", "deft", "--steps", "3", "--out", out]) == 0
    return out, RunDir(tmp_path / "runs" / "pick_cup" / "toy")


def _count_executions(monkeypatch, interrupt_at: int | None = None) -> list:
    """Count ToyEnv.execute calls; raise KeyboardInterrupt (Ctrl-C) on call ``interrupt_at``."""
    from deft_core.finetune.toy_env import ToyEnv

    calls, execute = [], ToyEnv.execute

    def counted(self, grasp):
        calls.append(self.current[0])
        if interrupt_at is not None and len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return execute(self, grasp)

    monkeypatch.setattr(ToyEnv, "execute", counted)
    return calls


def _without_wall_times(doc: dict) -> dict:
    doc = {k: v for k, v in doc.items() if k != "wall_s"}
    doc["per_trial"] = [{k: v for k, v in t.items() if k != "wall_s"} for t in doc["per_trial"]]
    return doc


def test_an_interrupted_eval_resumes_without_rerunning_finished_trials(tmp_path, capsys, monkeypatch):
    """Ctrl-C at trial 3 of 5 keeps trials 1-2 in the partial log; re-running the same command runs only
    trials 3-5 and writes the same result as an uninterrupted run, then deletes the partial log."""
    out, rd = _toy_run_with_policy(tmp_path)
    cmd = ["eval", "--task", "pick_cup", "--policy", "deft", "--trials", "5", "--out", out]
    final = rd.eval_path("deft", "train")
    partial = final.with_name("deft_train.partial.jsonl")
    with monkeypatch.context() as m:
        calls = _count_executions(m)
        assert main(cmd) == 0
    assert calls == [1, 2, 3, 4, 5] and not partial.exists()
    uninterrupted = json.loads(final.read_text())
    final.unlink()
    capsys.readouterr()
    with monkeypatch.context() as m:
        _count_executions(m, interrupt_at=3)
        assert main(cmd) == 130
    err = capsys.readouterr().err
    assert f"the 2 finished trial(s) of 5 are kept in {partial}; re-run the same command to resume from trial 3" in err
    assert not final.exists() and len(partial.read_text().splitlines()) == 2
    # the report says the cell is an evaluation stopped part-way, not just 'missing'
    assert main(["report", "--runs", out, "--out", str(tmp_path / "rep"), "--quiet"]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Evaluations stopped part-way" in md and "DEFT on train objects, 2 of 5 trials" in md
    with monkeypatch.context() as m:
        calls = _count_executions(m)
        assert main(cmd) == 0
    assert calls == [3, 4, 5]                                   # trials 1 and 2 were not run again
    assert "resuming after trial 2/5" in capsys.readouterr().out
    resumed = json.loads(final.read_text())
    assert _without_wall_times(resumed) == _without_wall_times(uninterrupted)
    assert [t["trial"] for t in resumed["per_trial"]] == [1, 2, 3, 4, 5]
    assert not partial.exists()


def test_an_eval_of_both_splits_interrupted_in_the_test_split_does_not_rerun_the_train_split(tmp_path, capsys, monkeypatch):
    """--objects both, Ctrl-C at test trial 2 of 3: the re-run reads the finished train split back from its
    partial log (no train trial runs again), resumes the test split at trial 2, writes both results equal
    to an uninterrupted run's, and only then deletes both partial logs."""
    out, rd = _toy_run_with_policy(tmp_path)
    cmd = ["eval", "--task", "pick_cup", "--policy", "deft", "--objects", "both", "--trials", "3", "--out", out]
    finals = {o: rd.eval_path("deft", o) for o in ("train", "test")}
    partials = {o: f.with_name(f"deft_{o}.partial.jsonl") for o, f in finals.items()}
    with monkeypatch.context() as m:
        calls = _count_executions(m)
        assert main(cmd) == 0
    assert len(calls) == 6 and not any(p.exists() for p in partials.values())
    uninterrupted = {o: json.loads(f.read_text()) for o, f in finals.items()}
    for f in finals.values():
        f.unlink()
    with monkeypatch.context() as m:
        _count_executions(m, interrupt_at=5)          # 3 train trials, then test trial 2
        assert main(cmd) == 130
    assert finals["train"].exists() and not finals["test"].exists()
    assert len(partials["train"].read_text().splitlines()) == 3 and len(partials["test"].read_text().splitlines()) == 1
    capsys.readouterr()
    with monkeypatch.context() as m:
        calls = _count_executions(m)
        assert main(cmd) == 0
    assert len(calls) == 2                             # test trials 2 and 3 only
    printed = capsys.readouterr().out
    assert "[train]: resuming after trial 3/3" in printed and "[test]: resuming after trial 1/3" in printed
    for o, f in finals.items():
        assert _without_wall_times(json.loads(f.read_text())) == _without_wall_times(uninterrupted[o]), o
    assert not any(p.exists() for p in partials.values())


def test_a_partial_eval_of_another_command_is_refused(tmp_path, capsys, monkeypatch):
    """Finished trials of --eval-seed 1000 (sampled latent, 4 trials) are never mixed into another
    evaluation: the error names each differing field, nothing runs, the partial log is kept."""
    out, rd = _toy_run_with_policy(tmp_path)
    cmd = ["eval", "--task", "pick_cup", "--policy", "deft", "--trials", "4", "--out", out]
    partial = rd.eval_path("deft", "train").with_name("deft_train.partial.jsonl")
    with monkeypatch.context() as m:
        _count_executions(m, interrupt_at=3)
        assert main(cmd) == 130
    before = partial.read_bytes()
    capsys.readouterr()
    for extra, why in ((["--eval-seed", "1001"], "eval_seed: log has 1000, this command has 1001"),
                       (["--zero-latent"], "latent: log has 'sampled', this command has 'zero'"),
                       (["--trials", "6"], "trials: log has 4, this command has 6")):
        with monkeypatch.context() as m:
            calls = _count_executions(m)
            assert main([*cmd, *extra]) == 2
        err = capsys.readouterr().err
        assert "holds finished trials of a different evaluation" in err and why in err, err
        assert "re-run with the same settings to resume it" in err and "Traceback" not in err
        assert calls == [] and partial.read_bytes() == before
    # a policy re-distilled into the same directory is a different policy
    assert main(["distill", "--task", "pick_cup", "--kind", "deft", "--steps", "4", "--out", out]) == 0
    capsys.readouterr()
    assert main(cmd) == 2
    assert "policy_digest: log has" in capsys.readouterr().err


def test_an_interrupted_eval_moved_with_its_run_resumes(tmp_path, capsys, monkeypatch):
    """The partial log names the policy's absolute path; after the whole runs folder moved, the same policy
    (same digest) at its new path resumes the evaluation instead of refusing it."""
    import shutil

    out, rd = _toy_run_with_policy(tmp_path)
    with monkeypatch.context() as m:
        _count_executions(m, interrupt_at=3)
        assert main(["eval", "--task", "pick_cup", "--policy", "deft", "--trials", "4", "--out", out]) == 130
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    partial = RunDir(moved / "pick_cup" / rd.path.name).eval_path("deft", "train").with_name("deft_train.partial.jsonl")
    assert str(Path(out).resolve()) in partial.read_text()
    capsys.readouterr()
    with monkeypatch.context() as m:
        calls = _count_executions(m)
        assert main(["eval", "--task", "pick_cup", "--policy", "deft", "--trials", "4", "--out", str(moved)]) == 0, \
            capsys.readouterr().err
    assert calls == [3, 4] and not partial.exists()


def test_a_torn_last_line_of_the_partial_eval_is_dropped(tmp_path, capsys, monkeypatch):
    """Killed while appending trial 3: the half-written line is dropped with a warning, trial 3 runs again,
    and the result equals an uninterrupted run's."""
    out = str(tmp_path / "runs")
    assert main(["finetune", *TOY, "--episodes", "3", "--warmup", "1", "--elites", "1", "--out", out]) == 0
    rd = RunDir(tmp_path / "runs" / "pick_cup" / "toy")
    cmd = ["eval", "--task", "pick_cup", "--policy", "affordance", "--trials", "4", "--out", out]
    final = rd.eval_path("affordance", "train")
    partial = final.with_name("affordance_train.partial.jsonl")
    assert main(cmd) == 0
    uninterrupted = json.loads(final.read_text())
    final.unlink()
    with monkeypatch.context() as m:
        _count_executions(m, interrupt_at=4)
        assert main(cmd) == 130
    lines = partial.read_text().splitlines(keepends=True)
    assert len(lines) == 3
    partial.write_text(lines[0] + lines[1] + lines[2][: len(lines[2]) // 2])   # trial 3 torn mid-write
    capsys.readouterr()
    with monkeypatch.context() as m:
        calls = _count_executions(m)
        assert main(cmd) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "dropped a half-written last line" in err and "that trial will be run again" in err
    assert calls == [3, 4]
    assert _without_wall_times(json.loads(final.read_text())) == _without_wall_times(uninterrupted)
    assert not partial.exists()
    # a malformed line that is not the last one is damage, not a torn write: refused, naming the line
    with monkeypatch.context() as m:
        _count_executions(m, interrupt_at=4)
        assert main(cmd) == 130
    lines = partial.read_text().splitlines(keepends=True)
    partial.write_text(lines[0] + "{not json\n" + lines[1] + lines[2])
    capsys.readouterr()
    assert main(cmd) == 2
    assert f"{partial}:2: malformed trial record" in capsys.readouterr().err


def test_eval_on_the_lab_robot_resumes_after_stdin_closes(monkeypatch, capsys, tmp_path):
    """The operator's stdin closes after judging trial 1 of 3: the message says the finished trial is kept
    (not 'resume from the log'), and the re-run asks only trials 2 and 3."""
    import io

    from test_real_env import FAKE_YAML, write_yaml  # noqa: E402  (same directory, rootdir sys.path)

    monkeypatch.setattr("robot.executor.Clock.sleep", lambda self, s: None)
    box = "120 90 200 150"  # the fake camera's red object
    runs = str(tmp_path / "runs")
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f"\n\n{box}\n0.5\n" for _ in range(3))))
    assert main(["finetune", "--task", "pick_cup", "--prior", "real-world-only", "--robot",
                 str(write_yaml(tmp_path, FAKE_YAML)), "--segmenter", "operator", "--episodes", "3", "--warmup", "1",
                 "--elites", "1", "--out", runs]) == 0
    evaluate = ["eval", "--task", "pick_cup", "--policy", "affordance", "--prior", "real-world-only", "--out", runs,
                "--segmenter", "operator", "--trials", "3", "--objects", "train"]
    eval_dir = tmp_path / "runs" / "pick_cup" / "real-world-only" / "eval"
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(f"\n\n{box}\ny\n\n\n{box}\n"))   # closes before trial 2's outcome
    assert main(evaluate) == 2
    err = capsys.readouterr().err
    assert "standard input closed while waiting for the trial outcome" in err and "resume from the log" not in err
    assert (f"the 1 finished trial(s) of 3 are kept in {eval_dir / 'affordance_train.partial.jsonl'}; "
            "re-run the same command to resume from trial 2") in err
    monkeypatch.setattr("sys.stdin", io.StringIO(f"\n\n{box}\nn\n\n\n{box}\ny\n"))  # trials 2 and 3 only
    rc = main(evaluate)
    out = capsys.readouterr()
    assert rc == 0, out.err
    doc = json.loads((eval_dir / "affordance_train.json").read_text())
    assert [t["success"] for t in doc["per_trial"]] == [True, False, True] and doc["successes"] == 2
    assert not (eval_dir / "affordance_train.partial.jsonl").exists()


def test_pattern_p_value_is_the_larger_against_either_baseline():
    """The better baseline by success rate is not always the harder one to beat in a paired test: DEFT 7/10
    against affordance 4/10 (scenes DEFT also wins) has 3 scenes won, none lost (p = 0.5 ** 3), against
    real-world-only 3/10 (the other scenes) 7 won and 3 lost (p = 176/1024). "Significant" must hold
    against both, so p is the larger."""
    from robot.reporting import pattern

    def cell(seeds_won):
        return {"successes": len(seeds_won), "trials": 10, "success_rate": len(seeds_won) / 10,
                "trial_outcomes": [(s, s in seeds_won) for s in range(10)]}

    row = {}
    for split in ("train", "test"):
        row |= {f"deft_{split}": cell(set(range(7))), f"affordance_{split}": cell(set(range(4))),
                f"real-world-only_{split}": cell({7, 8, 9})}
    p = pattern(row)
    assert p["holds"] and p["train"]["test"] == "mcnemar"
    assert p["train"]["p"] == pytest.approx(176 / 1024) and p["test"]["p"] == pytest.approx(176 / 1024)
    assert not pattern(row, alpha=0.15)["significant"]  # against affordance alone (0.125) it would have been


# ------------------------------------------------------------------ Table 2 pooled over several runs roots

def _table2_root(root: Path, cells: dict, seed: int | None = None, extra: dict | None = None) -> None:
    """``cells[task] = (affordance, real-world-only, deft)``, each ``(train successes, test successes)`` of 10;
    the run seed defaults to one per root (the roots of a pooled report are runs of different --seed)."""
    seed = seed if seed is not None else _table2_root.seeds.setdefault(str(root), len(_table2_root.seeds))
    for task, (aff, rwo, deft) in cells.items():
        _fake_run(root, task, "affordance", "affordance", seed=seed, extra=extra, evals={
            ("affordance", "train"): (aff[0], 10), ("affordance", "test"): (aff[1], 10),
            ("deft", "train"): (deft[0], 10), ("deft", "test"): (deft[1], 10)})
        _fake_run(root, task, "real-world-only", "real-world-only", seed=seed, evals={
            ("real-world-only", "train"): (rwo[0], 10), ("real-world-only", "test"): (rwo[1], 10)})


_table2_root.seeds = {}


def test_report_pools_table2_over_several_runs_roots(tmp_path, capsys):
    """Cells sum over the roots, the pattern is judged on the pooled cells (paired trials stay paired),
    each root keeps its own report, and a column counts the roots in which the pattern held alone."""
    a, b = tmp_path / "runs", tmp_path / "runs_seed1"
    _table2_root(a, {"pick_cup": ((6, 6), (1, 0), (8, 7)), "pick_grape": ((7, 7), (0, 0), (10, 4))})
    _table2_root(b, {"pick_cup": ((6, 6), (0, 0), (5, 7)), "pick_grape": ((7, 7), (0, 0), (9, 9))})
    out = tmp_path / "rep"
    assert main(["report", "--runs", str(a), str(b), "--out", str(out), "--quiet"]) == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["pooled"] and doc["runs_roots"] == [str(a.resolve()), str(b.resolve())]
    rows = {r["task"]: r for r in doc["table2"]}
    cup, grape = rows["pick_cup"], rows["pick_grape"]
    assert (cup["deft_train"]["successes"], cup["deft_train"]["trials"], cup["deft_test"]["successes"]) == (13, 20, 14)
    assert (cup["affordance_train"]["successes"], cup["real-world-only_train"]["successes"]) == (12, 1)
    assert cup["holds_in_runs"] == 1 and cup["runs_pooled"] == 2
    assert cup["pattern"]["holds"] and cup["pattern"]["train"]["test"] == "mcnemar"
    # pooled train: the fake trials succeed in seed order, so DEFT wins 2 scenes in root a and loses 1 in b
    # vs affordance 2 scenes won, 1 lost: P(X >= 2 | 3, 1/2) = 1/2 (vs real-world-only 12 won, none lost)
    assert cup["pattern"]["train"]["p"] == pytest.approx(0.5)
    # across runs (one difference per root, exact sign flips): train vs affordance +0.2, -0.1 -> 2 of 4
    # assignments reach +0.1; test +0.1, +0.1 vs affordance and +0.7, +0.7 vs real-world-only -> 1 of 4
    assert (cup["pattern"]["train"]["p_runs"], cup["pattern"]["test"]["p_runs"]) == (0.5, 0.25)
    assert not cup["pattern"]["significant_across_runs"] and doc["table2_summary"]["significant_across_runs"] == []
    # holds in root b alone (9, 9 against 7, 7), not in a (test 4 < 7), and not pooled (test 13/20 < 14/20)
    assert (grape["deft_test"]["successes"], grape["holds_in_runs"]) == (13, 1) and not grape["pattern"]["holds"]
    assert grape["why_not"][0] == "test: DEFT 13/20 below Affordance model only 14/20"
    assert grape["why_not"][1].startswith("above both on the train objects fine-tuning practised on, not on the test")
    assert len(grape["why_not"]) == 2
    assert [len(p["table2_summary"]["holds"]) for p in doc["per_root"]] == [1, 1]
    assert doc["table2_summary"]["holds"] == ["pick_cup"]
    md = (out / "report.md").read_text()
    assert "| pick_cup | affordance | 60 % (12/20) | 60 % (12/20) | 5 % (1/20) | 0 % (0/20) | 65 % (13/20) | 70 % (14/20) |" in md
    assert "| 0.5, 0.25 | 1 of 2 |" in md and "cannot go below 0.5^n: 0.25 for all 2" in md and "holds on **1 of 2** task(s) (pick_cup)" in md and "in the roots alone on 1 of 2, 1 of 2" in md
    for i, root in enumerate((a, b), 1):                     # each root's own, unpooled report beside it
        own = json.loads((out / f"root{i}" / "report.json").read_text())
        assert own["runs_root"] == str(root.resolve()) and "pooled" not in own
        assert f"`{out / f'root{i}' / 'report.md'}`" in md
    assert (out / "improvement_curves.png").exists() is False  # fake runs have no logs
    with pytest.raises(ValueError, match="named twice"):
        write_report([a, a], tmp_path / "rep2")
    assert main(["report", "--runs", str(a), str(tmp_path / "none"), "--out", str(tmp_path / "rep3")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "rep3").exists()


def test_report_pools_table3a_over_the_roots_that_evaluated_each_policy(tmp_path):
    """Table 3a (policies distilled from the same run) pools like Table 2; a policy evaluated in some roots
    only is pooled over those and the report says how many."""
    a, b = tmp_path / "runs", tmp_path / "runs_seed1"
    _table2_root(a, {"pour_cup": ((5, 0), (0, 0), (7, 1))})
    _table2_root(b, {"pour_cup": ((5, 0), (0, 0), (6, 2))})
    _fake_run(a, "pour_cup", "affordance", "affordance", meta=False, evals={
        ("mlp", "train"): (4, 10), ("mlp", "test"): (1, 10), ("direct", "train"): (2, 10), ("direct", "test"): (0, 10)})
    _fake_run(b, "pour_cup", "affordance", "affordance", meta=False, evals={
        ("mlp", "train"): (3, 10), ("mlp", "test"): (2, 10)})
    res = write_report([a, b], tmp_path / "rep")
    (row,) = res["report"]["table3_policy"]
    assert (row["mlp_train"]["successes"], row["mlp_train"]["trials"], row["mlp_test"]["successes"]) == (7, 20, 3)
    assert (row["direct_train"]["successes"], row["direct_train"]["trials"], row["direct_roots"]) == (2, 10, 1)
    assert (row["deft_test"]["successes"], row["affordance_train"]["trials"], row["mlp_roots"]) == (3, 20, 2)
    assert row["transformer_train"] is None and row["transformer_roots"] == 0
    md = res["markdown"].read_text()
    assert "## Table 3a, pooled" in md and "| pour_cup | affordance | 50 % (10/20) | 0 % (0/20) | 65 % (13/20) |" in md
    assert "Not evaluated on any task: transformer, mean." in md
    assert "not all of them for pour_cup direct (1 of 2 roots)." in md
    c, d = tmp_path / "c", tmp_path / "d"                   # no ablation evaluated in any root: no pooled section
    _table2_root(c, {"pour_cup": ((5, 0), (0, 0), (7, 1))})
    _table2_root(d, {"pour_cup": ((5, 0), (0, 0), (6, 2))})
    assert "Table 3a" not in write_report([c, d], tmp_path / "rep2")["markdown"].read_text()


def test_the_across_runs_test_is_an_exact_sign_flip_test():
    from robot.reporting import _sign_flip_p

    assert _sign_flip_p([0.3, 0.1, 0.2]) == 1 / 8                      # only "all positive" reaches the sum
    assert _sign_flip_p([0.3, -0.1, 0.0]) == 0.5                        # a zero difference counts for nothing
    assert _sign_flip_p([-0.2, -0.1]) == 1.0
    assert _sign_flip_p([0.1] * 20) < 1e-4 and 0.4 < _sign_flip_p([0.1, -0.1] * 10) < 0.7   # sampled beyond 16


def test_pooling_leaves_out_a_root_whose_row_is_incomplete_and_names_it(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _table2_root(a, {"pick_cup": ((6, 6), (1, 0), (8, 7)), "pour_cup": ((5, 0), (0, 0), (7, 1))})
    _table2_root(b, {"pick_cup": ((6, 6), (0, 0), (9, 9))})                 # no pour_cup at all
    _table2_root(c, {"pick_cup": ((6, 6), (0, 0), (7, 7)), "pour_cup": ((5, 0), (0, 0), (6, 2))})
    (c / "pour_cup" / "affordance" / "eval" / "deft_test.json").unlink()   # a run cut before its last evaluation
    res = write_report([a, b, c], tmp_path / "rep")
    rows = {r["task"]: r for r in res["report"]["table2"]}
    assert rows["pick_cup"]["runs_pooled"] == 3 and rows["pick_cup"]["deft_train"]["successes"] == 24
    pour = rows["pour_cup"]
    assert pour["runs_pooled"] == 1 and pour["deft_train"]["successes"] == 7 and pour["pattern"]["holds"]
    assert pour["runs_left_out"] == [str(c / "pour_cup" / "affordance")]
    md = res["markdown"].read_text()
    assert f"Left out of **pour_cup** (affordance prior), evaluations incomplete: `{c / 'pour_cup' / 'affordance'}`." in md
    assert "in the roots alone on 2 of 2, 1 of 1, 1 of 1" in md          # root c judged pick_cup only
    assert {d.name for d in (tmp_path / "rep").iterdir() if d.is_dir()} == {"root1", "root2", "root3"}
    write_report([a, b], tmp_path / "rep")                                 # fewer roots: root3 goes
    assert {d.name for d in (tmp_path / "rep").iterdir() if d.is_dir()} == {"root1", "root2"}
    (tmp_path / "rep" / "root2" / "notes.txt").write_text("mine")          # a folder with a user's file stays
    write_report(a, tmp_path / "rep")
    assert {d.name for d in (tmp_path / "rep").iterdir() if d.is_dir()} == {"root2"}


def test_pooled_table2_counts_finetuning_over_the_roots(tmp_path):
    from robot.reporting import pool

    runs = tmp_path / "runs"
    assert main(["finetune", *TOY, "--episodes", "3", "--warmup", "1", "--elites", "2", "--out", str(runs)]) == 0
    runs2 = tmp_path / "runs_seed1"
    assert main(["finetune", *TOY, "--episodes", "3", "--warmup", "1", "--elites", "2", "--seed", "1", "--out", str(runs2)]) == 0
    reports = [collect(runs), collect(runs2)]
    pooled = pool(reports, [runs, runs2])
    (row,) = pooled["table2"]
    ft = row["finetune"]
    assert ft["episodes"] == 6 and ft["elites"] == 4
    assert ft["successes"] == sum(r["table2"][0]["finetune"]["successes"] for r in reports)
    assert row["deft_train"] is None and row["pattern"]["holds"] is False   # no evaluations: cells missing
    assert pooled["table2_summary"]["tasks"] == 0
    assert [len(c["runs"]) for c in pooled["curves"].values()] == [2]
    assert [c["root"] for c in pooled["curves"]["pick_cup"]["runs"]] == [1, 2]
    from robot.reporting import plot_curves

    png = plot_curves(pooled, tmp_path / "curves.png")                 # one mean line per label, each run thin
    assert png.stat().st_size > 1000


def test_curves_figure_wraps_its_panels_and_keeps_one_colour_per_label(tmp_path):
    """Seven tasks: two rows of at most four panels (the legend in the spare panel), not one 29-inch row;
    a label has the same colour in every panel, whatever order a task lists its runs in."""
    import matplotlib.image as mpimg

    from robot.reporting import curve_colours, plot_curves

    def curve(label):
        return {"label": label, "episode": list(range(1, 7)), "reward": [0, 1, 0, 1, 1, 1],
                "elite_mean": [0, 0.5, 0.3, 0.5, 0.6, 0.8], "warmup": 2}

    tasks = ["pick_cup", "pour_cup", "open_drawer", "pick_spoon", "stir_spoon", "pick_grape", "squeeze_lemon"]
    report = {"curves": {t: {"runs": [curve("real-world-only"), curve("DEFT (affordance prior)")] if i % 2 else
                             [curve("DEFT (affordance prior)"), curve("real-world-only")]} for i, t in enumerate(tasks)}}
    colours = curve_colours(report)
    assert colours["real-world-only"] == "tab:red" and colours["DEFT (affordance prior)"] not in ("tab:red", "C3")
    h, w = mpimg.imread(plot_curves(report, tmp_path / "seven.png")).shape[:2]
    assert (w, h) == (1680, 620)                          # 4 × 4.2 in by 2 × 3.1 in at 100 dpi
    four = {"curves": {t: report["curves"][t] for t in tasks[:4]}}
    h, w = mpimg.imread(plot_curves(four, tmp_path / "four.png")).shape[:2]
    assert w == 1680 and 310 + 30 < h < 310 + 100          # one full row, the legend in a strip below it
    one = {"curves": {"pick_cup": report["curves"]["pick_cup"]}}
    img = mpimg.imread(plot_curves(one, tmp_path / "one.png"))
    assert img.shape[1] == 420 and img.shape[0] > 310 + 60   # one panel: the legend stacked under it ...
    assert img[:, -2:, :3].min() > 0.99 and img[:, :2, :3].min() > 0.99   # ... and not cut off at the edges


def test_distill_chooses_the_image_encoder(tmp_path, capsys):
    """--encoder resnet18 [--encoder-weights FILE] and --freeze-encoder reach the policy's checkpoint (and
    the checkpoint evaluates); wrong combinations and a missing or unreadable weights file are one-line errors."""
    torchvision = pytest.importorskip("torchvision")
    from safetensors.torch import save_file

    from deft_core.finetune.policy_checkpoint import load_policy

    out = str(tmp_path / "runs")
    assert main(["finetune", *TOY, "--episodes", "4", "--warmup", "2", "--elites", "2", "--out", out]) == 0
    policy_dir = tmp_path / "runs" / "pick_cup" / "toy" / "policies" / "deft"
    base = ["distill", "--task", "pick_cup", "--kind", "deft", "--steps", "3", "--out", out]
    assert main([*base, "--freeze-encoder"]) == 0
    enc = load_policy(policy_dir).config.encoder
    assert (enc.kind, enc.trainable) == ("small_cnn", False)
    net = torchvision.models.resnet18(weights=None)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "r18.safetensors"))
    assert main([*base, "--encoder", "resnet18", "--encoder-weights", str(tmp_path / "r18.safetensors")]) == 0
    policy = load_policy(policy_dir)
    assert policy.config.encoder.kind == "resnet18"
    assert (policy.net.encoder.net.conv1.weight == net.conv1.weight).all()
    assert main(["eval", "--task", "pick_cup", "--policy", "deft", "--out", out, "--trials", "2"]) == 0
    capsys.readouterr()
    for extra, needle in ((["--encoder-weights", str(tmp_path / "r18.safetensors")], "is for --encoder resnet18"),
                          (["--encoder", "resnet18", "--freeze-encoder"], "is for --encoder small_cnn"),
                          (["--encoder", "resnet18", "--encoder-weights", str(tmp_path / "nope.safetensors")], "no such file")):
        assert main([*base, *extra]) == 2
        assert needle in capsys.readouterr().err
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    assert main([*base, "--encoder", "resnet18", "--encoder-weights", str(tmp_path / "junk.safetensors")]) == 2
    assert "is not a readable .safetensors file" in capsys.readouterr().err


def test_pooled_legend_names_a_run_count_true_for_every_panel():
    from robot.reporting import _pooled_legend_names

    def runs(n, label="DEFT (affordance prior)"):
        return [{"label": label}] * n + [{"label": "real-world-only"}] * 5

    report = {"curves": {"a": {"runs": runs(5)}, "b": {"runs": runs(3)}}}
    names = _pooled_legend_names(report, ["a", "b"])
    assert names == {"DEFT (affordance prior)": "DEFT (affordance prior), 3–5 runs per task",
                     "real-world-only": "real-world-only, 5 runs"}


def test_why_not_names_a_residual_that_costs_the_prior_its_train_successes():
    """Squeeze lemon's shape: DEFT gains on the test objects but falls below the prior on the train objects
    the prior already held — said in so many words (and only when it is the prior DEFT lost to)."""
    from robot.reporting import pattern, why_not

    def cell(k, n=10):
        return {"successes": k, "trials": n, "success_rate": k / n}

    row = {"affordance_train": cell(6), "affordance_test": cell(1), "real-world-only_train": cell(0),
           "real-world-only_test": cell(0), "deft_train": cell(4), "deft_test": cell(3)}
    row["pattern"] = pattern(row)
    why = why_not(row)
    assert why[0] == "train: DEFT 4/10 below Affordance model only 6/10"
    assert why[1] == ("gains on the test objects but not on the train objects, where the prior alone already "
                      "succeeds 6/10: the residual moves grasps the prior held")
    row["deft_train"] = cell(0)   # also when DEFT loses every train object
    row["pattern"] = pattern(row)
    assert why_not(row)[1].startswith("gains on the test objects but not on the train objects")
    row["affordance_train"], row["real-world-only_train"] = cell(0), cell(1)   # the prior held nothing there
    row["pattern"] = pattern(row)
    assert len(why_not(row)) == 1


def test_no_object_box_after_the_last_capture_stops_the_lab_session_cleanly(monkeypatch, capsys, tmp_path):
    """The operator presses Enter at every box prompt (re-capture) until the captures run out: a one-line
    error (the robot left safe, the run kept), not a traceback; the same command resumes afterwards."""
    import io

    from test_real_env import FAKE_YAML, write_yaml  # noqa: E402  (same directory, rootdir sys.path)

    monkeypatch.setattr("robot.executor.Clock.sleep", lambda self, s: None)
    cmd = ["finetune", "--task", "pick_cup", "--prior", "real-world-only", "--robot", str(write_yaml(tmp_path, FAKE_YAML)),
           "--segmenter", "operator", "--episodes", "2", "--warmup", "1", "--elites", "1", "--out", str(tmp_path / "runs")]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n" * 40))
    assert main(cmd) == 2
    err = capsys.readouterr().err
    assert "no object box after 3 captures" in err and "left safe" in err and "run the same command again" in err
    assert "Traceback" not in err
    box = "120 90 200 150"  # the fake camera's red object
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f"\n\n{box}\n0.5\n" for _ in range(2))))
    assert main(cmd) == 0, capsys.readouterr().err


def test_evaluations_of_a_policy_distilled_again_are_flagged_until_re_run(tmp_path, capsys):
    """distill into a folder whose policy was already evaluated: distill says which evaluations ran the
    replaced policy, the report warns on the row, and evaluating again clears it."""
    out = str(tmp_path / "runs")
    assert main(["finetune", *TOY, "--episodes", "4", "--warmup", "2", "--elites", "2", "--out", out]) == 0
    assert main(["distill", "--task", "pick_cup", "--kind", "deft", "--steps", "5", "--out", out]) == 0
    for policy in ("deft", "affordance"):
        assert main(["eval", "--task", "pick_cup", "--policy", policy, "--trials", "2", "--out", out]) == 0
    rep = ["report", "--runs", out, "--out", str(tmp_path / "rep"), "--quiet"]
    assert main(rep) == 0
    assert "distilled again" not in (tmp_path / "rep" / "report.md").read_text()
    capsys.readouterr()
    assert main(["distill", "--task", "pick_cup", "--kind", "deft", "--steps", "5", "--seed", "3", "--out", out]) == 0
    said = capsys.readouterr().out
    assert "warning: deft_train.json in" in said and "evaluated the policy this replaces" in said
    assert "affordance_train.json" not in said   # the prior alone uses no distilled policy
    assert main(rep) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "DEFT on train objects: the evaluation ran a policy that has since been distilled again" in md
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["table2"][0]["deft_train"]["stale"] is True
    # evaluating again (a new policy: the partial log's identity differs, the finished file is replaced)
    assert main(["eval", "--task", "pick_cup", "--policy", "deft", "--trials", "2", "--out", out]) == 0
    assert main(rep) == 0
    assert "distilled again" not in (tmp_path / "rep" / "report.md").read_text()
    # a copy of the runs is judged by its own policies, not by the paths recorded in its evaluations
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy, copy_function=shutil.copy)   # new file times, recorded paths still the original's
    rep_copy = ["report", "--runs", str(copy), "--out", str(tmp_path / "rep_copy"), "--quiet"]
    assert main(rep_copy) == 0 and "distilled again" not in (tmp_path / "rep_copy" / "report.md").read_text()
    assert main(["distill", "--task", "pick_cup", "--kind", "deft", "--steps", "5", "--seed", "4", "--out", str(copy)]) == 0
    assert main(rep_copy) == 0 and "distilled again" in (tmp_path / "rep_copy" / "report.md").read_text()
    assert main(rep) == 0 and "distilled again" not in (tmp_path / "rep" / "report.md").read_text()
    # runs copied without the policies' weights (benchmarks/device/seeds_run.py packs logs and results only):
    # nothing to compare, no warning
    for weights in copy.glob("*/*/policies/*/model.safetensors"):
        weights.unlink()
    assert main(rep_copy) == 0 and "distilled again" not in (tmp_path / "rep_copy" / "report.md").read_text()


def test_report_warns_when_deft_and_the_baseline_ran_on_different_robots(tmp_path):
    rd = RunDir(tmp_path / "pick_cup" / "oracle")
    rd.write_or_check_meta(RunMeta(task="pick_cup", prior="oracle", reward="sim"))
    lab = RunDir(tmp_path / "pick_cup" / "real-world-only")
    lab.write_or_check_meta(RunMeta(task="pick_cup", prior="real-world-only", reward="operator",
                                    robot=str(tmp_path / "lab_xarm6.yaml")))
    row = collect(tmp_path)["table2"][0]
    assert "DEFT ran on sim, real-world-only on lab_xarm6.yaml: not a like-for-like comparison" in row["warning"]


def test_a_sigma_other_than_table_4s_is_recorded_resumed_and_named_by_the_report(tmp_path, capsys):
    out = str(tmp_path)
    toy = ["finetune", "--task", "pick_cup", "--robot", "toy", "--size", "32x24", "--no-live", "--episodes", "3",
           "--warmup", "1", "--elites", "1", "--out", out]
    assert main([*toy, "--sigma", "0.01,0.1,0.025"]) == 0
    run = tmp_path / "pick_cup" / "toy"
    meta = RunDir(run).read_meta()
    assert meta.extra["cem_sigma"] == [0.01, 0.1, 0.025]
    assert meta.cem_config().initial_sigma()[[0, 3, 6]].tolist() == [0.01, 0.1, 0.025]
    first = json.loads((run / "finetune" / "episodes.jsonl").read_text().splitlines()[0])
    assert first["distribution"]["std"][:7] == [0.01] * 3 + [0.1] * 3 + [0.025]  # episode 1 sampled that σ₀
    capsys.readouterr()
    assert main(toy) == 2  # resuming with Table 4's σ₀ is another run
    assert "cem_sigma" in capsys.readouterr().err
    assert main([*toy, "--sigma", "0.01,0.1,0.025"]) == 0  # the same σ₀ resumes (finished: nothing to run)
    row = collect(tmp_path)["table2"][0]
    assert "fine-tuned with σ₀ = (0.01 m, 0.1 rad, 0.025 rad), not Table 4's" in row["warning"]
    # Table 4's σ₀ given explicitly is the default: not recorded, so runs made without --sigma still match
    assert main([*toy[:-1], str(tmp_path / "t4"), "--sigma", "0.02,0.2,0.05"]) == 0
    assert "cem_sigma" not in RunDir(tmp_path / "t4" / "pick_cup" / "toy").read_meta().extra
    # DEFT and the baseline explored with different σ₀: named
    rwo = RunDir(tmp_path / "pick_cup" / "real-world-only")
    rwo.write_or_check_meta(RunMeta(task="pick_cup", prior="real-world-only", reward="sim", robot="toy"))
    row = collect(tmp_path)["table2"][0]
    assert "DEFT explored with σ₀ = (0.01 m, 0.1 rad, 0.025 rad), real-world-only with (0.02 m, 0.2 rad, 0.05 rad)" \
        in row["warning"]


@pytest.mark.parametrize("value", ["0,0.1,0.1", "0.01,0.1", "a,b,c", "0.01,nan,0.1", "-1,1,1"])
def test_sigma_must_be_three_positive_numbers(value, capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--task", "pick_cup", "--robot", "toy", f"--sigma={value}"])
    assert "--sigma: must be three numbers > 0" in capsys.readouterr().err


@pytest.mark.parametrize("episodes, warmup, elites, warned", [
    (3, 2, 1, ["no episode samples a refitted D"]),   # the only refit follows the last episode
    (3, 1, 3, ["every episode is an elite"]),
    (3, 1, 1, []),                                    # episode 3 samples the D refitted after episode 2
])
def test_settings_under_which_cem_never_acts_are_warned(tmp_path, capsys, episodes, warmup, elites, warned):
    toy = ["finetune", "--task", "pick_cup", "--robot", "toy", "--size", "32x24", "--no-live", "--episodes",
           str(episodes), "--warmup", str(warmup), "--elites", str(elites), "--out", str(tmp_path)]
    assert main(toy) == 0
    err = capsys.readouterr().err
    assert all(w in err for w in warned) and ("warning: --" in err) == bool(warned)
    lines = (tmp_path / "pick_cup" / "toy" / "finetune" / "episodes.jsonl").read_text().splitlines()
    stds = [json.loads(line)["distribution"]["std"][0] for line in lines]
    assert (stds[-1] != stds[0]) == (not warned or elites >= episodes and warmup < episodes - 1)


def test_pooling_refuses_one_run_twice_and_names_mixed_models(tmp_path):
    """A copied root (or two made with the same --seed) would count one run twice and shrink every p;
    roots whose DEFT runs started from different affordance exports are pooled with a warning."""
    a, b = tmp_path / "a", tmp_path / "b"
    _table2_root(a, {"pick_cup": ((6, 6), (1, 0), (8, 7))}, seed=3)
    _table2_root(b, {"pick_cup": ((6, 6), (1, 0), (8, 7))}, seed=3)
    with pytest.raises(ValueError, match=r"pick_cup \(affordance prior\): the runs roots hold runs with the same seed \[3\]"):
        write_report([a, b], tmp_path / "rep")
    c, d = tmp_path / "c", tmp_path / "d"
    _table2_root(c, {"pick_cup": ((6, 6), (1, 0), (8, 7))}, seed=1, extra={"checkpoint_digest": "aaaaaaaa1111"})
    _table2_root(d, {"pick_cup": ((6, 6), (1, 0), (8, 7))}, seed=2, extra={"checkpoint_digest": "bbbbbbbb2222"})
    write_report([c, d], tmp_path / "rep2")
    row = json.loads((tmp_path / "rep2" / "report.json").read_text())["table2"][0]
    assert "started from 2 different affordance models (aaaaaaaa, bbbbbbbb)" in row["warning"]


def test_the_headline_judges_a_task_on_its_affordance_prior_runs(tmp_path):
    """An oracle-prior run that holds beside an affordance-prior run that does not: the task does not count."""
    _fake_run(tmp_path, "pick_cup", "affordance", "affordance", evals={
        ("affordance", "train"): (6, 10), ("affordance", "test"): (6, 10), ("deft", "train"): (5, 10), ("deft", "test"): (5, 10)})
    _fake_run(tmp_path, "pick_cup", "oracle", "oracle", evals={
        ("affordance", "train"): (2, 10), ("affordance", "test"): (2, 10), ("deft", "train"): (9, 10), ("deft", "test"): (9, 10)})
    _fake_run(tmp_path, "pick_cup", "real-world-only", "real-world-only", evals={
        ("real-world-only", "train"): (0, 10), ("real-world-only", "test"): (0, 10)})
    doc = collect(tmp_path)
    assert {r["prior"]: r["pattern"]["holds"] for r in doc["table2"]} == {"affordance": False, "oracle": True}
    assert doc["table2_summary"]["tasks"] == 1 and doc["table2_summary"]["holds"] == []


def test_p_values_are_printed_without_a_misleading_zero_and_the_monte_carlo_path_is_corrected():
    from robot.reporting import _sign_flip_p, fmt_p

    assert [fmt_p(p) for p in (0.5, 0.03125, 0.0005, 1.0)] == ["0.5", "0.031", "< 0.001", "1"]
    exact = 0.5 ** 16
    assert _sign_flip_p([1.0] * 16) == pytest.approx(exact)
    mc = _sign_flip_p([1.0] * 17)  # Monte Carlo: (count + 1) / (draws + 1), never below what is attainable
    assert mc > 0 and mc >= 1 / 200_001
