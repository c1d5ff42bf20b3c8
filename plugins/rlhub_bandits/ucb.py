"""UCB1: optimism in the face of uncertainty."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch as th
from rlhub_tabular.common import TableSpecs, TabularPolicy, greedy_with_ties
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from rlhub_bandits.base import BanditAlgorithm


class UCBPolicy(TabularPolicy):
    """Pulls the arm of largest upper confidence bound ``Q(a) + c * sqrt(ln t / N(a))`` (an arm never
    pulled first); ``deterministic=True`` pulls the best estimate ``argmax Q``.

    :param observation_space: ``Discrete`` (a row of estimates per observation)
    :param action_space: ``Discrete`` arms
    :param tables: the algorithm's tables (``pull_counts`` and the 0-d ``exploration_coef`` among them)
    :param lr_schedule: unused
    """

    def behaviour_actions(self, rows: np.ndarray) -> np.ndarray:
        values = self.table("q_table")[rows]
        counts = self.table("pull_counts")[rows]
        total = counts.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            bonus = float(self.table("exploration_coef")) * np.sqrt(np.log(np.maximum(total, 1.0)) / counts)
        index = np.where(counts > 0, values + bonus, np.inf)
        return index.argmax(axis=1)


class UCB(BanditAlgorithm):
    """UCB1: pull each arm once, then the arm maximising ``Q(a) + c * sqrt(ln t / N(a))`` with ``Q``
    the sample average, ``N(a)`` its pulls and ``t`` all pulls (in the observation's row); ``c =
    sqrt(2)`` is Auer et al.'s UCB1 for rewards in [0, 1].

    Paper: Auer, Cesa-Bianchi & Fischer, "Finite-time Analysis of the Multiarmed Bandit Problem",
    Machine Learning 47, 2002. Sutton & Barto, Reinforcement Learning (2nd ed.), section 2.7.
    Code: Auer et al.'s UCB1 algorithm (figure 1).

    :param policy: ``"BanditPolicy"`` (:class:`UCBPolicy`)
    :param env: a bandit environment (e.g. ``rlhub/BernoulliBandit-v0``), or its id
    :param learning_rate: None for sample averages (UCB1), else a constant step size or a schedule
    :param exploration_coef: ``c``, the weight of the confidence bonus
    :param stats_window_size: number of pulls the rollout statistics average over
    :param tensorboard_log: folder for TensorBoard logs (None: none)
    :param policy_kwargs: keyword arguments for the policy
    :param verbose: 0 silent, 1 log tables, 2 debug
    :param seed: seed of the environment and the tie-breaking
    :param device: accepted for SB3 compatibility; tables always live on the CPU
    :param _init_setup_model: build the tables at construction
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"BanditPolicy": UCBPolicy}

    def __init__(
        self,
        policy: str | type[UCBPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule | None = None,
        exploration_coef: float = math.sqrt(2.0),
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
        if exploration_coef < 0:
            raise ValueError(f"UCB: exploration_coef must be >= 0, got {exploration_coef}")
        self.exploration_coef = exploration_coef
        if _init_setup_model:
            self._setup_model()

    def _table_specs(self) -> TableSpecs:
        return {**super()._table_specs(), "exploration_coef": ((), "float64", float(self.exploration_coef), True)}

    def _select(self, state: int) -> int:
        counts = self._counts[state].tolist()
        if 0.0 in counts:
            return counts.index(0.0)
        log_total = math.log(sum(counts))
        c = self.exploration_coef
        index = [value + c * math.sqrt(log_total / count) for value, count in zip(self._q[state].tolist(), counts)]
        return greedy_with_ties(index, self._random)

    def _update(self, state: int, arm: int, reward: float) -> None:
        q = self._q
        q[state, arm] += self._step_size(self._counts[state, arm]) * (reward - q[state, arm])


__all__ = ["UCB", "UCBPolicy"]
