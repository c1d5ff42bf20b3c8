"""Expected SARSA: TD control on the expected next value under the behaviour policy."""

from __future__ import annotations

from typing import Any

import torch as th
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from rlhub_tabular.common import TabularAlgorithm, TabularPolicy


class ExpectedSARSA(TabularAlgorithm):
    """Expected SARSA: ``Q(s,a) += alpha * (r + gamma * E_pi[Q(s',A')] - Q(s,a))`` with ``pi`` the
    epsilon-greedy policy, ``E_pi[Q(s',A')] = (1 - eps) * max_a Q(s',a) + eps * mean_a Q(s',a)``.
    It removes SARSA's variance from sampling ``a'``.

    Paper: van Seijen, van Hasselt, Whiteson & Wiering, "A theoretical and empirical analysis of
    Expected Sarsa", IEEE ADPRL 2009. Sutton & Barto, Reinforcement Learning (2nd ed.), section 6.6.
    Code: Sutton & Barto's section 6.6 update rule.

    :param policy: ``"TabularPolicy"`` (or a subclass of :class:`~rlhub_tabular.common.TabularPolicy`)
    :param env: the environment (Discrete or Tuple-of-Discrete observations, Discrete actions), or its id
    :param learning_rate: the step size alpha, a float or a schedule of the remaining progress (read at
        each episode start)
    :param gamma: the discount factor
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

    def __init__(
        self,
        policy: str | type[TabularPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 0.1,
        gamma: float = 0.99,
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
        if _init_setup_model:
            self._setup_model()

    def _transition(self, env_index: int, state: int, action: int, reward: float, next_state: int,
                    terminated: bool, done: bool, info: dict[str, Any]) -> int:
        q = self._q
        if terminated:
            target = reward
        else:
            # Ties share the greedy probability, so the greedy part is (1 - eps) * max either way.
            row = q[next_state].tolist()
            eps = self.exploration_rate
            target = reward + self.gamma * ((1.0 - eps) * max(row) + eps * sum(row) / len(row))
        q[state, action] += self._alpha * (target - q[state, action])
        return 0 if done else self._epsilon_greedy(next_state)
