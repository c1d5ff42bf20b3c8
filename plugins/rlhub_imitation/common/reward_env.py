"""The generator's environment: the real one, with its rewards replaced by a learned reward and its
transitions kept for the discriminator.

The environment's own reward never reaches the generator. It is not lost either: the ``Monitor``
below this wrapper still records it per episode, so SB3's ``rollout/ep_rew_mean`` (and rlhub's
evaluations, on their own environment) report the true return while the generator learns from the
learned one, whose episode returns this wrapper tracks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn


@dataclass(frozen=True)
class Transitions:
    """Transitions in arrays, leading axis the transition.

    :param observations: (N, *observation_shape)
    :param actions: (N,) or (N, action_dim), as the environment received them
    :param next_observations: (N, *observation_shape), the terminal observation where an episode ended
    :param terminations: (N,) float32, 1 where the episode terminated (not where a time limit cut it)
    """

    observations: np.ndarray
    actions: np.ndarray
    next_observations: np.ndarray
    terminations: np.ndarray

    def __len__(self) -> int:
        return len(self.observations)


#: ``reward(transitions) -> (N,) rewards``
RewardFunction = Callable[[Transitions], np.ndarray]


class LearnedRewardVecEnv(VecEnvWrapper):
    """Step ``venv``, but reward each transition with ``reward_function`` and keep it (the latest
    ``capacity`` steps of every sub-environment) until :meth:`take_transitions`.

    :param venv: the environment, observations as arrays (Box spaces)
    :param reward_function: the learned reward of a batch of transitions
    :param capacity: steps kept at most (per sub-environment) between two ``take_transitions``; the
        oldest go first, so memory stays bounded if nobody takes them
    """

    def __init__(self, venv: VecEnv, reward_function: RewardFunction, capacity: int) -> None:
        super().__init__(venv)
        self.reward_function = reward_function
        self._steps: deque[Transitions] = deque(maxlen=capacity)
        self._last_observations: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._learned_returns = np.zeros(self.num_envs)
        #: learned returns of the latest finished episodes
        self.episode_learned_returns: deque[float] = deque(maxlen=100)

    def reset(self) -> VecEnvObs:
        observations = self.venv.reset()
        self._last_observations = np.asarray(observations)
        self._learned_returns[:] = 0.0
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        observations, _true_rewards, dones, infos = self.venv.step_wait()
        assert self._last_observations is not None and self._actions is not None, "step before reset"
        next_observations = np.array(observations, copy=True)
        terminations = np.zeros(self.num_envs, dtype=np.float32)
        for index in np.flatnonzero(dones):
            next_observations[index] = infos[index]["terminal_observation"]
            terminations[index] = not infos[index].get("TimeLimit.truncated", False)
        step = Transitions(self._last_observations, self._actions, next_observations, terminations)
        rewards = np.asarray(self.reward_function(step), dtype=np.float32).reshape(self.num_envs)
        self._steps.append(step)
        self._learned_returns += rewards
        for index in np.flatnonzero(dones):
            self.episode_learned_returns.append(float(self._learned_returns[index]))
            self._learned_returns[index] = 0.0
        self._last_observations = np.asarray(observations)
        return observations, rewards, dones, infos

    def take_transitions(self) -> Transitions:
        """Every transition kept since the last call (all sub-environments), and forget them."""
        steps = list(self._steps)
        self._steps.clear()
        if not steps:
            raise RuntimeError("no transitions since the last take: step the environment first")
        return Transitions(*(np.concatenate([getattr(step, name) for step in steps])
                             for name in ("observations", "actions", "next_observations", "terminations")))
