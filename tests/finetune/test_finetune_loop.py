"""Algorithm 1 loop + durable episode log: resume after a kill at every point, torn lines, voids."""

import json

import numpy as np
import pytest

from deft_core.finetune.cem import CEMConfig, CEMState
from deft_core.finetune.episode_log import EpisodeLog, EpisodeLogError, open_run, read_records
from deft_core.finetune.loop import FinetuneConfig, run_finetune

CFG = FinetuneConfig(task="pick_cup", seed=5, cem=CEMConfig(num_elites=3, warmup_episodes=2, total_episodes=6))
N = CFG.cem.total_episodes


def _content(records):
    """What must be identical between an interrupted and an uninterrupted run (not wall-clock times)."""
    return [(r.episode, r.attempt, r.status, r.env_seed, r.xi, r.epsilon, r.executed, r.reward, r.success,
             r.distribution, sorted(r.images), r.info) for r in records]


@pytest.fixture
def reference(tmp_path, toy_env_cls):
    env = toy_env_cls()
    result = run_finetune(env, env.reward, CFG, tmp_path / "ref")
    return result


def test_uninterrupted_run_logs_every_episode(reference, tmp_path):
    run_meta, records = open_run(tmp_path / "ref")
    assert run_meta["task"] == "pick_cup" and run_meta["cem"]["total_episodes"] == N
    assert [r.episode for r in records] == list(range(1, N + 1))
    assert all(r.status == "ok" and (tmp_path / "ref" / r.images["initial"]).exists() for r in records)
    # each record stores the D it was sampled from, and ε is that D's sample for (seed, k, attempt)
    state = CEMState(CFG.cem)
    for r in records:
        assert r.distribution == state.distribution.to_dict()
        assert np.allclose(r.epsilon, state.sample(CFG.seed))
        assert np.allclose(np.add(r.xi, r.epsilon), r.executed)
        state.record(r.epsilon_array, r.reward)
    assert np.allclose(reference.distribution.mean, state.distribution.mean)
    assert [e.episode for e in reference.elites] == [records[i].episode for i in state.elites()]


def test_images_round_trip(reference, tmp_path, toy_env_cls):
    log = EpisodeLog(tmp_path / "ref", CFG.run_meta())
    rec = log.ok_records()[0]
    img = log.load_image(rec, "initial")
    expected = toy_env_cls().reset(rec.episode, rec.env_seed).image
    assert img.dtype == np.uint8 and np.array_equal(img, expected)  # lossless, RGB order kept


CRASH_POINTS = [(m, n) for m in ("reset", "prior", "execute", "reward") for n in range(1, N + 1)]


@pytest.mark.parametrize("crash_at", CRASH_POINTS, ids=[f"{m}{n}" for m, n in CRASH_POINTS])
def test_resume_after_crash_mid_episode(crash_at, reference, tmp_path, toy_env_cls, crash_cls):
    env = toy_env_cls(crash_at=crash_at)
    with pytest.raises(crash_cls):
        run_finetune(env, env.reward, CFG, tmp_path / "run")
    assert len(read_records(tmp_path / "run" / "episodes.jsonl")) == crash_at[1] - 1
    env2 = toy_env_cls()
    result = run_finetune(env2, env2.reward, CFG, tmp_path / "run")
    assert result.resumed_episodes == crash_at[1] - 1
    assert env2.calls["execute"] == N - (crash_at[1] - 1)
    assert _content(read_records(tmp_path / "run" / "episodes.jsonl")) == _content(reference.records)


@pytest.mark.parametrize("after", range(1, N + 1))
def test_resume_after_crash_between_log_write_and_next_episode(after, reference, tmp_path, toy_env_cls):
    class Kill(Exception):
        pass

    def progress(event):
        if event.episode == after:
            raise Kill

    env = toy_env_cls()
    with pytest.raises(Kill):
        run_finetune(env, env.reward, CFG, tmp_path / "run", progress_callback=progress)
    events = []
    env2 = toy_env_cls()
    result = run_finetune(env2, env2.reward, CFG, tmp_path / "run", progress_callback=events.append)
    assert env2.calls["execute"] == N - after and result.resumed_episodes == after
    assert [e.episode for e in events] == list(range(after + 1, N + 1))
    assert _content(result.records) == _content(reference.records)
    assert np.array_equal(result.distribution.std, reference.distribution.std)


