"""Task criteria on hand-written traces (no simulator): each Appendix F criterion passes and fails
where it should, rewards are in [0, 1] and 1.0 exactly on success."""

import json

import numpy as np
import pytest

from deft_core.geometry import euler_xyz_to_matrix
from deft_core.tasks import TASK_NAMES
from robot.tasks import TASKS, BodyState, Snapshot, contact_pairs, get_task_definition


def snap(phase, z=0.0, up_roll=0.0, contacts=(), drawer=None, point=None, support=(0.0, 0.0, 0.0), support_roll=0.0):
    bodies = {"object": BodyState(np.array([0.4, 0.0, z]), euler_xyz_to_matrix([up_roll, 0, 0])),
              "support": BodyState(np.array(support, dtype=float), euler_xyz_to_matrix([support_roll, 0, 0]))}
    points = {"object:body": np.array(point if point is not None else [0.4, 0.0, z])}
    joints = {"drawer": drawer} if drawer is not None else {}
    return Snapshot(phase, 0.0, bodies, points, joints, contact_pairs(*contacts))


HELD = [("hand", "object")]


def lift_trace(final_z, held=True, on_table=False):
    tr = [snap("initial", 0.0, contacts=[("object", "table")]), snap("grasp", 0.0, contacts=HELD + [("object", "table")])]
    tr += [snap("trajectory", final_z * k / 40, contacts=HELD if held else []) for k in range(1, 41)]
    tr.append(snap("final", final_z, contacts=(HELD if held else []) + ([("object", "table")] if on_table else [])))
    return tr


def test_all_nine_tasks_are_defined_with_objects_and_trajectories():
    assert set(TASKS) == set(TASK_NAMES)
    for t in TASKS.values():
        d = t.describe()
        assert d["objects"]["train"]["object"] and d["objects"]["test"]["object"], t.name
        assert not set(d["objects"]["train"]["object"]) & set(d["objects"]["test"]["object"])
        assert t.default_trajectory().deltas.shape == (40, 6)
    with pytest.raises(KeyError, match="known tasks"):
        get_task_definition("juggle")


@pytest.mark.parametrize("name", ["pick_cup", "pick_spoon", "pick_grape"])
def test_pick_tasks(name):
    t = TASKS[name]
    ok = t.evaluate(lift_trace(0.10))
    assert ok.success and ok.reward == 1.0
    low = t.evaluate(lift_trace(0.01))
    assert not low.success and 0 < low.reward < 0.9
    dropped = t.evaluate(lift_trace(0.0, held=False, on_table=True))
    assert not dropped.success and dropped.reward < low.reward


def test_pour_needs_top_below_base_while_held():
    t = TASKS["pour_cup"]
    def trace(max_roll, held=True):
        tr = [snap("initial", contacts=[("object", "table")])]
        tr += [snap("trajectory", 0.1, up_roll=max_roll * k / 40, contacts=HELD if held else []) for k in range(41)]
        return tr
    assert t.evaluate(trace(2.0)).success
    r60 = t.evaluate(trace(np.radians(60)))
    assert not r60.success and abs(r60.metrics["max_tilt_deg"] - 60) < 1e-6
    assert not t.evaluate(trace(2.0, held=False)).success


def test_open_drawer_needs_one_centimetre():
    t = TASKS["open_drawer"]
    tr = lambda d: [snap("initial", drawer=0.03), snap("grasp", drawer=0.03, contacts=HELD), snap("final", drawer=0.03 + d, contacts=HELD)]
    assert t.evaluate(tr(0.011)).success
    half = t.evaluate(tr(0.005))
    assert not half.success and 0.3 < half.reward < 0.9


def test_stir_counts_the_angle_swept_around_the_pot_while_held():
    t = TASKS["stir_spoon"]
    def trace(total, held=True):
        tr = [snap("initial")]
        for k in range(41):
            a = total * k / 40
            tr.append(snap("trajectory", point=[0.05 * np.cos(a), 0.05 * np.sin(a), 0.05], contacts=HELD if held else []))
        return tr
    assert t.evaluate(trace(np.radians(200))).success
    assert t.evaluate(trace(-np.radians(200))).success  # either direction
    assert abs(t.evaluate(trace(np.radians(90))).metrics["swept_deg"] - 90) < 1e-6
    assert not t.evaluate(trace(np.radians(200), held=False)).success


def test_flip_bagel_and_squeeze_lemon_and_scoop():
    flip = TASKS["flip_bagel"]
    assert flip.evaluate([snap("initial"), snap("final", support_roll=np.pi, contacts=HELD)]).success
    assert not flip.evaluate([snap("initial"), snap("final", support_roll=1.0, contacts=HELD)]).success
    sq = TASKS["squeeze_lemon"]
    on = [snap("initial", support=(0.5, 0.2, 0)), snap("final", 0.05, contacts=HELD + [("object", "support")], support=(0.42, 0.0, 0))]
    assert sq.evaluate(on).success
    away = [snap("initial"), snap("final", 0.05, contacts=HELD + [("object", "support")], support=(0.6, 0.2, 0))]
    assert not sq.evaluate(away).success
    scoop = TASKS["scoop_grape"]
    good = [snap("initial"), snap("final", 0.08, contacts=HELD + [("object", "support")])]
    assert scoop.evaluate(good).success
    assert not scoop.evaluate([snap("initial"), snap("final", 0.08, contacts=HELD + [("support", "table")])]).success


def test_trace_must_start_with_initial():
    with pytest.raises(ValueError, match="initial"):
        TASKS["pick_cup"].evaluate([snap("final")])


def test_the_tasks_command_lists_every_task_readably_at_80_columns(capsys, monkeypatch):
    """`deft-robot tasks` in a log or a pipe (80 columns): every task, every object name whole (the
    earlier wide table folded names mid-word: 'cup_green_con' / 'ical'), criteria and rewards; --json
    round-trips; an unknown task is a usage error."""
    from robot.cli import main

    monkeypatch.setenv("COLUMNS", "80")
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    words = set(out.replace(",", " ").replace(";", " ").split())
    for t in TASKS.values():
        d = t.describe()
        assert d["name"] in words and f'"{d["text"]}",' in out
        for split in ("train", "test"):
            for names in d["objects"][split].values():
                assert set(names) <= words, (d["name"], split, names)
    assert main(["tasks", "--task", "pour_cup", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["pour_cup"]
    assert main(["tasks", "--task", "no_such_task"]) == 2
