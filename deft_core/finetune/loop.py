"""Algorithm 1 of the paper, written against a small environment protocol.

The loop knows nothing about robots or simulators: anything that implements :class:`FinetuneEnv`
(the MuJoCo simulator, the lab robot, a test double) can be fine-tuned. The reward source (operator
prompt, simulator task reward, R3M/ResNet embedding distance) is a callable; returning :data:`VOID`
marks the attempt void (logged, then redone with a fresh sample and a fresh reset).

Per episode k (1-based): ``obs = env.reset(k, env_seed)``; ``ξ = env.prior(obs)``; ``ε ~ D``;
``result = env.execute(ξ + ε)``; ``R = reward_fn(query)``; the record is appended durably; D is
refit when k > M (:mod:`deft_core.finetune.cem`). Calling :func:`run_finetune` again on the same
``log_dir`` resumes after the last logged episode with identical samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from deft_core.finetune.cem import CEMConfig, CEMState, ResidualDistribution
from deft_core.finetune.episode_log import EpisodeLog, EpisodeRecord
from deft_core.grasp import GraspParams


class _Void:
    """Sentinel type: the reward callback's way of saying "this attempt does not count, redo it"."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "VOID"


VOID = _Void()


@dataclass
class Observation:
    """What the environment shows at the start of an episode: ``image`` (H × W × 3 uint8 RGB, the
    initial image I₀) and ``extras`` (whatever the environment's prior needs: depth, object box, …)."""

    image: np.ndarray
    extras: dict = field(default_factory=dict)


@dataclass
class EpisodeResult:
    """The outcome of executing ξ + ε then τ: ``success`` (task criterion, if the env knows it),
    ``final_image`` (H × W × 3 uint8 RGB or None), ``task_reward`` (the env's own reward in [0, 1] if it
    has one, e.g. the simulator), ``info`` (JSON-serialisable details, logged), ``void_reason`` (set by
    the env when the attempt cannot count, e.g. a safety stop: the attempt is then redone)."""

    success: bool | None = None
    final_image: np.ndarray | None = None
    task_reward: float | None = None
    info: dict = field(default_factory=dict)
    void_reason: str | None = None


class FinetuneEnv(Protocol):
    """An environment Algorithm 1 can practise in. ``reset`` must be deterministic in (episode, seed)
    for a resumed run to replay exactly (the simulator's object placement; a real robot ignores it)."""

    def reset(self, episode: int, seed: int) -> Observation: ...

    def prior(self, obs: Observation) -> GraspParams:
        """ξ from the affordance model, in the robot base frame."""
        ...

    def execute(self, grasp: GraspParams) -> EpisodeResult: ...


@dataclass
class RewardQuery:
    """What a reward source sees after an attempt."""

    episode: int
    attempt: int
    observation: Observation
    grasp: GraspParams
    result: EpisodeResult


RewardFn = Callable[[RewardQuery], "float | _Void"]


def task_reward(query: RewardQuery) -> "float | _Void":
    """The ``sim`` reward source: the environment's own task reward."""
    if query.result.task_reward is None:
        raise ValueError("reward source 'sim' needs an environment that reports EpisodeResult.task_reward")
    return float(query.result.task_reward)


class VoidLimitError(RuntimeError):
    """One episode was void ``max_void_attempts`` times in a row in this session. The log is intact and a
    new session resumes the run with a fresh allowance (the voids logged before do not count against it, so
    a lab run that piled up voids over days is never left unresumable)."""


@dataclass(frozen=True)
class FinetuneConfig:
    """A fine-tuning run: ``task`` name, ``seed`` (samples and resets derive from it), ``cem`` (Table 4),
    ``max_void_attempts`` voids of one episode in a row in one session before stopping (:class:`VoidLimitError`),
    ``save_images`` (PNG next to the log)."""

    task: str
    seed: int = 0
    cem: CEMConfig = field(default_factory=CEMConfig)
    max_void_attempts: int = 5
    save_images: bool = True

    def run_meta(self) -> dict:
        return {"format": "deft-finetune-run", "task": self.task, "seed": self.seed, "cem": self.cem.to_dict()}


@dataclass
class ProgressEvent:
    """Sent to the live display after every attempt."""

    episode: int
    total: int
    attempt: int
    void: bool
    reward: float | None
    success: bool | None
    elite_mean_reward: float
    sigma: dict          #: mean std per group (mu m, theta rad, hand rad) of D after this episode
    refit: bool          #: whether D was refit after this episode
    resumed_episodes: int


@dataclass
class FinetuneResult:
    """A finished run: all 'ok' records in order, the final D, the elites Ω (best first), and every attempt
    of the log in order (``attempts``: the void ones too)."""

    log_dir: Path
    records: list[EpisodeRecord]
    distribution: ResidualDistribution
    elites: list[EpisodeRecord]
    resumed_episodes: int
    attempts: list[EpisodeRecord] = field(default_factory=list)

    @property
    def rewards(self) -> np.ndarray:
        return np.array([r.reward for r in self.records], dtype=np.float64)


def env_seed(seed: int, episode: int, attempt: int) -> int:
    """The reset seed of an attempt: a pure function of the run seed, episode and attempt."""
    return int(np.random.default_rng([seed, episode, attempt, 7]).integers(0, 2**31 - 1))


def replay_state(config: FinetuneConfig, log: EpisodeLog) -> CEMState:
    """Rebuild Algorithm 1's state (including D) from the logged 'ok' episodes."""
    state = CEMState(config.cem)
    for r in log.ok_records():
        state.record(r.epsilon_array, r.reward)
    return state


