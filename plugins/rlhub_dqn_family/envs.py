"""``rlhub/DiscretePendulum-v1``: Pendulum-v1 with its torque discretised into 11 actions.

Seed 002's worked example of DQN on a continuous task: action ``i`` applies the torque
``4 i / (n_bins - 1) - 2``, i.e. -2.0, -1.6, ..., 2.0 for 11 bins. Everything else (observations,
reward, 200-step limit, rendering) is Pendulum-v1's.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class DiscretizedTorque(gym.ActionWrapper):
    """Maps ``Discrete(n_bins)`` onto evenly spaced values of a one-dimensional Box action.

    :param env: an env with a one-dimensional Box action space
    :param n_bins: number of discrete actions (at least 2)
    """

    def __init__(self, env: gym.Env, n_bins: int = 11) -> None:
        box = env.action_space
        if not isinstance(box, spaces.Box) or box.shape != (1,):
            raise ValueError(f"DiscretizedTorque needs a one-dimensional Box action space, got {box}")
        if n_bins < 2:
            raise ValueError(f"n_bins must be at least 2, got {n_bins}")
        super().__init__(env)
        self.values = np.linspace(box.low[0], box.high[0], n_bins, dtype=box.dtype)
        self.action_space = spaces.Discrete(n_bins)

    def action(self, action: Any) -> np.ndarray:
        return self.values[int(action)].reshape(1)


def make_discrete_pendulum(n_bins: int = 11, **kwargs: Any) -> gym.Env:
    """Pendulum-v1 (its time limit included) with :class:`DiscretizedTorque`."""
    return DiscretizedTorque(gym.make("Pendulum-v1", **kwargs), n_bins=n_bins)
