"""CQL's policy: SB3's DQNPolicy (a Q-network and its target) on Discrete actions, SB3's SACPolicy
(a squashed Gaussian actor, twin critics and their targets) on Box actions, chosen by the action
space, so one ``MlpPolicy`` serves both kinds of CQL."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.sac.policies import SACPolicy


class CQLPolicy(BasePolicy):
    """The networks CQL learns, in SB3's own policy classes.

    :param observation_space: Observation space
    :param action_space: Action space: Discrete (DQNPolicy) or Box (SACPolicy)
    :param lr_schedule: Learning rate schedule (the Q-network's, or the critics' and the actor's at first)
    :param policy_kwargs: the rest goes to DQNPolicy or SACPolicy (``net_arch``, ``n_critics``, ...)
    """

    inner: DQNPolicy | SACPolicy

    def __init__(self, observation_space: spaces.Space[Any], action_space: spaces.Space[Any], lr_schedule: Schedule,
                 **policy_kwargs: Any) -> None:
        continuous = isinstance(action_space, spaces.Box)
        super().__init__(observation_space, action_space, squash_output=continuous)
        inner_class = SACPolicy if continuous else DQNPolicy
        if "optimizer_class" not in policy_kwargs and "optimizer_kwargs" not in policy_kwargs:
            # Adam's fused kernel: one call per step instead of a dozen per parameter (small networks, CPU)
            policy_kwargs = {**policy_kwargs, "optimizer_kwargs": {"fused": True}}
        #: the SB3 policy doing the work: ``inner.q_net``/``q_net_target`` or ``inner.actor``/``critic``/``critic_target``
        self.inner = inner_class(observation_space, action_space, lr_schedule, **policy_kwargs)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        # DQN: the greedy action; SAC: the squashed mean (deterministic) or a sample, in [-1, 1]
        return self.inner._predict(observation, deterministic=deterministic)

    def forward(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._predict(observation, deterministic=deterministic)

    def set_training_mode(self, mode: bool) -> None:
        self.inner.set_training_mode(mode)
        self.training = mode


MlpPolicy = CQLPolicy
