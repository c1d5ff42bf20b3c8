"""What every bandit algorithm shares: one-step episodes, pull counts, cumulative regret."""

from __future__ import annotations

from typing import Any

import torch as th
from rlhub_tabular.common import TableSpecs, TabularAlgorithm, TabularPolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule


class BanditAlgorithm(TabularAlgorithm):
    """Base of the multi-armed bandit algorithms.

    Every pull is an episode of its own (the ``rlhub/*Bandit-v0`` environments terminate after one
    step); the algorithm keeps one row of estimates per observation (a single row for the classic
    bandit, whose observation is always 0), never bootstraps, and counts pulls in the buffer
    ``pull_counts``. When the environment reports each pull's expected ``regret`` in ``info`` (the
    rlhub bandits do), ``cumulative_regret`` sums it and is logged as ``rollout/cumulative_regret``.
    A subclass implements :meth:`_select` and :meth:`_update`.
    """

    _explores = False
    _sample_averages = True
    _transient_attributes = (*TabularAlgorithm._transient_attributes, "_counts")

    def __init__(
        self,
        policy: str | type[TabularPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule | None,
        stats_window_size: int,
        tensorboard_log: str | None,
        policy_kwargs: dict[str, Any] | None,
        verbose: int,
        seed: int | None,
        device: th.device | str,
        exploration_initial_eps: float = 0.0,
        exploration_final_eps: float = 0.0,
        exploration_fraction: float = 0.1,
        exploration_decay_rate: float | None = None,
    ) -> None:
        super().__init__(
            policy, env, learning_rate=learning_rate, gamma=0.0,
            exploration_initial_eps=exploration_initial_eps, exploration_final_eps=exploration_final_eps,
            exploration_fraction=exploration_fraction, exploration_decay_rate=exploration_decay_rate,
            stats_window_size=stats_window_size, tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs,
            verbose=verbose, seed=seed, device=device,
        )
        self.cumulative_regret = 0.0
        self.n_pulls = 0
        self._regret_reported = False

    def _table_specs(self) -> TableSpecs:
        return {"pull_counts": ((self.n_states, self.n_actions), "float64", 0.0, True)}

    def _bind_tables(self) -> None:
        super()._bind_tables()
        self._counts = self.policy.table("pull_counts")

    def _select(self, state: int) -> int:
        """The arm to pull in ``state`` (the behaviour policy)."""
        raise NotImplementedError

    def _update(self, state: int, arm: int, reward: float) -> None:
        """Learn from one pull; ``pull_counts[state, arm]`` already counts it."""
        raise NotImplementedError

    def _start_episode(self, env_index: int, state: int) -> int:
        return self._select(state)

    def _transition(self, env_index: int, state: int, action: int, reward: float, next_state: int,
                    terminated: bool, done: bool, info: dict[str, Any]) -> int:
        self.n_pulls += 1
        regret = info.get("regret")
        if regret is not None:
            self.cumulative_regret += regret
            self._regret_reported = True
        self._counts[state, action] += 1.0
        self._update(state, action, reward)
        return 0 if done else self._select(next_state)

    def _record_logs(self) -> None:
        self.logger.record("rollout/pulls", self.n_pulls)
        if self._regret_reported:
            self.logger.record("rollout/cumulative_regret", self.cumulative_regret)
            self.logger.record("rollout/mean_regret", self.cumulative_regret / max(self.n_pulls, 1))
