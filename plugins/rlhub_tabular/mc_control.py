"""On-policy Monte Carlo control with epsilon-soft policies."""

from __future__ import annotations

from typing import Any

import torch as th
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from rlhub_tabular.common import TableSpecs, TabularAlgorithm, TabularPolicy


class MonteCarloControl(TabularAlgorithm):
    """On-policy Monte Carlo control: at the end of each episode, every (first-)visited pair moves
    toward the return that followed it, ``Q(s,a) += step * (G - Q(s,a))``, with ``step = 1 / N(s,a)``
    (sample averages, ``learning_rate=None``) or a constant or scheduled ``learning_rate``; the
    policy is epsilon-greedy (epsilon-soft) on ``Q``.

    An episode cut by a time limit is completed with ``max_a Q(s_T, a)`` of its last state instead of
    0, so a time limit does not teach that the states before it are worthless.

    Paper: Sutton & Barto, Reinforcement Learning (2nd ed.), section 5.4 ("On-policy first-visit MC
    control (for epsilon-soft policies)"); Singh & Sutton 1996 for first- versus every-visit.
    Code: Sutton & Barto's section 5.4 pseudocode.

    :param policy: ``"TabularPolicy"`` (or a subclass of :class:`~rlhub_tabular.common.TabularPolicy`)
    :param env: the environment (Discrete or Tuple-of-Discrete observations, Discrete actions), or its id
    :param learning_rate: None for sample averages (1 / visit count), else the step size, a float or a
        schedule of the remaining progress (read at each episode start)
    :param gamma: the discount factor
    :param first_visit: average the return after the first visit of a pair in an episode only
        (first-visit MC); False averages after every visit
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

    _transient_attributes = (*TabularAlgorithm._transient_attributes, "_counts", "_episodes")
    _sample_averages = True

    def __init__(
        self,
        policy: str | type[TabularPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule | None = None,
        gamma: float = 0.99,
        first_visit: bool = True,
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
            policy, env, learning_rate=learning_rate, gamma=gamma,
            exploration_initial_eps=exploration_initial_eps, exploration_final_eps=exploration_final_eps,
            exploration_fraction=exploration_fraction, exploration_decay_rate=exploration_decay_rate,
            stats_window_size=stats_window_size, tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs,
            verbose=verbose, seed=seed, device=device,
        )
        self.first_visit = first_visit
        if _init_setup_model:
            self._setup_model()

    def _table_specs(self) -> TableSpecs:
        return {"visit_counts": ((self.n_states, self.n_actions), "float64", 0.0, True)}

    def _bind_tables(self) -> None:
        super()._bind_tables()
        self._counts = self.policy.table("visit_counts")
        self._episodes: list[list[tuple[int, int, float]]] = []

    def _on_learn_start(self) -> None:
        assert self.env is not None
        while len(self._episodes) < self.env.num_envs:
            self._episodes.append([])

    def _start_episode(self, env_index: int, state: int) -> int:
        self._episodes[env_index] = []
        return self._epsilon_greedy(state)

    def _transition(self, env_index: int, state: int, action: int, reward: float, next_state: int,
                    terminated: bool, done: bool, info: dict[str, Any]) -> int:
        episode = self._episodes[env_index]
        episode.append((state, action, reward))
        if not done:
            return self._epsilon_greedy(next_state)
        q, counts = self._q, self._counts
        first_visit_at: dict[tuple[int, int], int] = {}
        if self.first_visit:
            for step, (visited_state, visited_action, _) in enumerate(episode):
                first_visit_at.setdefault((visited_state, visited_action), step)
        ret = 0.0 if terminated else max(q[next_state].tolist())
        for step in range(len(episode) - 1, -1, -1):
            visited_state, visited_action, step_reward = episode[step]
            ret = step_reward + self.gamma * ret
            if self.first_visit and first_visit_at[(visited_state, visited_action)] != step:
                continue
            counts[visited_state, visited_action] += 1.0
            step_size = self._step_size(counts[visited_state, visited_action])
            q[visited_state, visited_action] += step_size * (ret - q[visited_state, visited_action])
        episode.clear()
        return 0
