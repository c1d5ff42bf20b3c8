"""The base of tabular learners: setup, seeding, schedules, the environment loop and its logs."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, ClassVar, Self

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import ConstantSchedule, safe_mean

from rlhub_tabular.common.indexing import StateIndexer, check_action_space
from rlhub_tabular.common.policy import TableSpecs, TabularPolicy
from rlhub_tabular.common.randomness import RandomStream, greedy_with_ties
from rlhub_tabular.common.stepping import Rollout, env_steps, unstack


class TabularAlgorithm(BaseAlgorithm):
    """Base of algorithms that learn tables from an environment, one transition at a time.

    A subclass implements :meth:`_start_episode` and :meth:`_transition` (and may implement
    :meth:`_end_episode`, :meth:`_table_specs`, :meth:`_bind_tables`, :meth:`_record_logs`).
    ``learn(total_timesteps)`` counts environment steps as SB3 does (``n_envs`` per vectorised step),
    calls ``callback.on_step()`` after each, and dumps the logger every ``log_interval`` episodes
    and at the end.

    Learning reads and writes the policy's tables through numpy views in plain Python: a tabular
    update touches a handful of numbers, and one torch operation costs more than the update.
    Every draw comes from the algorithm's seeded generators (see :meth:`set_random_seed`).

    Exploration (when the subclass explores): SB3 DQN's linear schedule (``exploration_initial_eps``
    to ``exploration_final_eps`` over ``exploration_fraction`` of the budget, updated every step),
    or, with ``exploration_decay_rate`` set, the Hugging Face course's per-episode exponential decay
    ``eps = final + (initial - final) * exp(-decay_rate * episode)``.
    The learning rate (a float or a schedule of the remaining progress) is read at each episode start;
    algorithms that count visits (``_sample_averages``) also accept ``None``: step ``1 / count``.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"TabularPolicy": TabularPolicy}
    #: attributes rebuilt by ``_setup_model`` (numpy views, generators, loop state): never pickled
    _transient_attributes: ClassVar[tuple[str, ...]] = (
        "_rng", "_random", "_rollout", "_q", "_exploration_view", "indexer"
    )
    #: whether the algorithm acts epsilon-greedily with the exploration schedule
    _explores: ClassVar[bool] = True
    #: whether ``learning_rate=None`` (sample averages, see :meth:`_step_size`) is allowed
    _sample_averages: ClassVar[bool] = False

    policy: TabularPolicy

    def __init__(
        self,
        policy: str | type[TabularPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule | None = 0.1,
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
    ) -> None:
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,  # type: ignore[arg-type]  # None: sample averages
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device="cpu",  # tables are read through numpy views, which live on the CPU
            support_multi_env=True,
            seed=seed,
        )
        del device
        name = type(self).__name__
        if env is not None:
            StateIndexer(self.observation_space, name)
            check_action_space(self.action_space, name)
        if learning_rate is None and not self._sample_averages:
            raise ValueError(f"{name}: learning_rate must be a number or a schedule, got None")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"{name}: gamma must be in [0, 1], got {gamma}")
        for key, value in (("exploration_initial_eps", exploration_initial_eps),
                           ("exploration_final_eps", exploration_final_eps)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: {key} must be in [0, 1], got {value}")
        if not 0.0 <= exploration_fraction <= 1.0:
            raise ValueError(f"{name}: exploration_fraction must be in [0, 1], got {exploration_fraction}")
        if exploration_decay_rate is not None and exploration_decay_rate < 0:
            raise ValueError(f"{name}: exploration_decay_rate must be >= 0, got {exploration_decay_rate}")
        self.gamma = gamma
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.exploration_fraction = exploration_fraction
        self.exploration_decay_rate = exploration_decay_rate
        self.exploration_rate = exploration_initial_eps if self._explores else 0.0
        self._rollout: Rollout | None = None

    # Setup

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.indexer = StateIndexer(self.observation_space, type(self).__name__)
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, tables=self._table_specs(),
            **self._policy_arguments(), **self.policy_kwargs,
        )
        self.set_random_seed(self.seed)
        self._rollout = None
        self._alpha = float(self.lr_schedule(self._current_progress_remaining))
        self._bind_tables()

    def _setup_lr_schedule(self) -> None:
        if self.learning_rate is None:  # sample averages; the schedule only feeds the log
            self.lr_schedule = ConstantSchedule(0.0)
        else:
            super()._setup_lr_schedule()

    def set_random_seed(self, seed: int | None = None) -> None:
        """Seed SB3's generators (global ones, the action space, the environment) and the algorithm's:
        learning draws from ``_rng`` and the policy's stochastic ``predict`` from a child of it, so
        that a seed fixes what is learned and predicting does not change it."""
        super().set_random_seed(seed)
        self._rng = np.random.default_rng(seed)
        self._random = RandomStream(self._rng)
        if getattr(self, "policy", None) is not None:
            self.policy.rng = self._rng.spawn(1)[0]  # spawning leaves the parent's stream as it was

    def _table_specs(self) -> TableSpecs:
        """The algorithm's tables besides ``q_table`` and ``exploration_rate``."""
        return {}

    def _policy_arguments(self) -> dict[str, Any]:
        """Constructor arguments of the policy that follow from the algorithm's hyperparameters."""
        return {}

    def _bind_tables(self) -> None:
        """Cache numpy views of the policy's tables as attributes (listed in ``_transient_attributes``)."""
        self._q = self.policy.table("q_table")
        self._exploration_view = self.policy.table("exploration_rate")
        self._exploration_view[()] = self.exploration_rate

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), *self._transient_attributes]

    @property
    def n_states(self) -> int:
        return self.indexer.n_states

    @property
    def n_actions(self) -> int:
        return int(self.action_space.n)  # type: ignore[attr-defined]

    def _get_policy_from_name(self, policy_name: str) -> type[BasePolicy]:
        if policy_name not in self.policy_aliases:
            raise ValueError(
                f"{type(self).__name__} has no policy {policy_name!r}; use {', '.join(self.policy_aliases)} "
                "(in a zoo config: `policy: " + next(iter(self.policy_aliases)) + "`)."
            )
        return self.policy_aliases[policy_name]

    # Hooks for subclasses

    def _start_episode(self, env_index: int, state: int) -> int:
        """A new episode of sub-environment ``env_index`` starts in ``state``: return its first action."""
        return self._epsilon_greedy(state)

    def _transition(self, env_index: int, state: int, action: int, reward: float, next_state: int,
                    terminated: bool, done: bool, info: dict[str, Any]) -> int:
        """Learn from one transition and return the next action (ignored when ``done``).

        :param terminated: the episode ended in a terminal state (no bootstrapping from ``next_state``)
        :param done: terminated or truncated (time limit): ``next_state`` is the last observation
        :param info: the environment's info dict of this step
        """
        raise NotImplementedError

    def _end_episode(self, env_index: int) -> None:
        """The episode of ``env_index`` has ended (after its last ``_transition``)."""

    def _on_learn_start(self) -> None:
        """Called at the start of every ``learn`` (e.g. to allocate per-environment traces)."""

    def _record_logs(self) -> None:
        """Record algorithm-specific values before each logger dump."""

    # Acting and step sizes while learning

    def _epsilon_greedy(self, state: int) -> int:
        if self._random.uniform() < self.exploration_rate:
            return self._random.index(self.n_actions)
        return greedy_with_ties(self._q[state].tolist(), self._random)

    def _step_size(self, count: float) -> float:
        """The step of an update whose pair has now been counted ``count`` times: ``1 / count`` (the
        sample average) when ``learning_rate`` is None, else the scheduled learning rate."""
        return 1.0 / count if self.learning_rate is None else self._alpha

    def _set_exploration_rate(self, value: float) -> None:
        self.exploration_rate = value
        self._exploration_view[()] = value

    def _update_exploration(self, episode_ended: bool) -> None:
        if self.exploration_decay_rate is not None:
            if episode_ended:
                self._set_exploration_rate(
                    self.exploration_final_eps + (self.exploration_initial_eps - self.exploration_final_eps)
                    * math.exp(-self.exploration_decay_rate * self._episode_num)
                )
            return
        progress = 1.0 - self._current_progress_remaining
        if progress >= self.exploration_fraction:
            value = self.exploration_final_eps
        else:
            value = self.exploration_initial_eps + progress * (
                self.exploration_final_eps - self.exploration_initial_eps
            ) / self.exploration_fraction
        if value != self.exploration_rate:
            self._set_exploration_rate(value)

    # The loop

    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 100,
        tb_log_name: str = "run",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> Self:
        """Learn for ``total_timesteps`` environment steps.

        :param log_interval: dump the logger every this many episodes (and at the end)
        """
        restart = reset_num_timesteps or self._last_obs is None or self._rollout is None
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        assert self.env is not None
        explores = self._explores
        lr_schedule = self.lr_schedule
        self._current_progress_remaining = 1.0 - self.num_timesteps / total_timesteps
        if explores:
            self._update_exploration(episode_ended=True)
        self._alpha = float(lr_schedule(self._current_progress_remaining))
        self._on_learn_start()
        if restart:
            self._rollout = self._begin_rollout()
        rollout = self._rollout
        assert rollout is not None
        callback.on_training_start(locals(), globals())
        callback.update_locals(rollout.callback_locals())
        callback.on_rollout_start()

        steps = env_steps(self.env, int(self.action_space.start), self.indexer,  # type: ignore[attr-defined]
                          self._last_obs)
        index = self.indexer.index
        states, actions, dones, rewards, infos = (
            rollout.states, rollout.actions, rollout.dones, rollout.rewards, rollout.infos
        )
        n_envs = self.env.num_envs
        next_log = self._episode_num + max(log_interval, 1)

        while self.num_timesteps < total_timesteps:
            results = steps.step(actions)
            for env_index in range(n_envs):
                observation, reward, terminated, truncated, info = results[env_index]
                next_state = index(observation)
                done = terminated or truncated
                action = self._transition(env_index, states[env_index], actions[env_index], float(reward),
                                          next_state, terminated, done, info)
                dones[env_index] = done
                rewards[env_index] = reward
                infos[env_index] = info
                if done:
                    self._episode_num += 1
                    self._end_episode(env_index)
                    episode_info = info.get("episode")
                    if episode_info is not None:
                        self.ep_info_buffer.append(episode_info)  # type: ignore[union-attr]
                    if "is_success" in info:
                        self.ep_success_buffer.append(info["is_success"])  # type: ignore[union-attr]
                    if explores:
                        self._update_exploration(episode_ended=True)
                    self._alpha = float(lr_schedule(self._current_progress_remaining))
                    next_state = index(steps.reset(env_index))
                    action = self._start_episode(env_index, next_state)
                states[env_index] = next_state
                actions[env_index] = action
            self.num_timesteps += n_envs
            self._current_progress_remaining = 1.0 - self.num_timesteps / total_timesteps
            if explores and self.exploration_decay_rate is None:
                self._update_exploration(episode_ended=False)
            if not callback.on_step():
                break
            if self._episode_num >= next_log:
                self.dump_logs()
                next_log = self._episode_num + max(log_interval, 1)

        self._last_obs = steps.observations(states)
        callback.on_rollout_end()
        self.dump_logs()
        callback.on_training_end()
        return self

    def _begin_rollout(self) -> Rollout:
        assert self.env is not None
        rollout = Rollout(self.env.num_envs)
        for env_index in range(self.env.num_envs):
            state = self.indexer.index(unstack(self._last_obs, env_index))
            rollout.states[env_index] = state
            rollout.actions[env_index] = self._start_episode(env_index, state)
        return rollout

    def dump_logs(self) -> None:
        """Record the rollout and schedule values and write them (stdout, TensorBoard, ...)."""
        assert self.ep_info_buffer is not None and self.ep_success_buffer is not None
        time_elapsed = max((time.time_ns() - self.start_time) / 1e9, sys.float_info.epsilon)
        fps = int((self.num_timesteps - self._num_timesteps_at_start) / time_elapsed)
        self.logger.record("time/episodes", self._episode_num, exclude="tensorboard")
        if len(self.ep_info_buffer) > 0:
            self.logger.record("rollout/ep_rew_mean", safe_mean([info["r"] for info in self.ep_info_buffer]))
            self.logger.record("rollout/ep_len_mean", safe_mean([info["l"] for info in self.ep_info_buffer]))
        if len(self.ep_success_buffer) > 0:
            self.logger.record("rollout/success_rate", safe_mean(self.ep_success_buffer))
        if self._explores:
            self.logger.record("rollout/exploration_rate", self.exploration_rate)
        self.logger.record("train/learning_rate", self._alpha)
        self._record_logs()
        self.logger.record("time/fps", fps)
        self.logger.record("time/time_elapsed", int(time_elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)
