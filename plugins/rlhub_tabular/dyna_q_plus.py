"""Dyna-Q+: Dyna-Q with an exploration bonus for pairs not tried for a long time."""

from __future__ import annotations

import math
from typing import Any

import torch as th
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from rlhub_tabular.common import TableSpecs, TabularPolicy
from rlhub_tabular.dyna_q import DynaQ


class DynaQPlus(DynaQ):
    """Dyna-Q+: planning updates use the reward ``r + kappa * sqrt(tau)``, where ``tau`` is the number
    of real steps since the pair was last tried, so that the agent goes back to check a world that may
    have changed (Sutton & Barto's blocking and shortcut mazes).

    As in Sutton & Barto's experiments, actions never tried from a visited state may be planned too:
    their model leads back to the same state with reward 0, and their ``tau`` counts from the start.
    The step counter and last-tried times are the buffers ``model_clock`` and ``model_last_tried``.

    Paper: Sutton, "Integrated architectures for learning, planning, and reacting based on
    approximating dynamic programming", ICML 1990. Sutton & Barto, Reinforcement Learning (2nd ed.),
    section 8.3.
    Code: Sutton & Barto's section 8.3 and the footnote on untried actions.

    :param policy: ``"TabularPolicy"`` (or a subclass of :class:`~rlhub_tabular.common.TabularPolicy`)
    :param env: the environment (Discrete or Tuple-of-Discrete observations, Discrete actions), or its id
    :param learning_rate: the step size alpha of real and planning updates, a float or a schedule of
        the remaining progress (read at each episode start)
    :param gamma: the discount factor
    :param n_planning_steps: planning updates per real step
    :param kappa: weight of the exploration bonus ``kappa * sqrt(tau)``
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
    :param seed: seed of the environment, the exploration, the planning draws and the tie-breaking
    :param device: accepted for SB3 compatibility; tables always live on the CPU
    :param _init_setup_model: build the tables at construction
    """

    _transient_attributes = (*DynaQ._transient_attributes, "_last_tried", "_clock")

    def __init__(
        self,
        policy: str | type[TabularPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 0.1,
        gamma: float = 0.95,
        n_planning_steps: int = 5,
        kappa: float = 1e-3,
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
            policy, env, learning_rate=learning_rate, gamma=gamma, n_planning_steps=n_planning_steps,
            exploration_initial_eps=exploration_initial_eps, exploration_final_eps=exploration_final_eps,
            exploration_fraction=exploration_fraction, exploration_decay_rate=exploration_decay_rate,
            stats_window_size=stats_window_size, tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs,
            verbose=verbose, seed=seed, device=device, _init_setup_model=False,
        )
        if kappa < 0:
            raise ValueError(f"DynaQPlus: kappa must be >= 0, got {kappa}")
        self.kappa = kappa
        if _init_setup_model:
            self._setup_model()

    def _table_specs(self) -> TableSpecs:
        return {
            **super()._table_specs(),
            "model_last_tried": ((self.n_states, self.n_actions), "int64", 0, True),
            "model_clock": ((), "int64", 0, True),
        }

    def _bind_tables(self) -> None:
        super()._bind_tables()
        self._last_tried = self.policy.table("model_last_tried")
        self._clock = self.policy.table("model_clock")

    def _remember(self, state: int, action: int, reward: float, next_state: int, terminated: bool) -> None:
        self._clock[()] += 1
        if not self._model_seen[state].any():
            # First visit of this state: its untried actions join the model as "stay, reward 0".
            for other in range(self.n_actions):
                if other != action:
                    super()._remember(state, other, 0.0, state, False)
        super()._remember(state, action, reward, next_state, terminated)
        self._last_tried[state, action] = self._clock[()]

    def _planning_reward(self, state: int, action: int) -> float:
        tau = int(self._clock[()]) - int(self._last_tried[state, action])
        return float(self._model_reward[state, action]) + self.kappa * math.sqrt(tau)
