"""Gradient bandit: softmax preferences learned by stochastic gradient ascent."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch as th
from rlhub_tabular.common import TableSpecs, TabularPolicy
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from rlhub_bandits.base import BanditAlgorithm


class GradientBanditPolicy(TabularPolicy):
    """Pulls arms with probabilities ``softmax(H)`` of the preferences ``H`` (buffer ``preferences``);
    ``deterministic=True`` pulls the most preferred arm.

    :param observation_space: ``Discrete`` (a row of preferences per observation)
    :param action_space: ``Discrete`` arms
    :param tables: the algorithm's tables (``preferences`` among them)
    :param lr_schedule: unused
    """

    def greedy_actions(self, rows: np.ndarray) -> np.ndarray:
        return self.table("preferences")[rows].argmax(axis=1)

    def behaviour_actions(self, rows: np.ndarray) -> np.ndarray:
        preferences = self.table("preferences")[rows]
        weights = np.exp(preferences - preferences.max(axis=1, keepdims=True))
        cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
        draws = self.rng.random((len(rows), 1))
        return np.minimum((cumulative < draws).sum(axis=1), preferences.shape[1] - 1)


class GradientBandit(BanditAlgorithm):
    """Gradient bandit: preferences ``H(a)``, policy ``pi = softmax(H)``; after pulling ``A`` and
    receiving ``R``, ``H(a) += alpha * (R - baseline) * (1[a = A] - pi(a))`` for every arm, the
    baseline being the average of the rewards before this one. ``q_table`` keeps sample-average
    estimates of the arms for inspection; the policy does not use them.

    Paper: Williams, "Simple statistical gradient-following algorithms for connectionist reinforcement
    learning", Machine Learning 8, 1992. Sutton & Barto, Reinforcement Learning (2nd ed.), section 2.8.
    Code: Sutton & Barto's equations 2.12 and 2.13.

    :param policy: ``"BanditPolicy"`` (:class:`GradientBanditPolicy`)
    :param env: a bandit environment (e.g. ``rlhub/BernoulliBandit-v0``), or its id
    :param learning_rate: the step size alpha of the preferences, a float or a schedule
    :param use_baseline: subtract the average reward (without it learning is much slower when rewards
        are far from 0)
    :param stats_window_size: number of pulls the rollout statistics average over
    :param tensorboard_log: folder for TensorBoard logs (None: none)
    :param policy_kwargs: keyword arguments for the policy
    :param verbose: 0 silent, 1 log tables, 2 debug
    :param seed: seed of the environment and the softmax draws
    :param device: accepted for SB3 compatibility; tables always live on the CPU
    :param _init_setup_model: build the tables at construction
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"BanditPolicy": GradientBanditPolicy}
    _transient_attributes = (*BanditAlgorithm._transient_attributes, "_preferences", "_baseline", "_baseline_count")

    def __init__(
        self,
        policy: str | type[GradientBanditPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 0.1,
        use_baseline: bool = True,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "cpu",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy, env, learning_rate=learning_rate, stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs, verbose=verbose, seed=seed, device=device,
        )
        self.use_baseline = use_baseline
        if _init_setup_model:
            self._setup_model()

    def _table_specs(self) -> TableSpecs:
        return {
            **super()._table_specs(),
            "preferences": ((self.n_states, self.n_actions), "float64", 0.0, True),
            "reward_baseline": ((self.n_states,), "float64", 0.0, True),
            "baseline_count": ((self.n_states,), "float64", 0.0, True),
        }

    def _bind_tables(self) -> None:
        super()._bind_tables()
        self._preferences = self.policy.table("preferences")
        self._baseline = self.policy.table("reward_baseline")
        self._baseline_count = self.policy.table("baseline_count")

    def _probabilities(self, state: int) -> list[float]:
        row = self._preferences[state].tolist()
        top = max(row)
        weights = [math.exp(value - top) for value in row]
        total = sum(weights)
        return [weight / total for weight in weights]

    def _select(self, state: int) -> int:
        draw = self._random.uniform()
        cumulative = 0.0
        probabilities = self._probabilities(state)
        for arm, probability in enumerate(probabilities):
            cumulative += probability
            if draw < cumulative:
                return arm
        return len(probabilities) - 1

    def _update(self, state: int, arm: int, reward: float) -> None:
        count = self._baseline_count[state]
        baseline = (self._baseline[state] if count > 0 else reward) if self.use_baseline else 0.0
        probabilities = np.asarray(self._probabilities(state))
        step = self._alpha * (reward - baseline)
        self._preferences[state] -= step * probabilities
        self._preferences[state, arm] += step
        self._baseline_count[state] = count + 1.0
        self._baseline[state] += (reward - self._baseline[state]) / (count + 1.0)
        self._q[state, arm] += (reward - self._q[state, arm]) / self._counts[state, arm]
