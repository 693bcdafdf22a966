"""CEM (Algorithm 1's D): refit statistics, warm-up, elites, determinism of samples."""

import numpy as np
import pytest

from deft_core.finetune.cem import (CEMConfig, CEMState, ResidualDistribution, elite_indices,
                                    fit_distribution, standard_normal)
from deft_core.grasp import GRASP_DIM, initial_sigma


def test_initial_distribution_is_table4():
    d = ResidualDistribution.initial(CEMConfig())
    assert np.all(d.mean == 0)
    assert np.allclose(d.std[:3], 0.02) and np.allclose(d.std[3:6], 0.2) and np.allclose(d.std[6:], 0.05)
    cfg = CEMConfig()
    assert (cfg.num_elites, cfg.warmup_episodes, cfg.total_episodes) == (10, 10, 30)


def test_samples_are_a_pure_function_of_seed_episode_attempt():
    d = ResidualDistribution(mean=np.arange(GRASP_DIM) * 0.01, std=np.full(GRASP_DIM, 0.5))
    a = d.sample(3, 7, 0)
    assert np.array_equal(a, d.sample(3, 7, 0))
    assert not np.array_equal(a, d.sample(3, 8, 0))
    assert not np.array_equal(a, d.sample(3, 7, 1))
    assert not np.array_equal(a, d.sample(4, 7, 0))
    assert np.allclose(a, d.mean + d.std * standard_normal(3, 7, 0))
    with pytest.raises(ValueError, match="episode"):
        d.sample(3, -1)


def test_samples_follow_the_distribution():
    mean, std = np.linspace(-1, 1, GRASP_DIM), np.linspace(0.1, 2.0, GRASP_DIM)
    d = ResidualDistribution(mean=mean, std=std)
    s = np.stack([d.sample(0, k) for k in range(4000)])
    assert np.allclose(s.mean(0), mean, atol=4 * std / np.sqrt(4000))
    assert np.allclose(s.std(0), std, rtol=0.06)


def test_refit_on_known_elites_equals_numpy():
    """Rewards built so that the elites are a known set: the refit mean/std equal numpy's on that set."""
    rng = np.random.default_rng(0)
    cfg = CEMConfig(num_elites=4, warmup_episodes=6, total_episodes=12, sigma_floor_fraction=0.0)
    state = CEMState(cfg)
    residuals = rng.normal(size=(9, GRASP_DIM))
    rewards = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.95, 0.0, 0.7, 0.05])
    for eps, r in zip(residuals, rewards):
        state.record(eps, r)
    known = residuals[[5, 1, 3, 7]]
    assert list(state.elites()) == [5, 1, 3, 7]
    assert np.allclose(state.distribution.mean, known.mean(0))
    assert np.allclose(state.distribution.std, known.std(0))
    assert state.distribution.num_refits == 9 - 6
    assert state.elite_mean_reward() == pytest.approx(np.mean([0.95, 0.9, 0.8, 0.7]))


def test_no_refit_during_warmup_and_first_refit_after_episode_m_plus_1():
    cfg = CEMConfig(num_elites=3, warmup_episodes=5, total_episodes=10)
    state = CEMState(cfg)
    initial = state.distribution
    rng = np.random.default_rng(1)
    refits = [state.record(rng.normal(size=GRASP_DIM), float(rng.random())) for _ in range(6)]
    assert refits == [False] * 5 + [True]
    assert state.distribution is not initial and state.distribution.num_refits == 1


def test_warmup_distribution_is_untouched():
    state = CEMState(CEMConfig())
    for k in range(10):
        state.record(np.full(GRASP_DIM, 5.0), 1.0)
        assert np.array_equal(state.distribution.std, initial_sigma())
        assert np.array_equal(state.distribution.mean, np.zeros(GRASP_DIM))


def test_ties_go_to_the_later_episode_and_floor_prevents_collapse():
    assert list(elite_indices([0.5, 1.0, 0.5, 1.0, 0.5], 3)) == [3, 1, 4]
    assert list(elite_indices([0.2, 0.9, 0.4], 5)) == [1, 2, 0]  # no ties: by reward; fewer than asked: all
    cfg = CEMConfig(num_elites=2, warmup_episodes=0, sigma_floor_fraction=0.1)
    state = CEMState(cfg)
    state.record(np.ones(GRASP_DIM), 0.0)
    assert np.allclose(state.distribution.std, 0.1 * initial_sigma())
    assert np.allclose(state.distribution.mean, 1.0)


def test_cem_moves_towards_a_peaked_reward():
    """A synthetic reward peaked at a known residual (1.5 σ₀ in every dimension): over 60 episodes D's
    mean moves towards it, D narrows, and later episodes earn more than the warm-up (10 seeds)."""
    s0 = initial_sigma()
    target = 1.5 * s0
    ratios, gains = [], []
    for seed in range(10):
        state = CEMState(CEMConfig(total_episodes=60))
        while not state.finished:
            eps = state.sample(seed=seed)
            state.record(eps, float(np.exp(-np.sum(((eps - target) / s0) ** 2) / GRASP_DIM)))
        ratios.append(np.linalg.norm((state.distribution.mean - target) / s0) / np.linalg.norm(target / s0))
        gains.append(np.mean(state.rewards[-20:]) - np.mean(state.rewards[:10]))
        assert np.mean(state.distribution.std / s0) < 0.8
    assert max(ratios) < 0.95 and np.median(ratios) < 0.85
    assert min(gains) > 0


def test_bad_inputs_are_rejected_clearly():
    with pytest.raises(ValueError, match="num_elites"):
        CEMConfig(num_elites=0)
    with pytest.raises(ValueError, match="shape"):
        fit_distribution(np.zeros((3, 5)), np.zeros(GRASP_DIM))
    state = CEMState(CEMConfig())
    with pytest.raises(ValueError, match="finite"):
        state.record(np.zeros(GRASP_DIM), float("nan"))
    with pytest.raises(ValueError, match="residual"):
        state.record(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="unknown"):
        CEMConfig.from_dict({"elites": 3})
