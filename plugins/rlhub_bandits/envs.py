"""k-armed bandits as one-step Gymnasium environments: ``rlhub/BernoulliBandit-v0`` and
``rlhub/GaussianBandit-v0``.

Each episode is one pull: the observation is always 0, the action is the arm, the episode
terminates after the reward. ``info`` carries the pull's expected regret (best arm's mean minus the
pulled arm's mean), which bandit algorithms sum into their cumulative regret.

The arms are fixed for the life of the environment: given as ``means``, or drawn from
``arms_seed`` (Bernoulli probabilities uniform on [0, 1), Gaussian means standard normal, as in
Sutton & Barto's 10-armed testbed). ``arms_seed=None`` draws them from the environment's own seed at
its first seeded reset, so each training seed meets another problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class KArmedBanditEnv(gym.Env):
    """Base of the k-armed bandits: one-step episodes, fixed arms, regret in ``info``.

    :param n_arms: number of arms (ignored when ``means`` is given)
    :param means: the arms' expected rewards; None to draw them (see ``arms_seed``)
    :param arms_seed: seed of the arms' draw; None draws them from the env's seed at the first seeded reset
    :param render_mode: ``"ansi"`` (text) or ``"rgb_array"`` (bars of the arms' means, the last pull in red)
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(self, n_arms: int = 10, means: Sequence[float] | None = None, arms_seed: int | None = 0,
                 render_mode: str | None = None) -> None:
        if means is not None:
            n_arms = len(means)
        if n_arms < 1:
            raise ValueError(f"a bandit needs at least one arm, got n_arms={n_arms}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.n_arms = n_arms
        self.arms_seed = arms_seed
        self.render_mode = render_mode
        self.observation_space = spaces.Discrete(1)
        self.action_space = spaces.Discrete(n_arms)
        self.means: np.ndarray | None = None
        if means is not None:
            self._set_means(np.asarray(means, dtype=np.float64))
        elif arms_seed is not None:
            self._set_means(self._draw_means(np.random.default_rng(arms_seed)))
        self._last_arm: int | None = None

    def _draw_means(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _sample_reward(self, arm: int) -> float:
        raise NotImplementedError

    def _set_means(self, means: np.ndarray) -> None:
        self._check_means(means)
        self.means = means
        self.best_mean = float(means.max())
        self.best_arm = int(means.argmax())
        self._regrets = (self.best_mean - means).tolist()
        self._mean_list = means.tolist()

    def _check_means(self, means: np.ndarray) -> None:
        pass

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        if self.means is None:
            self._set_means(self._draw_means(self.np_random))
        self._last_arm = None
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        if self.means is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        arm = int(action)
        if not 0 <= arm < self.n_arms:
            raise ValueError(f"arm must be in [0, {self.n_arms}), got {action}")
        self._last_arm = arm
        info = {"regret": self._regrets[arm], "expected_reward": self._mean_list[arm],
                "is_optimal": arm == self.best_arm}
        return 0, self._sample_reward(arm), True, False, info

    def render(self) -> str | np.ndarray | None:
        if self.means is None:
            return None
        if self.render_mode == "rgb_array":
            return self._render_rgb()
        if self.render_mode == "ansi":
            return " ".join(
                f"[{mean:.2f}]" if arm == self._last_arm else f"{mean:.2f}" for arm, mean in enumerate(self._mean_list)
            ) + "\n"
        return None

    def _render_rgb(self, width: int = 24, height: int = 120) -> np.ndarray:
        assert self.means is not None
        image = np.full((height, width * self.n_arms, 3), 255, dtype=np.uint8)
        low, high = float(self.means.min()), float(self.means.max())
        span = max(high - low, 1e-9)
        for arm, mean in enumerate(self._mean_list):
            bar = int(10 + (height - 20) * (mean - low) / span)
            colour = (200, 40, 40) if arm == self._last_arm else (70, 110, 200)
            image[height - bar:, arm * width + 3:(arm + 1) * width - 3] = colour
        return image


class BernoulliBanditEnv(KArmedBanditEnv):
    """k arms paying 1 with probability ``means[a]``, else 0 (the notes' slot machines).

    :param n_arms: number of arms (ignored when ``means`` is given)
    :param means: the arms' success probabilities; None to draw them uniformly on [0, 1)
    :param arms_seed: seed of the arms' draw; None draws them from the env's seed at the first seeded reset
    :param render_mode: ``"ansi"`` or ``"rgb_array"``
    """

    def _draw_means(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(size=self.n_arms)

    def _check_means(self, means: np.ndarray) -> None:
        if np.any(means < 0) or np.any(means > 1):
            raise ValueError(f"Bernoulli arms need probabilities in [0, 1], got {means.tolist()}")

    def _sample_reward(self, arm: int) -> float:
        return 1.0 if self.np_random.random() < self._mean_list[arm] else 0.0


class GaussianBanditEnv(KArmedBanditEnv):
    """k arms paying ``Normal(means[a], reward_std)`` (Sutton & Barto's 10-armed testbed).

    :param n_arms: number of arms (ignored when ``means`` is given)
    :param means: the arms' expected rewards; None to draw them from a standard normal
    :param arms_seed: seed of the arms' draw; None draws them from the env's seed at the first seeded reset
    :param reward_std: standard deviation of every arm's reward
    :param render_mode: ``"ansi"`` or ``"rgb_array"``
    """

    def __init__(self, n_arms: int = 10, means: Sequence[float] | None = None, arms_seed: int | None = 0,
                 reward_std: float = 1.0, render_mode: str | None = None) -> None:
        if reward_std < 0:
            raise ValueError(f"reward_std must be >= 0, got {reward_std}")
        self.reward_std = reward_std
        super().__init__(n_arms=n_arms, means=means, arms_seed=arms_seed, render_mode=render_mode)

    def _draw_means(self, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal(self.n_arms)

    def _sample_reward(self, arm: int) -> float:
        return self._mean_list[arm] + self.reward_std * float(self.np_random.standard_normal())
