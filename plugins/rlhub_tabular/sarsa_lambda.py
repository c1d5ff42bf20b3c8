"""SARSA(lambda): on-policy TD control with eligibility traces."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from rlhub_tabular.common import TableSpecs, TabularAlgorithm, TabularPolicy

TRACE_TYPES = ("accumulating", "replacing")


class SARSALambda(TabularAlgorithm):
    """SARSA(lambda): every step's TD error ``delta = r + gamma * Q(s',a') - Q(s,a)`` updates all
    recently visited pairs, ``Q += alpha * delta * E``, through eligibility traces ``E`` that decay by
    ``gamma * lambda`` per step. Accumulating traces add 1 on a visit, replacing traces set it to 1.

    The traces are a non-persistent buffer ``traces`` of the policy (one table per environment): they
    belong to the episode under way, so they are not saved.

    Paper: Rummery & Niranjan, "On-line Q-learning using connectionist systems", 1994; Singh & Sutton,
    "Reinforcement learning with replacing eligibility traces", Machine Learning 22, 1996.
    Sutton & Barto, Reinforcement Learning (1st ed.), section 7.5; (2nd ed.), chapter 12.
    Code: Sutton & Barto's (1st ed.) pseudocode "Tabular Sarsa(lambda)".

    :param policy: ``"TabularPolicy"`` (or a subclass of :class:`~rlhub_tabular.common.TabularPolicy`)
    :param env: the environment (Discrete or Tuple-of-Discrete observations, Discrete actions), or its id
    :param learning_rate: the step size alpha, a float or a schedule of the remaining progress (read at
        each episode start)
    :param gamma: the discount factor
    :param trace_decay: lambda, in [0, 1]: 0 is one-step SARSA, 1 approaches Monte Carlo
    :param trace_type: ``"accumulating"`` or ``"replacing"``
    :param exploration_initial_eps: epsilon at the start
    :param exploration_final_eps: epsilon at the end of the decay
    :param exploration_fraction: fraction of the budget over which epsilon decays linearly (SB3 DQN's
        schedule; ignored when ``exploration_decay_rate`` is set)
    :param exploration_decay_rate: if set, epsilon decays per episode as
        ``final + (initial - final) * exp(-decay_rate * episode)`` (the Hugging Face course's schedule)
    :param stats_window_size: number of episodes the rollout statistics average over
    :param tensorboard_log: folder for TensorBoard logs (None: none)
    :param policy_kwargs: keyword arguments for the policy
    :param verbose: 0 silent, 1 log tables, 2 debug
    :param seed: seed of the environment, the exploration and the tie-breaking
    :param device: accepted for SB3 compatibility; tables always live on the CPU
    :param _init_setup_model: build the tables at construction
    """

    _transient_attributes = (*TabularAlgorithm._transient_attributes, "_traces")

    def __init__(
        self,
        policy: str | type[TabularPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 0.1,
        gamma: float = 0.99,
        trace_decay: float = 0.9,
        trace_type: str = "accumulating",
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
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
            policy, env, learning_rate=learning_rate, gamma=gamma, exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps, exploration_fraction=exploration_fraction,
            exploration_decay_rate=exploration_decay_rate, stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs, verbose=verbose, seed=seed, device=device,
        )
        if not 0.0 <= trace_decay <= 1.0:
            raise ValueError(f"SARSALambda: trace_decay (lambda) must be in [0, 1], got {trace_decay}")
        if trace_type not in TRACE_TYPES:
            raise ValueError(f"SARSALambda: trace_type must be one of {', '.join(TRACE_TYPES)}, got {trace_type!r}")
        self.trace_decay = trace_decay
        self.trace_type = trace_type
        if _init_setup_model:
            self._setup_model()

    def _table_specs(self) -> TableSpecs:
        n_envs = getattr(self, "n_envs", 1) or 1
        return {"traces": ((n_envs, self.n_states, self.n_actions), "float64", 0.0, False)}

    def _bind_tables(self) -> None:
        super()._bind_tables()
        self._traces = self.policy.table("traces")

    def _on_learn_start(self) -> None:
        assert self.env is not None
        if self._traces.shape[0] != self.env.num_envs:  # set_env() with another number of environments
            self.policy.register_buffer(
                "traces", th.zeros((self.env.num_envs, self.n_states, self.n_actions), dtype=th.float64),
                persistent=False,
            )
            self._traces = self.policy.table("traces")

    def _start_episode(self, env_index: int, state: int) -> int:
        self._traces[env_index].fill(0.0)
        return self._epsilon_greedy(state)

    def _transition(self, env_index: int, state: int, action: int, reward: float, next_state: int,
                    terminated: bool, done: bool, info: dict[str, Any]) -> int:
        q = self._q
        if terminated:
            next_action = 0
            delta = reward - q[state, action]
        else:
            next_action = self._epsilon_greedy(next_state)
            delta = reward + self.gamma * q[next_state, next_action] - q[state, action]
        traces = self._traces[env_index]
        if self.trace_type == "replacing":
            traces[state, action] = 1.0
        else:
            traces[state, action] += 1.0
        np.add(q, (self._alpha * delta) * traces, out=q)
        traces *= self.gamma * self.trace_decay
        return next_action
