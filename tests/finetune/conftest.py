"""The library's toy environment (deft_core.finetune.toy_env) with call counting, crash injection and
void injection for the loop and resume tests."""

from __future__ import annotations

import pytest

from deft_core.finetune.loop import VOID
from deft_core.finetune.toy_env import ToyEnv as _LibraryToyEnv


class SimulatedCrash(RuntimeError):
    pass


class ToyEnv(_LibraryToyEnv):
    def __init__(self, crash_at: tuple[str, int] | None = None, void_at=frozenset()):
        super().__init__()
        self.crash_at = crash_at            # (method, n): raise on the n-th call (1-based) of that method
        self.void_at = set(void_at)         # (episode, attempt) pairs the reward source marks void
        self.calls = {"reset": 0, "prior": 0, "execute": 0, "reward": 0}

    def _tick(self, name: str) -> None:
        self.calls[name] += 1
        if self.crash_at == (name, self.calls[name]):
            raise SimulatedCrash(f"crash in {name} call {self.calls[name]}")

    def reset(self, episode, seed):
        self._tick("reset")
        return super().reset(episode, seed)

    def prior(self, obs):
        self._tick("prior")
        return super().prior(obs)

    def execute(self, grasp):
        self._tick("execute")
        return super().execute(grasp)

    def reward(self, query):
        self._tick("reward")
        if (query.episode, query.attempt) in self.void_at:
            return VOID
        return query.result.task_reward


@pytest.fixture
def toy_env_cls():
    return ToyEnv


@pytest.fixture
def crash_cls():
    return SimulatedCrash
