"""The generator's environment: rewards from the discriminator (:class:`rlhub.common.learned_reward.RewardVecEnv`),
and the transitions kept for the discriminator's next round."""

from __future__ import annotations

from collections import deque

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from rlhub.common.learned_reward import RewardFunction, RewardVecEnv, Transitions


class LearnedRewardVecEnv(RewardVecEnv):
    """A :class:`RewardVecEnv` that keeps the latest ``capacity`` steps (of all sub-environments) until
    :meth:`take_transitions`; the oldest go first, so memory stays bounded if nobody takes them.

    :param venv: the environment, observations as arrays (Box spaces)
    :param reward_function: the learned reward of a batch of transitions
    :param capacity: steps kept at most between two ``take_transitions``
    """

    def __init__(self, venv: VecEnv, reward_function: RewardFunction, capacity: int) -> None:
        super().__init__(venv, reward_function)
        self._steps: deque[Transitions] = deque(maxlen=capacity)

    def _record(self, step: Transitions) -> None:
        self._steps.append(step)

    def take_transitions(self) -> Transitions:
        """Every transition kept since the last call, and forget them."""
        steps = list(self._steps)
        self._steps.clear()
        if not steps:
            raise RuntimeError("no transitions since the last take: step the environment first")
        return Transitions(*(np.concatenate([getattr(step, name) for step in steps])
                             for name in ("observations", "actions", "next_observations", "terminations")))
