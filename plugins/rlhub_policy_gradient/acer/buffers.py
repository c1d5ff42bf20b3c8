"""ACER's storage: a rollout of trajectory segments, and the replay buffer of past ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rlhub_policy_gradient.common.rollout import Step


@dataclass
class Segments:
    """A batch of trajectory segments of ``n_steps`` transitions each (leading axes: segment, step).

    ``observations`` has ``n_steps + 1`` entries per segment: the last one bootstraps the return.
    ``behaviour`` holds what the behaviour policy ``mu`` knew about each step: its probability
    vector (discrete actions) or its Gaussian's mean and log standard deviation, concatenated
    (continuous actions), from which its density at any action is recomputed. ``truncated`` marks
    the steps after which a time limit cut the episode (``dones`` is set there too), and
    ``final_observations`` holds the observation it was cut at (zeros elsewhere): the update
    bootstraps those steps with the current critic.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    truncated: np.ndarray
    final_observations: np.ndarray
    behaviour: np.ndarray

    @classmethod
    def zeros(cls, n_segments: int, n_steps: int, observation_shape: tuple[int, ...], observation_dtype: Any,
              action_shape: tuple[int, ...], action_dtype: Any, behaviour_dim: int) -> Segments:
        """Segments of zeros, to fill step by step (see :meth:`record`)."""
        return cls(
            observations=np.zeros((n_segments, n_steps + 1, *observation_shape), dtype=observation_dtype),
            actions=np.zeros((n_segments, n_steps, *action_shape), dtype=action_dtype),
            rewards=np.zeros((n_segments, n_steps), dtype=np.float32),
            dones=np.zeros((n_segments, n_steps), dtype=np.float32),
            truncated=np.zeros((n_segments, n_steps), dtype=np.float32),
            final_observations=np.zeros((n_segments, n_steps, *observation_shape), dtype=observation_dtype),
            behaviour=np.zeros((n_segments, n_steps, behaviour_dim), dtype=np.float32),
        )

    @property
    def n_transitions(self) -> int:
        return int(self.rewards.size)

    def record(self, step_index: int, step: Step) -> None:
        """Write one step of every environment (one segment per environment) at ``step_index``."""
        if step.behaviour is None:
            raise ValueError("ACER's segments need the behaviour policy of every step")
        self.observations[:, step_index] = step.observations
        self.actions[:, step_index] = step.actions
        self.rewards[:, step_index] = step.rewards
        self.dones[:, step_index] = step.dones
        self.truncated[:, step_index] = step.truncated
        self.final_observations[:, step_index] = step.final_observations
        self.behaviour[:, step_index] = step.behaviour


class SegmentReplayBuffer:
    """A FIFO store of ACER's rollouts: one segment of ``n_steps`` per environment per rollout.

    The observations a time limit cut episodes at are kept apart, only where there was a cut, so
    they cost memory in proportion to the time limits hit, not to the buffer's size.

    :param capacity: number of transitions to keep (all environments together)
    :param n_steps: length of a segment
    :param n_envs: segments per rollout
    :param observation_shape: shape of one observation
    :param observation_dtype: dtype of the observations
    :param action_shape: shape of one action
    :param action_dtype: dtype of the actions
    :param behaviour_dim: length of the behaviour policy's description of one step
    """

    def __init__(self, capacity: int, n_steps: int, n_envs: int, observation_shape: tuple[int, ...],
                 observation_dtype: Any, action_shape: tuple[int, ...], action_dtype: Any,
                 behaviour_dim: int) -> None:
        self.n_rollouts = max(capacity // (n_steps * n_envs), 1)
        self.n_steps = n_steps
        self.n_envs = n_envs
        self.observation_shape = observation_shape
        self.observation_dtype = observation_dtype
        shape = (self.n_rollouts, n_envs)
        self.observations = np.zeros((*shape, n_steps + 1, *observation_shape), dtype=observation_dtype)
        self.actions = np.zeros((*shape, n_steps, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros((*shape, n_steps), dtype=np.float32)
        self.dones = np.zeros((*shape, n_steps), dtype=np.float32)
        self.truncated = np.zeros((*shape, n_steps), dtype=np.float32)
        self.behaviour = np.zeros((*shape, n_steps, behaviour_dim), dtype=np.float32)
        #: Per stored rollout: (environment, step) -> the observation a time limit cut the episode at.
        self.final_observations: list[dict[tuple[int, int], np.ndarray]] = [{} for _ in range(self.n_rollouts)]
        self.position = 0
        self.full = False

    @property
    def n_transitions(self) -> int:
        return (self.n_rollouts if self.full else self.position) * self.n_envs * self.n_steps

    def add(self, rollout: Segments) -> None:
        """Store a rollout (one segment per environment), overwriting the oldest when full."""
        for name in ("observations", "actions", "rewards", "dones", "truncated", "behaviour"):
            getattr(self, name)[self.position] = getattr(rollout, name)
        self.final_observations[self.position] = {
            (int(env), int(step)): rollout.final_observations[env, step].copy()
            for env, step in zip(*np.nonzero(rollout.truncated), strict=True)
        }
        self.position = (self.position + 1) % self.n_rollouts
        self.full = self.full or self.position == 0

    def sample(self, n_segments: int, rng: np.random.Generator) -> Segments:
        """``n_segments`` segments drawn uniformly (with replacement) from all stored ones."""
        stored = self.n_rollouts if self.full else self.position
        if stored == 0:
            raise RuntimeError("the replay buffer is empty")
        rollouts = rng.integers(0, stored, size=n_segments)
        envs = rng.integers(0, self.n_envs, size=n_segments)
        final_observations = np.zeros((n_segments, self.n_steps, *self.observation_shape),
                                      dtype=self.observation_dtype)
        for index, (rollout, env) in enumerate(zip(rollouts, envs, strict=True)):
            for (cut_env, step), observation in self.final_observations[rollout].items():
                if cut_env == env:
                    final_observations[index, step] = observation
        return Segments(
            observations=self.observations[rollouts, envs],
            actions=self.actions[rollouts, envs],
            rewards=self.rewards[rollouts, envs],
            dones=self.dones[rollouts, envs],
            truncated=self.truncated[rollouts, envs],
            final_observations=final_observations,
            behaviour=self.behaviour[rollouts, envs],
        )
