"""The real-robot fine-tuning environment (robot.real_env) on the ``fake`` arm/hand/camera backends, with a
colour-threshold locator standing in for the segmenter and scripted operator answers: Algorithm 1 end to
end, resume after an interruption, the robot left safe after an exception mid-episode, controller faults."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deft_core.finetune.cem import CEMConfig
from deft_core.finetune.loop import FinetuneConfig, run_finetune
from deft_core.finetune.rewards import OperatorReward
from robot.executor import Clock
from robot.locate import Detection, check_box
from robot.real_env import Operator, RealFinetuneEnv, real_world_only_prior

# top-down camera 0.8 m above the base origin shifted 0.4 m in x: OpenCV x → base −y, y → base −x, z → base −z
FAKE_YAML = """\
name: fake_lab
arm: {backend: fake}
hand: {backend: fake}
camera:
  backend: fake
  T_base_camera: [[0, -1, 0, 0.4], [-1, 0, 0, 0.0], [0, 0, -1, 0.8], [0, 0, 0, 1]]
safety:
  workspace: {lower: [0.1, -0.4, 0.0], upper: [0.7, 0.4, 0.5]}
  table_z: 0.0
  min_clearance_m: 0.01
"""


def write_yaml(tmp_path: Path, text: str = FAKE_YAML) -> Path:
    path = tmp_path / "robot.yaml"
    path.write_text(text)
    return path


class RedBoxLocator:
    """Stand-in segmenter: the box of the fake camera's red object (200, 40, 40)."""

    def __init__(self):
        self.prompts = []

    def locate(self, image, prompt):
        self.prompts.append(prompt)
        ys, xs = np.nonzero(np.all(image == (200, 40, 40), axis=2))
        if xs.size == 0:
            return None
        return Detection(np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float), 0.9, "red")


class Script:
    """Scripted operator: records every confirmation message."""

    def __init__(self):
        self.messages = []

    def confirm(self, message):
        self.messages.append(message)


class NoSleepClock(Clock):
    """Device time advances without waiting (the fake devices respond instantly)."""

    def __init__(self):
        self.t = 0.0

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.t += max(0.0, seconds)


def make_env(tmp_path, operator=None, locator=None, **kw):
    op = operator or Operator(confirm=Script().confirm)
    return RealFinetuneEnv(write_yaml(tmp_path), "pick_cup", op, prior="real-world-only",
                           locator=RedBoxLocator() if locator is None else locator, clock=NoSleepClock(), **kw)


def answers(seq):
    it = iter(seq)
    return OperatorReward(ask=lambda prompt: next(it))


def config(n=4):
    return FinetuneConfig(task="pick_cup", seed=3, cem=CEMConfig(num_elites=2, warmup_episodes=2, total_episodes=n))


def lines(log_dir: Path):
    return [json.loads(x) for x in (log_dir / "episodes.jsonl").read_text().splitlines() if x.strip()]


def assert_safe(env):
    assert np.allclose(env.hand._target, 0.0), "hand not opened"
    assert not env.arm.motion_enabled, "arm not stopped"
    assert env.arm._pose.position[2] >= env.executor_config.hover_z_m - 1e-9, "wrist not lifted"


def test_finetune_loop_on_fake_robot_logs_every_episode(tmp_path):
    script = Script()
    env = make_env(tmp_path, Operator(confirm=script.confirm))
    try:
        result = run_finetune(env, answers(["0.2", "abc", "0.5", "v", "0.9", "0.4"]), config(), tmp_path / "log")
    finally:
        env.close()
    recs = lines(tmp_path / "log")
    assert [(r["episode"], r["status"]) for r in recs] == [(1, "ok"), (2, "ok"), (3, "void"), (3, "ok"), (4, "ok")]
    assert list(result.rewards) == [0.2, 0.5, 0.9, 0.4]
    assert len(script.messages) == 10                              # per attempt: release warning, then scene reset
    assert all("hand will open and the wrist lift" in m for m in script.messages[0::2])
    assert all("reset the scene" in m for m in script.messages[1::2])
    assert env.locator.prompts == ["cup"] * 5                      # the task's object noun is the text prompt
    first = recs[0]
    assert first["info"]["box_source"] == "red" and first["info"]["error"] is None
    assert len(first["info"]["execution"]["phases"]) == 6
    mu = np.array(first["xi"][:3])                                 # the box centre's 3-D point: x 0.4, y 0, top z 0.1
    assert np.allclose(mu, [0.4, 0.0, 0.1], atol=0.01)
    assert all((tmp_path / "log" / first["images"][k]).is_file() for k in ("initial", "final"))
    assert len(env.arm.history) > 20                               # ξ and τ really went to the arm
    assert not env.arm.is_connected and not env.hand.is_connected and not env.camera.is_connected
    assert_safe(env)


