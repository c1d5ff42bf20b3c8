"""Dyna-Q: Q-learning plus planning on a learned model of the transitions seen."""

from __future__ import annotations

from typing import Any

import torch as th
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from rlhub_tabular.common import TableSpecs, TabularAlgorithm, TabularPolicy, td_target


class DynaQ(TabularAlgorithm):
    """Tabular Dyna-Q: after each real step's Q-learning update, the model remembers the transition,
    ``Model(s, a) = (r, s', terminated)``, and ``n_planning_steps`` Q-learning updates replay
    transitions of pairs drawn uniformly from those observed so far.

    The model is the last outcome seen for each pair (Sutton & Barto's deterministic model); on a
    stochastic environment it is a sample, not an expectation. It lives in the policy's buffers
    ``model_reward``, ``model_next_state``, ``model_terminated`` and ``model_seen``.

    Paper: Sutton, "Integrated architectures for learning, planning, and reacting based on
    approximating dynamic programming", ICML 1990. Sutton & Barto, Reinforcement Learning (2nd ed.),
    section 8.2.
    Code: Sutton & Barto's pseudocode "Tabular Dyna-Q".

    :param policy: ``"TabularPolicy"`` (or a subclass of :class:`~rlhub_tabular.common.TabularPolicy`)
    :param env: the environment (Discrete or Tuple-of-Discrete observations, Discrete actions), or its id
    :param learning_rate: the step size alpha of real and planning updates, a float or a schedule of
        the remaining progress (read at each episode start)
    :param gamma: the discount factor
    :param n_planning_steps: planning updates per real step (0 is Q-learning)
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

    _transient_attributes = (
        *TabularAlgorithm._transient_attributes, "_model_reward", "_model_next_state", "_model_terminated",
        "_model_seen", "_observed_pairs",
    )

    def __init__(
        self,
        policy: str | type[TabularPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 0.1,
        gamma: float = 0.95,
        n_planning_steps: int = 5,
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
            policy, env, learning_rate=learning_rate, gamma=gamma, exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps, exploration_fraction=exploration_fraction,
            exploration_decay_rate=exploration_decay_rate, stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs, verbose=verbose, seed=seed, device=device,
        )
        if n_planning_steps < 0:
            raise ValueError(f"{type(self).__name__}: n_planning_steps must be >= 0, got {n_planning_steps}")
        self.n_planning_steps = n_planning_steps
        if _init_setup_model:
            self._setup_model()

    def _table_specs(self) -> TableSpecs:
        shape = (self.n_states, self.n_actions)
        return {
            "model_reward": (shape, "float64", 0.0, True),
            "model_next_state": (shape, "int64", 0, True),
            "model_terminated": (shape, "bool", False, True),
            "model_seen": (shape, "bool", False, True),
        }

    def _bind_tables(self) -> None:
        super()._bind_tables()
        self._model_reward = self.policy.table("model_reward")
        self._model_next_state = self.policy.table("model_next_state")
        self._model_terminated = self.policy.table("model_terminated")
        self._model_seen = self.policy.table("model_seen")
        self._index_model()

    def _index_model(self) -> None:
        # Flat indices (state * n_actions + action) of the modelled pairs, to draw from.
        self._observed_pairs: list[int] = self._model_seen.reshape(-1).nonzero()[0].tolist()

    def set_parameters(self, *args: Any, **kwargs: Any) -> None:
        super().set_parameters(*args, **kwargs)
        self._index_model()  # the loaded model_seen

    def _remember(self, state: int, action: int, reward: float, next_state: int, terminated: bool) -> None:
        if not self._model_seen[state, action]:
            self._model_seen[state, action] = True
            self._observed_pairs.append(state * self.n_actions + action)
        self._model_reward[state, action] = reward
        self._model_next_state[state, action] = next_state
        self._model_terminated[state, action] = terminated

    def _planning_reward(self, state: int, action: int) -> float:
        return float(self._model_reward[state, action])

    def _plan(self) -> None:
        """``n_planning_steps`` Q-learning updates on modelled transitions of pairs drawn uniformly."""
        q, gamma, alpha, n_actions = self._q, self.gamma, self._alpha, self.n_actions
        pairs, next_states, terminals = self._observed_pairs, self._model_next_state, self._model_terminated
        for _ in range(self.n_planning_steps):
            state, action = divmod(pairs[self._random.index(len(pairs))], n_actions)
            target = td_target(q, self._planning_reward(state, action), next_states[state, action],
                               terminals[state, action], gamma)
            q[state, action] += alpha * (target - q[state, action])

    def _transition(self, env_index: int, state: int, action: int, reward: float, next_state: int,
                    terminated: bool, done: bool, info: dict[str, Any]) -> int:
        q = self._q
        q[state, action] += self._alpha * (td_target(q, reward, next_state, terminated, self.gamma) - q[state, action])
        self._remember(state, action, reward, next_state, terminated)
        if self.n_planning_steps:
            self._plan()
        return 0 if done else self._epsilon_greedy(next_state)

    def _record_logs(self) -> None:
        self.logger.record("train/model_pairs", len(self._observed_pairs))
