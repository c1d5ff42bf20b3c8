"""Pieces of update rules that several tabular learners share."""

from __future__ import annotations

import numpy as np


def td_target(q: np.ndarray, reward: float, next_state: int, terminated: bool, gamma: float) -> float:
    """The one-step Q-learning target ``r + gamma * max_a Q(s', a)``, or ``r`` at a terminal state.

    Sutton & Barto, Reinforcement Learning (2nd ed.), equation 6.8. Used by Q-learning, by Dyna-Q's
    real and planning updates, and by Dyna-Q+.
    """
    if terminated:
        return reward
    return reward + gamma * max(q[next_state].tolist())  # a list's max beats numpy's on a short row
