"""Policy iteration on a known transition model."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.type_aliases import GymEnv

from rlhub_tabular.common import PlanningAlgorithm, TableSpecs, TabularPolicy, TransitionModel


class PolicyIteration(PlanningAlgorithm):
    """Policy iteration: evaluate the current deterministic policy with synchronous sweeps
    ``V(s) <- sum_s' p(s'|s,pi(s)) [r + gamma V(s')]`` until the largest change is below ``theta``,
    then make it greedy on ``Q``; stop when the improvement changes no action. The model is
    ``env.unwrapped.P``; the buffers are ``v_table``, ``q_table`` and ``policy_table`` (the policy
    starts with action 0 everywhere). An improvement keeps the current action when it is among the
    best, so that equal-valued actions cannot make it cycle.

    ``learn(total_timesteps)`` does not step the environment: a timestep is one state backup, so the
    budget allows ``total_timesteps / n_states`` evaluation sweeps; it stops early when stable.

    Paper: Howard, "Dynamic Programming and Markov Processes", 1960. Sutton & Barto, Reinforcement
    Learning (2nd ed.), section 4.3.
    Code: Sutton & Barto's pseudocode "Policy Iteration (using iterative policy evaluation)".

    :param policy: ``"TabularPolicy"`` (or a subclass of :class:`~rlhub_tabular.common.TabularPolicy`)
    :param env: an environment with ``env.unwrapped.P`` (Gymnasium's toy-text convention), or its id
    :param gamma: the discount factor, below 1 (a policy that never ends would have unbounded values)
    :param theta: convergence threshold of policy evaluation on the largest value change of a sweep
    :param stats_window_size: unused by planning; kept for SB3's interface
    :param tensorboard_log: folder for TensorBoard logs (None: none)
    :param policy_kwargs: keyword arguments for the policy
    :param verbose: 0 silent, 1 log tables, 2 debug
    :param seed: seed of the environment and of stochastic ``predict``
    :param device: accepted for SB3 compatibility; tables always live on the CPU
    :param _init_setup_model: build the tables at construction
    """

    _transient_attributes = (*PlanningAlgorithm._transient_attributes, "_policy_actions")

    def __init__(
        self,
        policy: str | type[TabularPolicy],
        env: GymEnv | str | None,
        gamma: float = 0.99,
        theta: float = 1e-10,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "cpu",
        _init_setup_model: bool = True,
    ) -> None:
        if not gamma < 1.0:
            raise ValueError(f"PolicyIteration: gamma must be below 1, got {gamma} (use value_iteration for gamma 1)")
        super().__init__(policy, env, gamma=gamma, theta=theta, stats_window_size=stats_window_size,
                         tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs, verbose=verbose, seed=seed,
                         device=device)
        self.n_improvements = 0
        if _init_setup_model:
            self._setup_model()

    def _table_specs(self) -> TableSpecs:
        return {**super()._table_specs(), "policy_table": ((self.n_states,), "int64", 0, True)}

    def _bind_tables(self) -> None:
        super()._bind_tables()
        self._policy_actions = self.policy.table("policy_table")

    def _sweep(self, model: TransitionModel) -> tuple[float, bool]:
        rows = np.arange(self.n_states)
        q = model.q_values(self._v, self.gamma)
        values = q[rows, self._policy_actions]
        delta = float(np.max(np.abs(values - self._v))) if values.size else 0.0
        self._v[:] = values
        q = model.q_values(values, self.gamma)
        self._q[:] = q
        if delta >= self.theta:
            return delta, False
        # Evaluation has converged: improve.
        best = q.max(axis=1)
        current = q[rows, self._policy_actions]
        keep = current >= best - 1e-12 * np.maximum(1.0, np.abs(best))
        improved = np.where(keep, self._policy_actions, q.argmax(axis=1))
        stable = bool(np.array_equal(improved, self._policy_actions))
        self._policy_actions[:] = improved
        self.n_improvements += 1
        return delta, stable

    def _record_logs(self) -> None:
        super()._record_logs()
        self.logger.record("train/improvements", self.n_improvements)
