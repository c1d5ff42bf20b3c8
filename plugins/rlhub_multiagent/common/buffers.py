"""The replay buffer all agents share: one row per env step, the whole joint transition in it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.utils import get_device

from rlhub_multiagent.common.joint_spaces import JointSpaces


@dataclass(frozen=True)
class JointBatch:
    """A minibatch of joint transitions (leading axis: transition).

    :param observations: (B, observation_size) every agent's observation, side by side
    :param actions: (B, action_size) every agent's action as the networks write it
    :param rewards: (B, n_agents) each agent's reward
    :param next_observations: (B, observation_size)
    :param terminations: (B, 1) 1 where the episode terminated (a time limit's truncation is
        bootstrapped, as the MADDPG authors' code does at ``max_episode_len``)
    """

    observations: th.Tensor
    actions: th.Tensor
    rewards: th.Tensor
    next_observations: th.Tensor
    terminations: th.Tensor


class MultiAgentReplayBuffer:
    """A ring buffer of joint transitions, each a row of one float32 matrix, so that a minibatch is one
    NumPy gather and one tensor (per-agent arrays would cost a gather per agent and field).

    Takes SB3's replay buffer arguments, so it is OffPolicyAlgorithm's ``replay_buffer_class``.
    The per-agent rewards come from each step's ``info["agent_rewards"]`` (:mod:`rlhub.parallel_envs`).
    """

    def __init__(self, buffer_size: int, observation_space: spaces.Dict, action_space: spaces.Dict,
                 device: th.device | str = "auto", n_envs: int = 1, optimize_memory_usage: bool = False,
                 handle_timeout_termination: bool = True) -> None:
        self.joint = JointSpaces(observation_space, action_space)
        self.device = get_device(device)
        self.n_envs = n_envs
        self.buffer_size = max(int(buffer_size), 1)
        self.handle_timeout_termination = handle_timeout_termination
        joint = self.joint
        widths = [joint.observation_size, joint.action_size, len(joint), joint.observation_size, 1]
        bounds = np.cumsum([0, *widths])
        self._columns = [slice(int(start), int(stop)) for start, stop in zip(bounds[:-1], bounds[1:])]
        self.storage = np.zeros((self.buffer_size, int(bounds[-1])), dtype=np.float32)
        self.pos = 0
        self.full = False

    def size(self) -> int:
        return self.buffer_size if self.full else self.pos

    def reset(self) -> None:
        self.pos, self.full = 0, False

    def add(self, obs: dict[str, np.ndarray], next_obs: dict[str, np.ndarray], action: np.ndarray,
            reward: np.ndarray, done: np.ndarray, infos: list[dict[str, Any]]) -> None:
        """Store one step of every env (SB3's ``ReplayBuffer.add`` arguments).

        :param action: (n_envs, action_size) the joint actions as the networks write them
        :param reward: the summed rewards, unused: each agent's own is in ``infos``
        """
        observations, actions, rewards, next_observations, terminations = self._columns
        rows = (self.pos + np.arange(self.n_envs)) % self.buffer_size
        block = self.storage[rows]
        block[:, observations] = self.joint.join_observations(obs)
        block[:, actions] = action
        block[:, rewards] = [[info["agent_rewards"][agent] for agent in self.joint.agents] for info in infos]
        block[:, next_observations] = self.joint.join_observations(next_obs)
        timeouts = np.array([info.get("TimeLimit.truncated", False) for info in infos], dtype=bool)
        ended = np.asarray(done, dtype=bool) & ~(timeouts if self.handle_timeout_termination else False)
        block[:, terminations] = ended.reshape(-1, 1)
        self.storage[rows] = block
        self.pos = (self.pos + self.n_envs) % self.buffer_size
        self.full = self.full or self.pos < self.n_envs

    def sample(self, batch_size: int, env: Any = None) -> JointBatch:
        rows = np.random.randint(0, self.size(), size=batch_size)
        packed = th.as_tensor(self.storage[rows], device=self.device)
        observations, actions, rewards, next_observations, terminations = (packed[:, column] for column in self._columns)
        return JointBatch(observations, actions, rewards, next_observations, terminations)
