"""The base algorithm's environment: the extrinsic reward, plus the curiosity module's intrinsic one."""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from rlhub.common.learned_reward import RewardFunction, RewardVecEnv
from rlhub_curiosity.common.two_stream_ppo import INTRINSIC_REWARD_KEY


class IntrinsicRewardVecEnv(RewardVecEnv):
    """Rewards each step with ``extrinsic_coef * r_env + intrinsic_coef * r_intrinsic``, or, with
    ``separate``, with ``r_env`` alone and ``r_intrinsic`` in ``info["intrinsic_reward"]`` for a learner
    that keeps the two streams apart (RND's PPO, with a value head for each). The steps are kept for
    the curiosity module's training (:meth:`take_transitions`).
    """

    def __init__(self, venv: VecEnv, intrinsic_reward: RewardFunction, *, extrinsic_coef: float,
                 intrinsic_coef: float, separate: bool, capacity: int) -> None:
        super().__init__(venv, intrinsic_reward, capacity=capacity)
        self.extrinsic_coef, self.intrinsic_coef, self.separate = extrinsic_coef, intrinsic_coef, separate

    def combine(self, true_rewards: np.ndarray, learned_rewards: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        if self.separate:
            for info, intrinsic in zip(infos, learned_rewards):
                info[INTRINSIC_REWARD_KEY] = float(intrinsic)
            return true_rewards
        return (self.extrinsic_coef * true_rewards + self.intrinsic_coef * learned_rewards).astype(np.float32)
