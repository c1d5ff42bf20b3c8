"""Prioritized experience replay (Schaul et al. 2015, proportional variant), with n-step returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize

from rlhub_dqn_family.common.sum_tree import SumTree


class PrioritizedReplayBufferSamples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` fields (read by name, so SB3's algorithms take it as is), plus
    each sample's importance weight and its place in the buffer for :meth:`update_priorities`."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None
    weights: th.Tensor
    leaves: np.ndarray


class PrioritizedReplayBuffer(ReplayBuffer):
    """
    Replay buffer that samples transition ``i`` with probability ``p_i^alpha / sum_k p_k^alpha``

    New transitions get the largest priority seen so far; :meth:`update_priorities` sets
    ``p_i = |delta_i| + epsilon`` from the TD errors of a sampled batch. Each sample carries the
    importance weight ``(N P(i))^-beta``, divided by the batch's largest, with ``beta`` annealed
    linearly from ``beta`` to 1 as :attr:`progress` goes from 0 to 1 (an algorithm sets it from its
    training progress). ``n_steps > 1`` gives n-step returns, cut at episode ends, with the
    bootstrap discount in ``discounts`` as SB3's ``NStepReplayBuffer`` does.

    Every (time step, env) pair is a leaf of one :class:`~rlhub_dqn_family.common.sum_tree.SumTree`,
    so sampling and updating cost O(batch x log(size)) in vectorised numpy.

    Paper: Schaul et al. (2015), "Prioritized Experience Replay", https://arxiv.org/abs/1511.05952

    :param buffer_size: Max number of transitions in the buffer
    :param observation_space: Observation space
    :param action_space: Action space
    :param device: PyTorch device
    :param n_envs: Number of parallel environments
    :param optimize_memory_usage: Not supported (each transition keeps its next observation)
    :param handle_timeout_termination: Treat time-limit truncations as non-terminal
    :param alpha: How much prioritization is used (0: uniform)
    :param beta: Importance-sampling exponent at the start of training (annealed to 1)
    :param epsilon: Added to each |TD error| so no transition's priority is zero
    :param n_steps: Steps of rewards summed per transition (1: one-step TD)
    :param gamma: Discount of the n-step returns
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        alpha: float = 0.6,
        beta: float = 0.4,
        epsilon: float = 1e-6,
        n_steps: int = 1,
        gamma: float = 0.99,
    ) -> None:
        if optimize_memory_usage:
            raise ValueError("PrioritizedReplayBuffer does not support optimize_memory_usage=True: "
                             "leave it False (each transition keeps its next observation)")
        if alpha < 0 or not 0 <= beta <= 1 or epsilon <= 0 or n_steps < 1:
            raise ValueError(f"PrioritizedReplayBuffer needs alpha >= 0, 0 <= beta <= 1, epsilon > 0 and "
                             f"n_steps >= 1; got alpha={alpha}, beta={beta}, epsilon={epsilon}, n_steps={n_steps}")
        super().__init__(buffer_size, observation_space, action_space, device, n_envs=n_envs,
                         handle_timeout_termination=handle_timeout_termination)
        self.alpha, self.initial_beta, self.epsilon = alpha, beta, epsilon
        self.n_steps, self.gamma = n_steps, gamma
        self.tree = SumTree(self.buffer_size * self.n_envs)
        self.max_priority = 1.0
        self.progress: Callable[[], float] = lambda: 0.0
        self.rng = np.random  # the global generator, which SB3 seeds with the algorithm
        self.last_batch: PrioritizedReplayBufferSamples | None = None  # for PriorityUpdates

    def __getstate__(self) -> dict[str, Any]:
        # Saved with SB3's save_replay_buffer: the links to a live algorithm stay behind.
        state = dict(self.__dict__)
        for key in ("progress", "rng", "last_batch"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.progress, self.rng, self.last_batch = (lambda: 0.0), np.random, None

    @property
    def beta(self) -> float:
        return self.initial_beta + (1.0 - self.initial_beta) * min(1.0, max(0.0, self.progress()))

    def add(self, obs: np.ndarray, next_obs: np.ndarray, action: np.ndarray, reward: np.ndarray,
            done: np.ndarray, infos: list[dict[str, Any]]) -> None:
        leaves = self.pos * self.n_envs + np.arange(self.n_envs)
        super().add(obs, next_obs, action, reward, done, infos)
        self.tree.update(leaves, np.full(self.n_envs, self.max_priority ** self.alpha))

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> PrioritizedReplayBufferSamples:
        leaves = self.tree.sample(batch_size, self.rng)
        positions, env_indices = np.divmod(leaves, self.n_envs)
        probabilities = self.tree[leaves] / self.tree.total
        weights = (self.size() * self.n_envs * probabilities) ** -self.beta
        samples = self._gather(positions, env_indices, env)
        self.last_batch = PrioritizedReplayBufferSamples(
            *samples, weights=self.to_torch((weights / weights.max())[:, None].astype(np.float32)), leaves=leaves)
        return self.last_batch

    def update_priorities(self, leaves: np.ndarray, td_errors: np.ndarray | th.Tensor) -> None:
        """Set the sampled transitions' priorities from their TD errors (any shape that flattens to one per leaf)."""
        if isinstance(td_errors, th.Tensor):
            td_errors = td_errors.detach().cpu().numpy()
        priorities = np.abs(np.asarray(td_errors, dtype=np.float64)).reshape(-1) + self.epsilon
        self.tree.update(leaves, priorities ** self.alpha)
        self.max_priority = max(self.max_priority, float(priorities.max()))

    def _gather(self, positions: np.ndarray, env_indices: np.ndarray, env: VecNormalize | None) -> tuple:
        """The transitions at ``(positions, env_indices)``: n-step rewards up to the first episode end
        (or the newest step, whose successor is not stored yet), and the observation that ends them."""
        # Not SB3's NStepReplayBuffer._get_samples: it draws the env of each sample itself, where here
        # the sum tree has chosen each (step, env) leaf.
        steps = np.arange(self.n_steps)
        sequence = (positions[:, None] + steps) % self.buffer_size  # [batch, n_steps]
        ends = self.dones[sequence, env_indices[:, None]].astype(bool)
        if self.handle_timeout_termination:
            ends |= self.timeouts[sequence, env_indices[:, None]].astype(bool)
        newest = (self.pos - 1) % self.buffer_size
        ends |= sequence == newest  # the sequence may not run past the newest stored step
        length = np.where(ends.any(axis=1), ends.argmax(axis=1), self.n_steps - 1) + 1
        inside = steps[None, :] < length[:, None]
        rewards = self._normalize_reward(self.rewards[sequence, env_indices[:, None]], env)
        n_step_rewards = (rewards * self.gamma ** steps * inside).sum(axis=1, keepdims=True)
        last = sequence[np.arange(len(positions)), length - 1]
        dones = self.dones[last, env_indices]
        if self.handle_timeout_termination:
            dones = dones * (1 - self.timeouts[last, env_indices])
        return (
            self.to_torch(self._normalize_obs(self.observations[positions, env_indices], env)),
            self.to_torch(self.actions[positions, env_indices]),
            self.to_torch(self._normalize_obs(self.next_observations[last, env_indices], env)),
            self.to_torch(dones[:, None].astype(np.float32)),
            self.to_torch(n_step_rewards.astype(np.float32)),
            self.to_torch((self.gamma ** length[:, None]).astype(np.float32)) if self.n_steps > 1 else None,
        )