def run_finetune(env: FinetuneEnv, reward_fn: RewardFn, config: FinetuneConfig, log_dir: str | Path,
                 progress_callback: Callable[[ProgressEvent], None] | None = None) -> FinetuneResult:
    """Run (or resume) Algorithm 1 for ``config.cem.total_episodes`` episodes, logging to ``log_dir``."""
    log = EpisodeLog(log_dir, config.run_meta())
    state = replay_state(config, log)
    resumed = state.episodes_done
    first_attempt: dict[int, int] = {}  # episode → its void attempts logged before this session
    while not state.finished:
        k = state.next_episode
        attempt = log.void_attempts(k)
        here = attempt - first_attempt.setdefault(k, attempt)
        if here >= config.max_void_attempts:
            raise VoidLimitError(
                f"episode {k} was void {here} times in a row (max_void_attempts={config.max_void_attempts}"
                f"{f'; {attempt} voids logged for it in all' if attempt != here else ''}). The run is kept: fix "
                f"what voids it (the reasons are in {log.path}) and run the same command again to resume")
        record = _run_attempt(env, reward_fn, config, log, state, k, attempt)
        log.append(record)
        refit = False
        if record.status == "ok":
            refit = state.record(record.epsilon_array, record.reward)
        if progress_callback is not None:
            progress_callback(ProgressEvent(
                episode=k, total=config.cem.total_episodes, attempt=attempt, void=record.status == "void",
                reward=record.reward, success=record.success, elite_mean_reward=state.elite_mean_reward(),
                sigma=state.distribution.group_sigma(), refit=refit, resumed_episodes=resumed))
    ok = log.ok_records()
    return FinetuneResult(log_dir=Path(log_dir), records=ok, distribution=state.distribution,
                          elites=[ok[i] for i in state.elites()], resumed_episodes=resumed,
                          attempts=list(log.records))


def _run_attempt(env: FinetuneEnv, reward_fn: RewardFn, config: FinetuneConfig, log: EpisodeLog,
                 state: CEMState, k: int, attempt: int) -> EpisodeRecord:
    timings: dict[str, float] = {}
    started = time.time()
    t = time.perf_counter()
    seed_k = env_seed(config.seed, k, attempt)
    obs = env.reset(k, seed_k)
    timings["reset_s"] = time.perf_counter() - t
    t = time.perf_counter()
    xi = env.prior(obs)
    if not isinstance(xi, GraspParams):
        raise TypeError(f"env.prior must return GraspParams, got {type(xi).__name__}")
    timings["prior_s"] = time.perf_counter() - t
    distribution = state.distribution
    eps = distribution.sample(config.seed, k, attempt)
    grasp = xi + eps
    t = time.perf_counter()
    result = env.execute(grasp)
    timings["execute_s"] = time.perf_counter() - t
    reward: Any = VOID
    void_reason = result.void_reason
    if void_reason is None:
        t = time.perf_counter()
        reward = reward_fn(RewardQuery(k, attempt, obs, grasp, result))
        timings["reward_s"] = time.perf_counter() - t
        if reward is VOID:
            void_reason = "reward source marked the attempt void"
        else:
            reward = float(reward)
            if not np.isfinite(reward):
                raise ValueError(f"episode {k}: the reward source returned a non-finite reward {reward}")
    images = {}
    if config.save_images:
        images["initial"] = log.save_image(k, attempt, "initial", obs.image)
        if result.final_image is not None:
            images["final"] = log.save_image(k, attempt, "final", result.final_image)
    timings["total_s"] = time.time() - started
    is_void = void_reason is not None
    return EpisodeRecord(
        task=config.task, episode=k, attempt=attempt, status="void" if is_void else "ok", env_seed=seed_k,
        xi=xi.to_vector().tolist(), epsilon=eps.tolist(), executed=grasp.to_vector().tolist(),
        reward=None if is_void else reward, success=None if result.success is None else bool(result.success),
        distribution=distribution.to_dict(), timings=timings, images=images, info=_info(result, obs),
        void_reason=void_reason, started_at=started)


def _info(result: EpisodeResult, obs: Observation) -> dict:
    """The record's ``info``: the environment's details, plus the initial image's pinhole camera (``camera``:
    ``K`` and ``T_base_camera`` as lists) when the observation carries one — the simulator and the lab robot
    do — so that a picture of the run can draw where μ went on I₀ (deft_core.finetune.sheet)."""
    info = dict(result.info)
    camera = camera_of(obs)
    if camera is not None and "camera" not in info:
        info["camera"] = camera
    return info


def camera_of(obs: Observation) -> dict | None:
    """``{"K": 3×3, "T_base_camera": 4×4}`` (lists) from ``obs.extras``, or None (see :func:`camera_matrices`)."""
    matrices = camera_matrices(obs.extras)
    return None if matrices is None else {"K": matrices[0].tolist(), "T_base_camera": matrices[1].tolist()}


def camera_matrices(camera) -> tuple[np.ndarray, np.ndarray] | None:
    """``(K, T_base_camera)`` as float arrays from a mapping with those keys (an observation's extras, a
    record's ``info["camera"]``), or None when it is not a mapping or either is absent or not a finite matrix
    of shape 3×3 / 4×4."""
    if not isinstance(camera, dict):
        return None
    try:
        K = np.asarray(camera.get("K"), dtype=np.float64)
        T = np.asarray(camera.get("T_base_camera"), dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if K.shape != (3, 3) or T.shape != (4, 4) or not (np.all(np.isfinite(K)) and np.all(np.isfinite(T))):
        return None
    return K, T
