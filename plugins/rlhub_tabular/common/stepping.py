"""Stepping the environments of a tabular learner, one Gymnasium-style result per sub-environment.

Two ways, one interface (``step``, ``reset``, ``observations``): :class:`DirectSteps` for a plain
``DummyVecEnv`` (fast), :class:`VecEnvSteps` for any other ``VecEnv``; :func:`env_steps` picks one.
:class:`Rollout` is where each sub-environment is, and what callbacks read.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from rlhub_tabular.common.indexing import StateIndexer

#: ``(observation, reward, terminated, truncated, info)`` of one sub-environment, as Gymnasium's ``step``.
Step = tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]


class DirectSteps:
    """Steps the sub-environments of a plain ``DummyVecEnv`` directly.

    ``DummyVecEnv.step`` deep-copies the infos and copies observations into buffers on every step,
    which costs more than the env itself on toy-text environments; a tabular update needs none of
    it. Resets happen as ``DummyVecEnv`` does them (``reset()`` without a seed after the first).
    """

    def __init__(self, venv: DummyVecEnv, action_start: int, indexer: StateIndexer) -> None:
        self.envs = venv.envs
        self.action_start = action_start
        self.indexer = indexer

    def step(self, actions: list[int]) -> list[Step]:
        if self.action_start:
            return [env.step(action + self.action_start) for env, action in zip(self.envs, actions)]
        return [env.step(action) for env, action in zip(self.envs, actions)]

    def reset(self, index: int) -> Any:
        """The first observation of the next episode of sub-environment ``index``."""
        return self.envs[index].reset()[0]

    def observations(self, states: list[int]) -> Any:
        """The observations the environments are at, in VecEnv form (for ``_last_obs``)."""
        # DummyVecEnv's own buffers are stale after direct steps: rebuild from the state rows.
        return self.indexer.observations(np.asarray(states, dtype=np.int64))


class VecEnvSteps:
    """Steps any ``VecEnv`` (subprocess, wrapped) through its own API.

    :param last_observations: the observations the environments are at (the algorithm's ``_last_obs``)
    """

    def __init__(self, venv: VecEnv, action_start: int, last_observations: Any) -> None:
        self.venv = venv
        self.action_start = action_start
        self._observations = last_observations

    def step(self, actions: list[int]) -> list[Step]:
        observations, rewards, dones, infos = self.venv.step(np.asarray(actions, dtype=np.int64) + self.action_start)
        self._observations = observations
        results: list[Step] = []
        for index, (reward, done, info) in enumerate(zip(rewards, dones, infos)):
            if done:
                truncated = bool(info.get("TimeLimit.truncated", False))
                results.append((info["terminal_observation"], float(reward), not truncated, truncated, info))
            else:
                results.append((unstack(observations, index), float(reward), False, False, info))
        return results

    def reset(self, index: int) -> Any:
        """The first observation of the next episode (the VecEnv has reset it already)."""
        return unstack(self._observations, index)

    def observations(self, states: list[int]) -> Any:
        """The observations the environments are at, in VecEnv form (for ``_last_obs``)."""
        return self._observations


def env_steps(venv: VecEnv, action_start: int, indexer: StateIndexer, last_observations: Any) -> DirectSteps | VecEnvSteps:
    """Direct steps for a plain ``DummyVecEnv`` (not a subclass, not wrapped), the VecEnv API otherwise."""
    if type(venv) is DummyVecEnv:
        return DirectSteps(venv, action_start, indexer)
    return VecEnvSteps(venv, action_start, last_observations)


def unstack(observations: Any, index: int) -> Any:
    """One sub-environment's observation from a VecEnv batch (an array, or a tuple of arrays)."""
    if isinstance(observations, tuple):
        return tuple(values[index] for values in observations)
    return observations[index]


class Rollout:
    """Where each sub-environment is: its state row and next action, plus the arrays callbacks read
    (``dones``, ``infos``, ``rewards``) as ``self.locals``, updated in place every step."""

    def __init__(self, n_envs: int) -> None:
        self.states = [0] * n_envs
        self.actions = [0] * n_envs
        self.dones = np.zeros(n_envs, dtype=bool)
        self.rewards = np.zeros(n_envs, dtype=np.float64)
        self.infos: list[dict] = [{} for _ in range(n_envs)]

    def callback_locals(self) -> dict[str, Any]:
        return {"dones": self.dones, "infos": self.infos, "rewards": self.rewards}
