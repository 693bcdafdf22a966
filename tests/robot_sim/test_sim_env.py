"""SimFinetuneEnv: the FinetuneEnv protocol in the simulator — deterministic resets, the three priors
(oracle, real-world-only, an affordance checkpoint written here with random weights), and a tiny
Algorithm 1 run through deft_core.finetune.run_finetune."""

import logging

import numpy as np
import pytest

from deft_core.grasp import GraspParams

pytest.importorskip("mujoco")
try:  # torchvision.models (→ torch._dynamo → triton) segfaults when first imported after MuJoCo's EGL
    import torchvision.models  # noqa: F401  rendering ran in the process: import it at collection, before any render
except ImportError:  # pragma: no cover - the affordance test skips then
    pass
logging.getLogger("robot.safety").setLevel(logging.ERROR)
SIZE = (96, 72)


@pytest.fixture(scope="module")
def runner():
    from robot.episode import SimEpisodeRunner

    with SimEpisodeRunner(image_size=SIZE) as r:
        yield r


def test_reset_is_deterministic_and_observation_is_complete(runner):
    from robot.sim_env import SimFinetuneEnv

    env = SimFinetuneEnv("pick_cup", prior="oracle", runner=runner)
    a = env.reset(1, 123)
    b = env.reset(2, 123)
    c = env.reset(3, 124)
    assert a.image.shape == (72, 96, 3) and a.image.dtype == np.uint8
    assert np.array_equal(a.image, b.image) and not np.array_equal(a.image, c.image)
    ex = a.extras
    assert ex["depth"].shape == (72, 96) and ex["mask"].shape == (72, 96) and ex["K"].shape == (3, 3)
    x1, y1, x2, y2 = ex["object_box"]
    assert 0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 72
    assert (ex["mask"][int(y1):int(y2), int(x1):int(x2)] == 4).any()


def test_test_split_uses_test_objects(runner):
    from robot.sim_env import SimFinetuneEnv
    from robot.tasks import get_task_definition

    env = SimFinetuneEnv("pick_cup", split="test", prior="oracle", runner=runner)
    obs = env.reset(1, 5)
    assert obs.extras["variants"]["object"] in get_task_definition("pick_cup").objects("test")["object"]


def test_real_world_only_prior_uses_the_box_centre_and_is_seeded(runner):
    from robot.sim_env import SimFinetuneEnv
    from robot.sim.oracle import POWER_GRASP

    env = SimFinetuneEnv("pick_cup", prior="real-world-only", runner=runner)
    obs = env.reset(1, 7)
    g1, g2 = env.prior(obs), env.prior(obs)
    assert np.array_equal(g1.to_vector(), g2.to_vector())
    np.testing.assert_allclose(g1.hand, 0.5 * POWER_GRASP)
    cup = np.asarray(runner.world.info.objects["object"].pos)
    assert np.linalg.norm(g1.mu[:2] - cup[:2]) < 0.08 and 0.0 <= g1.mu[2] < 0.15  # on the cup, seen from the camera
    other = env.prior(env.reset(2, 8))
    assert not np.allclose(other.theta, g1.theta)


def test_affordance_prior_from_a_checkpoint(runner, tmp_path):
    torch = pytest.importorskip("torch")
    from deft_core.affordance import save_export
    from deft_core.affordance.config import get_preset
    from deft_core.affordance.model import AffordanceModel
    from robot.sim_env import SimFinetuneEnv

    torch.manual_seed(0)
    cfg = get_preset("tiny").model
    cfg.image_size, cfg.text_encoder, cfg.text_dim = 64, "hash:32", 32
    save_export(tmp_path / "aff", AffordanceModel(cfg))
    env = SimFinetuneEnv("pick_cup", prior="affordance", checkpoint=tmp_path / "aff", runner=runner)
    obs = env.reset(1, 3)
    g = env.prior(obs)
    assert isinstance(g, GraspParams) and np.all(np.isfinite(g.to_vector()))
    # the contact lies inside the object box, so μ is near the cup in the base frame
    cup = np.asarray(runner.world.info.objects["object"].pos)
    assert np.linalg.norm(g.mu[:2] - cup[:2]) < 0.12
    # the hand pose goes through the simulated hand's fingertip retargeting (robot/sim/retarget_fit.py),
    # not the plain joint map
    from deft_core.retarget import mano_to_hand
    from robot.sim.retarget_fit import sim_retargeter

    pred = env._predictor.predict(obs.image, obs.extras["object_box"], env.task_def.text)
    np.testing.assert_allclose(g.hand, sim_retargeter()(pred.hand_pose), atol=1e-9)
    assert not np.allclose(g.hand, mano_to_hand(pred.hand_pose), atol=1e-3)


def test_bad_arguments_are_named():
    from robot.sim_env import SimFinetuneEnv

    with pytest.raises(ValueError, match="prior"):
        SimFinetuneEnv("pick_cup", prior="nope", runner=object())
    with pytest.raises(ValueError, match="checkpoint"):
        SimFinetuneEnv("pick_cup", prior="affordance", runner=object())
    with pytest.raises(ValueError, match="split"):
        SimFinetuneEnv("pick_cup", split="val", runner=object())


@pytest.mark.slow
def test_tiny_finetune_run_in_sim(runner, tmp_path):
    from deft_core.finetune import CEMConfig, FinetuneConfig, run_finetune, task_reward
    from robot.sim_env import SimFinetuneEnv

    env = SimFinetuneEnv("open_drawer", prior="oracle", runner=runner)
    cem = CEMConfig(num_elites=2, warmup_episodes=2, total_episodes=3)
    res = run_finetune(env, task_reward, FinetuneConfig(task="open_drawer", seed=0, cem=cem), tmp_path / "log")
    assert len(res.records) == 3
    assert all(0.0 <= r <= 1.0 for r in res.rewards)
    assert any(r.success for r in res.records)  # the oracle prior + small σ₀ noise opens the drawer
    assert (tmp_path / "log" / "images").is_dir()