def test_interrupted_run_resumes_with_every_episode_once(tmp_path):
    calls = {"n": 0}

    def reward(query):
        calls["n"] += 1
        if query.episode == 3:
            raise KeyboardInterrupt  # Ctrl-C while the operator is being asked about episode 3
        return 0.1 * query.episode

    env = make_env(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        try:
            run_finetune(env, reward, config(), tmp_path / "log")
        finally:
            env.close()
    assert_safe(env)
    assert [r["episode"] for r in lines(tmp_path / "log")] == [1, 2]
    env = make_env(tmp_path)
    try:
        result = run_finetune(env, lambda q: 0.1 * q.episode, config(), tmp_path / "log")
    finally:
        env.close()
    assert result.resumed_episodes == 2
    assert [r["episode"] for r in lines(tmp_path / "log")] == [1, 2, 3, 4]
    assert np.allclose(result.rewards, [0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize("exc", [RuntimeError("hand bus error"), KeyboardInterrupt()])
def test_exception_mid_episode_leaves_robot_safe(tmp_path, exc):
    env = make_env(tmp_path)
    try:
        obs = env.reset(1, 5)
        xi = env.prior(obs)
        original = env.hand._command_joints

        def failing(joints):
            if np.any(joints > 0.3):  # while closing on the object
                raise exc
            original(joints)

        env.hand._command_joints = failing
        with pytest.raises(type(exc)):
            env.execute(xi)
        assert_safe(env)  # left safe by the environment itself, before close()
    finally:
        env.close()
    assert not env.arm.is_connected


def test_controller_error_is_a_failed_episode_and_is_cleared_at_reset(tmp_path):
    script = Script()
    env = make_env(tmp_path, Operator(confirm=script.confirm))
    try:
        obs = env.reset(1, 5)
        env.arm.inject_error(31, "collision caused abnormal current")
        opened, real_open = [], env.hand.open
        env.hand.open = lambda: opened.append(len(script.messages)) or real_open()
        out = env.execute(env.prior(obs))
        assert out.success is False and "collision" in out.info["error"]
        assert len(opened) == 1                # the executor's open before the approach; not again unannounced
        env.reset(2, 6)                        # the operator is told; home() re-enables motion
        assert len(opened) == 2 and "the hand will open" in script.messages[opened[1] - 1]
        assert np.allclose(env.hand._target, 0.0)
        assert script.messages[-2].endswith("the hand will open; support the object if it is held, keep clear, press Enter")
        assert "controller error" in script.messages[-1] and env.arm.motion_enabled
        assert env.arm._pose.position[2] == pytest.approx(env.arm.config.home_position[2])  # homed
        out = env.execute(env.prior(env._obs))
        assert out.info["error"] is None and out.success is None  # fine-tuning: the reward source judges
    finally:
        env.close()


def test_operator_box_is_the_fallback_and_bad_locator_boxes_are_rejected(tmp_path):
    class Bad:
        def locate(self, image, prompt):
            return Detection(np.array([50.0, 50.0, 50.0, 90.0]), 0.5, "bad")  # zero width

    asked = []

    def ask_box(image, reason):
        asked.append(reason)
        return [100, 80, 220, 160]

    env = make_env(tmp_path, Operator(confirm=lambda m: None, ask_box=ask_box), locator=Bad())
    try:
        obs = env.reset(1, 0)
    finally:
        env.close()
    assert obs.extras["box_source"] == "operator" and list(obs.extras["object_box"]) == [100, 80, 220, 160]
    assert "unusable" in asked[0]


def test_no_box_after_retries_is_an_error_and_robot_safe(tmp_path):
    class Nothing:
        def locate(self, image, prompt):
            return None

    env = make_env(tmp_path, Operator(confirm=lambda m: None, ask_box=lambda img, r: None), locator=Nothing(),
                   max_locate_tries=2)
    try:
        with pytest.raises(RuntimeError, match="no object box after 2 captures.*no 'cup'"):
            env.reset(1, 0)
        assert not env.arm.motion_enabled
    finally:
        env.close()


def test_real_world_only_prior_is_the_simulators(tmp_path):
    from robot.sim.oracle import POWER_GRASP
    from robot.sim_env import SimFinetuneEnv

    rng = np.random.default_rng(0)
    ex = {"object_box": np.array([100.0, 80.0, 140.0, 120.0]), "depth": rng.uniform(0.5, 0.9, (240, 320)).astype(np.float32),
          "K": np.array([[300.0, 0, 160], [0, 300, 120], [0, 0, 1]]), "seed": 42,
          "T_base_camera": np.array([[0, -1, 0, 0.4], [-1, 0, 0, 0], [0, 0, -1, 0.8], [0, 0, 0, 1.0]])}
    sim = SimFinetuneEnv.__new__(SimFinetuneEnv)
    sim.prior_seed = 7
    a, b = real_world_only_prior(ex, 7), sim._real_world_only(ex)
    assert np.allclose(a.to_vector(), b.to_vector())
    assert np.allclose(a.hand, 0.5 * POWER_GRASP)


def test_bad_setup_is_refused_before_connecting(tmp_path):
    op = Operator(confirm=lambda m: None)
    with pytest.raises(ValueError, match="oracle"):
        RealFinetuneEnv(write_yaml(tmp_path), "pick_cup", op, prior="oracle")
    no_T = FAKE_YAML.replace("  T_base_camera: [[0, -1, 0, 0.4], [-1, 0, 0, 0.0], [0, 0, -1, 0.8], [0, 0, 0, 1]]\n", "")
    with pytest.raises(ValueError, match="camera.T_base_camera is required"):
        RealFinetuneEnv(write_yaml(tmp_path, no_T), "pick_cup", op, prior="real-world-only")


def test_open_env_refuses_a_robot_without_operator_callbacks(tmp_path):
    from robot.evaluation import open_env
    from robot.runs import RunMeta

    meta = RunMeta(task="pick_cup", prior="real-world-only", reward="operator", robot=str(write_yaml(tmp_path)))
    with pytest.raises(NotImplementedError, match="operator callbacks"):
        open_env(meta)
    env = open_env(meta, real={"operator": Operator(confirm=lambda m: None), "locator": RedBoxLocator()})
    try:
        assert isinstance(env, RealFinetuneEnv) and env.arm.is_connected
    finally:
        env.close()


def test_check_box_clips_and_rejects():
    assert np.allclose(check_box([-5, 10, 500, 40], 320, 240), [0, 10, 320, 40])
    for bad in ([1, 2, 3], [10, 10, 5, 20], [0, 0, float("nan"), 4], "abc"):
        with pytest.raises(ValueError, match="object box"):
            check_box(bad, 320, 240)


def test_evaluation_on_the_real_env_uses_the_operators_judgement(tmp_path):
    from robot.evaluation import evaluate, zero_residual
    from robot.tasks import OperatorOutcome

    verdicts = iter([True, False])
    op = Operator(confirm=lambda m: None, judge=lambda task: OperatorOutcome(next(verdicts), 1.0))
    env = make_env(tmp_path, op)
    try:
        trials = evaluate(env, zero_residual, [11, 12])
    finally:
        env.close()
    assert [t.success for t in trials] == [True, False] and all(t.error is None for t in trials)
    assert trials[0].xi == trials[0].executed


def test_the_yamls_executor_section_places_the_grasp(tmp_path):
    """``executor.contact_offset`` in the robot YAML moves the commanded wrist: μ − R·offset (the default
    puts μ 1 cm in front of the palm); the approach comes from pregrasp_distance_m back along the palm normal."""
    yaml_text = FAKE_YAML + "executor: {contact_offset: [0.0, 0.0, 0.05], pregrasp_distance_m: 0.12}\n"
    env = RealFinetuneEnv(write_yaml(tmp_path, yaml_text), "pick_cup", Operator(confirm=Script().confirm),
                          prior="real-world-only", locator=RedBoxLocator(), clock=NoSleepClock())
    try:
        obs = env.reset(1, 0)
        xi = env.prior(obs)
        out = env.execute(xi)
    finally:
        env.close()
    assert env.executor_config.contact_offset == (0.0, 0.0, 0.05) and out.info["error"] is None
    from deft_core.geometry import euler_xyz_to_matrix

    R = euler_xyz_to_matrix(xi.theta)
    grasp = np.array(out.info["execution"]["grasp_pose"]["position"])
    pre = np.array(out.info["execution"]["pregrasp_pose"]["position"])
    assert np.allclose(grasp, xi.mu - R @ [0.0, 0.0, 0.05], atol=1e-9)
    assert np.allclose(pre, grasp - 0.12 * R @ [0.0, 0.0, 1.0], atol=1e-9)
