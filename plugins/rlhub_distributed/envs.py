"""``rlhub/SlowCartPole-v1``: CartPole-v1 that sleeps 1 ms a step, so stepping envs costs what a
simulator would: the env on which the scaling of rollout workers is measured (a sleep, not busy
work, so that it measures parallel stepping rather than how many cores the machine has)."""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym


class StepDelay(gym.Wrapper):
    """Sleeps ``seconds`` in every step."""

    def __init__(self, env: gym.Env, seconds: float = 0.001) -> None:
        if not 0 <= seconds <= 1:
            raise ValueError(f"seconds must be in [0, 1], got {seconds}")
        super().__init__(env)
        self.seconds = seconds

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        time.sleep(self.seconds)
        return self.env.step(action)


def make_slow_cartpole(seconds: float = 0.001, **kwargs: Any) -> gym.Env:
    """CartPole-v1 (its 500-step limit included) with :class:`StepDelay`."""
    return StepDelay(gym.make("CartPole-v1", **kwargs), seconds=seconds)
