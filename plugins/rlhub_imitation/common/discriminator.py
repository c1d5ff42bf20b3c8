"""What the discriminators read: a batch of transitions as tensors, encoded for a network.

Observations are standardised with the demonstrations' mean and spread (saved with the network, so
the reward means the same after loading); Discrete actions become one-hot vectors and Box actions
are rescaled to [-1, 1], so expert and generator actions look alike whatever their bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from torch import nn

from rlhub_imitation.common.reward_env import Transitions


@dataclass(frozen=True)
class TransitionTensors:
    """A batch of transitions on a device: observations and next observations (B, *shape) float32,
    actions (B,) int64 (Discrete) or (B, action_dim) float32 (Box, the environment's scale),
    terminations (B,) float32."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    terminations: th.Tensor

    @classmethod
    def from_arrays(cls, transitions: Transitions, action_space: spaces.Space[Any], device: th.device) -> TransitionTensors:
        discrete = isinstance(action_space, spaces.Discrete)
        actions = th.as_tensor(np.asarray(transitions.actions), device=device)
        return cls(
            th.as_tensor(transitions.observations, dtype=th.float32, device=device),
            actions.long().reshape(-1) if discrete else actions.float().reshape(len(actions), -1),
            th.as_tensor(transitions.next_observations, dtype=th.float32, device=device),
            th.as_tensor(transitions.terminations, dtype=th.float32, device=device),
        )


class TransitionEncoder(nn.Module):
    """Flat, standardised observations and encoded actions.

    :param observation_space: a Box
    :param action_space: Discrete or Box
    :param observation_mean: the demonstrations' mean observation
    :param observation_std: their spread (floored, so a constant feature stays finite)
    """

    def __init__(self, observation_space: spaces.Space[Any], action_space: spaces.Space[Any],
                 observation_mean: np.ndarray, observation_std: np.ndarray) -> None:
        super().__init__()
        self.observation_size = int(np.prod(observation_space.shape))
        self.register_buffer("observation_mean", th.as_tensor(observation_mean, dtype=th.float32).reshape(-1))
        self.register_buffer("observation_std", th.as_tensor(np.maximum(observation_std, 1e-3),
                                                             dtype=th.float32).reshape(-1))
        self.n_actions = int(action_space.n) if isinstance(action_space, spaces.Discrete) else None
        if self.n_actions is None:
            low, high = (th.as_tensor(bound, dtype=th.float32).reshape(-1) for bound in (action_space.low, action_space.high))
            bounded = th.isfinite(low) & th.isfinite(high)
            self.register_buffer("action_center", th.where(bounded, (high + low) / 2, th.zeros_like(low)))
            self.register_buffer("action_half_range", th.where(bounded, (high - low) / 2, th.ones_like(low)))
            self.action_size = int(np.prod(action_space.shape))
        else:
            self.action_size = self.n_actions

    def observations(self, observations: th.Tensor) -> th.Tensor:
        return (observations.reshape(len(observations), -1) - self.observation_mean) / self.observation_std

    def actions(self, actions: th.Tensor) -> th.Tensor:
        if self.n_actions is not None:
            return nn.functional.one_hot(actions, self.n_actions).float()
        return (actions.reshape(len(actions), -1) - self.action_center) / self.action_half_range


def mlp(input_size: int, net_arch: list[int], output_size: int = 1) -> nn.Sequential:
    """Linear layers of widths ``net_arch`` with ReLU between them, then a linear output."""
    layers: list[nn.Module] = []
    for width in net_arch:
        layers += [nn.Linear(input_size, width), nn.ReLU()]
        input_size = width
    layers.append(nn.Linear(input_size, output_size))
    return nn.Sequential(*layers)