def test_half_written_last_line_is_dropped_and_redone(reference, tmp_path, toy_env_cls):
    import shutil

    shutil.copytree(tmp_path / "ref", tmp_path / "run")
    path = tmp_path / "run" / "episodes.jsonl"
    data = path.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[: last_start + (len(data) - last_start) // 2])  # a torn last line
    with pytest.warns(RuntimeWarning, match="half-written"):
        env = toy_env_cls()
        result = run_finetune(env, env.reward, CFG, tmp_path / "run")
    assert env.calls["execute"] == 1
    assert _content(read_records(path)) == _content(reference.records)
    assert result.resumed_episodes == N - 1


def test_corrupt_middle_line_is_an_error(reference, tmp_path):
    path = tmp_path / "ref" / "episodes.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = "{not json\n"
    path.write_text("".join(lines))
    with pytest.raises(EpisodeLogError, match=r"episodes.jsonl:2"):
        read_records(path)


def test_a_whole_last_line_that_is_no_valid_record_is_an_error_not_dropped(reference, tmp_path, toy_env_cls):
    """A last line that is JSON and ends in a newline was written whole: failing the record's checks (another
    version, a missing field) it is reported, never truncated away as if a crash had torn it."""
    path = tmp_path / "ref" / "episodes.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    last = json.loads(lines[-1])
    last["version"] = 99
    path.write_text("".join(lines[:-1]) + json.dumps(last) + "\n")
    before = path.read_bytes()
    env = toy_env_cls()
    with pytest.raises(EpisodeLogError, match=rf"episodes.jsonl:{len(lines)}: not a valid episode record"):
        run_finetune(env, env.reward, CFG, tmp_path / "ref")
    assert path.read_bytes() == before and env.calls["execute"] == 0


def test_duplicate_episode_in_log_is_an_error(reference, tmp_path):
    path = tmp_path / "ref" / "episodes.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3] + [lines[2]] + lines[3:]))
    with pytest.raises(EpisodeLogError, match="expected episode 4 attempt 0, found episode 3"):
        read_records(path)


def test_resume_with_different_settings_is_refused(reference, tmp_path, toy_env_cls):
    other = FinetuneConfig(task="pick_cup", seed=6, cem=CFG.cem)
    env = toy_env_cls()
    with pytest.raises(EpisodeLogError, match="seed: log has 5, run has 6"):
        run_finetune(env, env.reward, other, tmp_path / "ref")


def test_finished_run_does_not_touch_the_env(reference, tmp_path, toy_env_cls):
    env = toy_env_cls()
    result = run_finetune(env, env.reward, CFG, tmp_path / "ref")
    assert env.calls["reset"] == 0 and _content(result.records) == _content(reference.records)


def test_void_episodes_are_logged_and_redone(tmp_path, toy_env_cls, reference):
    env = toy_env_cls(void_at={(3, 0), (3, 1), (5, 0)})
    events = []
    result = run_finetune(env, env.reward, CFG, tmp_path / "run", progress_callback=events.append)
    records = read_records(tmp_path / "run" / "episodes.jsonl")
    assert [(r.episode, r.attempt, r.status) for r in records] == [
        (1, 0, "ok"), (2, 0, "ok"), (3, 0, "void"), (3, 1, "void"), (3, 2, "ok"), (4, 0, "ok"),
        (5, 0, "void"), (5, 1, "ok"), (6, 0, "ok")]
    assert all(r.reward is None and r.void_reason for r in records if r.status == "void")
    assert [r.episode for r in result.records] == list(range(1, N + 1))
    assert [(e.episode, e.void) for e in events][2:4] == [(3, True), (3, True)]
    # the redo uses a fresh sample and a fresh reset, both derived from (seed, k, attempt)
    assert records[2].epsilon != records[4].epsilon and records[2].env_seed != records[4].env_seed
    assert records[0].epsilon == reference.records[0].epsilon
    # voids do not enter D: it is the replay of the ok episodes only
    state = CEMState(CFG.cem)
    for r in result.records:
        state.record(r.epsilon_array, r.reward)
    assert np.array_equal(state.distribution.mean, result.distribution.mean)


def test_resume_in_the_middle_of_voids(tmp_path, toy_env_cls, crash_cls):
    voids = {(3, 0), (3, 1)}
    env = toy_env_cls(void_at=voids)
    ref = run_finetune(env, env.reward, CFG, tmp_path / "ref")
    env = toy_env_cls(void_at=voids, crash_at=("reset", 4))  # 4th reset = episode 3 attempt 1
    with pytest.raises(crash_cls):
        run_finetune(env, env.reward, CFG, tmp_path / "run")
    env = toy_env_cls(void_at=voids)
    run_finetune(env, env.reward, CFG, tmp_path / "run")
    assert _content(read_records(tmp_path / "run" / "episodes.jsonl")) == \
        _content(read_records(tmp_path / "ref" / "episodes.jsonl"))
    assert len(ref.records) == N


def test_too_many_voids_stop_the_session_and_the_run_resumes_with_a_fresh_allowance(tmp_path, toy_env_cls):
    from deft_core.finetune.loop import VoidLimitError

    env = toy_env_cls(void_at={(2, a) for a in range(5)})   # episode 2 voids five times, then works
    cfg = FinetuneConfig(task="pick_cup", seed=5, cem=CFG.cem, max_void_attempts=3)
    with pytest.raises(VoidLimitError, match="episode 2 was void 3 times in a row.*run the same command again"):
        run_finetune(env, env.reward, cfg, tmp_path / "run")
    # a second session: the three voids logged before do not count, the fourth and fifth do
    with pytest.raises(VoidLimitError, match="void 3 times in a row"):
        env2 = toy_env_cls(void_at={(2, a) for a in range(7)})
        run_finetune(env2, env2.reward, cfg, tmp_path / "run")
    # a third session finishes the run; the six voids stay in the log, every episode once
    env3 = toy_env_cls(void_at={(2, a) for a in range(6)})
    result = run_finetune(env3, env3.reward, cfg, tmp_path / "run")
    records = read_records(tmp_path / "run" / "episodes.jsonl")
    assert [r.attempt for r in records if r.episode == 2 and r.status == "void"] == list(range(6))
    assert [r.episode for r in result.records] == list(range(1, N + 1))


def test_bad_reward_is_rejected(tmp_path, toy_env_cls):
    env = toy_env_cls()
    with pytest.raises(ValueError, match="non-finite reward"):
        run_finetune(env, lambda q: float("inf"), CFG, tmp_path / "run")
    assert read_records(tmp_path / "run" / "episodes.jsonl") == []


def test_records_are_plain_json(reference, tmp_path):
    for line in (tmp_path / "ref" / "episodes.jsonl").read_text().splitlines():
        d = json.loads(line)
        assert d["version"] == 1 and len(d["epsilon"]) == 22 and "execute_s" in d["timings"]


def test_live_view_renders_progress(tmp_path, toy_env_cls):
    import io

    from rich.console import Console

    from deft_core.finetune.display import FinetuneView

    view = FinetuneView("pick_cup")
    env = toy_env_cls(void_at={(2, 0)})
    run_finetune(env, env.reward, CFG, tmp_path / "run", progress_callback=view.update)
    out = io.StringIO()
    Console(file=out, width=120).print(view)
    text = out.getvalue()
    assert "6/6 episodes done, 1 void" in text and "void" in text and "refit" in text and "warm-up" in text


def test_env_reported_void_is_redone_without_asking_for_a_reward(tmp_path, toy_env_cls):
    class SafetyStopEnv(toy_env_cls):
        def execute(self, grasp):
            result = super().execute(grasp)
            if self.calls["execute"] == 2:
                result.void_reason = "arm safety stop"
            return result

    env = SafetyStopEnv()
    run_finetune(env, env.reward, CFG, tmp_path / "run")
    records = read_records(tmp_path / "run" / "episodes.jsonl")
    assert records[1].status == "void" and records[1].void_reason == "arm safety stop"
    assert env.calls["reward"] == N and len(records) == N + 1


def test_run_curves_and_plot(reference, tmp_path):
    from deft_core.finetune.plots import plot_run, run_curves

    c = run_curves(reference.records, CFG.cem)
    assert np.allclose(c["reward"], reference.rewards)
    assert c["elite_mean"][-1] == pytest.approx(np.mean(np.sort(reference.rewards)[-CFG.cem.num_elites:]))
    # D only changes after episode M + 1: the first M + 1 episodes were sampled from σ₀
    assert np.allclose(c["sigma_mu"][: CFG.cem.warmup_episodes + 1], 0.02)
    assert not np.isclose(c["sigma_mu"][-1], 0.02)
    png = plot_run(reference.records, CFG.cem, tmp_path / "curves.png", title="pick_cup")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_after_crash_between_images_and_log_line(reference, tmp_path, toy_env_cls, monkeypatch):
    """Images of episode 3 are on disk but its line is not: the attempt is redone, the images rewritten."""
    original, calls = EpisodeLog.append, {"n": 0}

    def crashing_append(self, record):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("power cut")
        original(self, record)

    monkeypatch.setattr(EpisodeLog, "append", crashing_append)
    env = toy_env_cls()
    with pytest.raises(OSError, match="power cut"):
        run_finetune(env, env.reward, CFG, tmp_path / "run")
    assert (tmp_path / "run" / "images" / "k0003_a0_initial.png").exists()
    monkeypatch.setattr(EpisodeLog, "append", original)
    env2 = toy_env_cls()
    run_finetune(env2, env2.reward, CFG, tmp_path / "run")
    assert env2.calls["execute"] == N - 2
    assert _content(read_records(tmp_path / "run" / "episodes.jsonl")) == _content(reference.records)


@pytest.mark.parametrize("damage", ['{"task": "pick_', "[1, 2]", ""])
def test_a_damaged_run_json_is_refused_naming_the_file_and_the_way_back(damage, tmp_path, toy_env_cls):
    from deft_core.finetune.episode_log import EpisodeLogError, open_run

    env = toy_env_cls()
    run_finetune(env, env.reward, CFG, tmp_path / "run")
    before = (tmp_path / "run" / "episodes.jsonl").read_text()
    (tmp_path / "run" / "run.json").write_text(damage)
    for attempt in (lambda: open_run(tmp_path / "run"), lambda: run_finetune(env, env.reward, CFG, tmp_path / "run")):
        with pytest.raises(EpisodeLogError, match=r"run\.json is damaged.*delete it and run the same"):
            attempt()
    assert (tmp_path / "run" / "episodes.jsonl").read_text() == before
    (tmp_path / "run" / "run.json").unlink()   # the way back the message gives: rewritten, nothing lost
    assert len(run_finetune(env, env.reward, CFG, tmp_path / "run").records) == N
