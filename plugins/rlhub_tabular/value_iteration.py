"""Value iteration on a known transition model."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.type_aliases import GymEnv

from rlhub_tabular.common import PlanningAlgorithm, TabularPolicy, TransitionModel


class ValueIteration(PlanningAlgorithm):
    """Value iteration: synchronous sweeps ``V(s) <- max_a sum_s' p(s'|s,a) [r + gamma V(s')]`` on the
    environment's model ``env.unwrapped.P`` until the largest change is below ``theta``; the policy
    is greedy on ``Q(s,a) = sum_s' p(s'|s,a) [r + gamma V(s')]`` (buffers ``v_table``, ``q_table``).

    ``learn(total_timesteps)`` does not step the environment: a timestep is one state backup, so the
    budget allows ``total_timesteps / n_states`` sweeps; it stops early when converged.

    Paper: Bellman, "Dynamic Programming", 1957. Sutton & Barto, Reinforcement Learning (2nd ed.),
    section 4.4.
    Code: Sutton & Barto's pseudocode "Value Iteration, for estimating pi ~ pi*".

    :param policy: ``"TabularPolicy"`` (or a subclass of :class:`~rlhub_tabular.common.TabularPolicy`)
    :param env: an environment with ``env.unwrapped.P`` (Gymnasium's toy-text convention), or its id
    :param gamma: the discount factor
    :param theta: convergence threshold on the largest value change of a sweep
    :param stats_window_size: unused by planning; kept for SB3's interface
    :param tensorboard_log: folder for TensorBoard logs (None: none)
    :param policy_kwargs: keyword arguments for the policy
    :param verbose: 0 silent, 1 log tables, 2 debug
    :param seed: seed of the environment and of stochastic ``predict``
    :param device: accepted for SB3 compatibility; tables always live on the CPU
    :param _init_setup_model: build the tables at construction
    """

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
        super().__init__(policy, env, gamma=gamma, theta=theta, stats_window_size=stats_window_size,
                         tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs, verbose=verbose, seed=seed,
                         device=device)
        if _init_setup_model:
            self._setup_model()

    def _sweep(self, model: TransitionModel) -> tuple[float, bool]:
        q = model.q_values(self._v, self.gamma)
        values = q.max(axis=1)
        delta = float(np.max(np.abs(values - self._v))) if values.size else 0.0
        self._v[:] = values
        self._q[:] = model.q_values(values, self.gamma)  # greedy on the values just computed
        return delta, delta < self.theta
