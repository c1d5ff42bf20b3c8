"""Epsilon-greedy action-value bandit."""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th
from rlhub_tabular.common import TableSpecs, TabularPolicy
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from rlhub_bandits.base import BanditAlgorithm


class EpsilonGreedyBandit(BanditAlgorithm):
    """Epsilon-greedy bandit: estimate each arm's mean reward ``Q(a)`` by sample averages (or a
    constant step for non-stationary arms), pull the best estimate, and a random arm with probability
    epsilon. Epsilon follows the tabular schedules (linear over a fraction of the budget as SB3's DQN,
    or per-pull exponential decay); ``initial_value`` above the rewards gives optimistic initial values.

    Paper: Sutton & Barto, Reinforcement Learning (2nd ed.), sections 2.2-2.6; Watkins 1989 for
    epsilon-greedy exploration.
    Code: Sutton & Barto's pseudocode "A simple bandit algorithm" (section 2.4).

    :param policy: ``"BanditPolicy"`` (epsilon-greedy on ``q_table``)
    :param env: a bandit environment (e.g. ``rlhub/BernoulliBandit-v0``), or its id
    :param learning_rate: None for sample averages (1 / pulls of the arm), else a constant step size or
        a schedule of the remaining progress
    :param initial_value: initial estimate of every arm (optimistic above the best reward)
    :param exploration_initial_eps: epsilon at the start
    :param exploration_final_eps: epsilon at the end of the decay
    :param exploration_fraction: fraction of the budget over which epsilon decays linearly (ignored
        when ``exploration_decay_rate`` is set)
    :param exploration_decay_rate: if set, epsilon decays per pull as
        ``final + (initial - final) * exp(-decay_rate * pull)``
    :param stats_window_size: number of pulls the rollout statistics average over
    :param tensorboard_log: folder for TensorBoard logs (None: none)
    :param policy_kwargs: keyword arguments for the policy
    :param verbose: 0 silent, 1 log tables, 2 debug
    :param seed: seed of the environment, the exploration and the tie-breaking
    :param device: accepted for SB3 compatibility; tables always live on the CPU
    :param _init_setup_model: build the tables at construction
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"BanditPolicy": TabularPolicy}
    _explores = True

    def __init__(
        self,
        policy: str | type[TabularPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule | None = None,
        initial_value: float = 0.0,
        exploration_initial_eps: float = 0.1,
        exploration_final_eps: float = 0.1,
        exploration_fraction: float = 0.1,
        exploration_decay_rate: float | None = None,
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
            exploration_initial_eps=exploration_initial_eps, exploration_final_eps=exploration_final_eps,
            exploration_fraction=exploration_fraction, exploration_decay_rate=exploration_decay_rate,
        )
        self.initial_value = initial_value
        if _init_setup_model:
            self._setup_model()

    def _table_specs(self) -> TableSpecs:
        return {
            **super()._table_specs(),
            "q_table": ((self.n_states, self.n_actions), "float64", float(self.initial_value), True),
        }

    def _select(self, state: int) -> int:
        return self._epsilon_greedy(state)

    def _update(self, state: int, arm: int, reward: float) -> None:
        q = self._q
        q[state, arm] += self._step_size(self._counts[state, arm]) * (reward - q[state, arm])
