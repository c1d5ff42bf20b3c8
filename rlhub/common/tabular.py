"""Building blocks of tabular, planning and bandit algorithms.

Every table an algorithm learns (Q-values, models, counts, traces) is a buffer of a
:class:`TabularPolicy`, an SB3 ``BasePolicy``; SB3's ``save``/``load`` and Hub packaging therefore
need no special case. Learning reads and writes those buffers through numpy views in plain Python:
a tabular update touches a handful of numbers, and one torch operation costs more than the update.

- :class:`StateIndexer` turns ``Discrete`` and ``Tuple``-of-``Discrete`` observations into row indices.
- :class:`TabularPolicy` holds the tables and acts greedily (``deterministic=True``) or with the
  behaviour policy (epsilon-greedy over ``q_table`` here; bandit policies override it).
- :class:`TabularAlgorithm` is the ``BaseAlgorithm`` with the environment loop, the exploration and
  learning-rate schedules, logging and callbacks; an algorithm implements ``_start_episode`` and
  ``_transition``.
- :class:`TransitionModel` and :class:`PlanningAlgorithm` serve value and policy iteration, which
  plan on ``env.unwrapped.P`` instead of stepping the environment.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any, ClassVar, Self

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import safe_mean
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from rlhub.spec import SpaceMismatchError

#: ``name -> (shape, dtype, fill value, persistent)`` of the tables an algorithm keeps in its policy.
TableSpecs = dict[str, tuple[tuple[int, ...], str, float, bool]]

_DTYPES = {"float64": th.float64, "int64": th.int64, "bool": th.bool}


# --------------------------------------------------------------------------------------------
# Spaces


class StateIndexer:
    """Maps observations of a ``Discrete`` or ``Tuple``-of-``Discrete`` space to table rows.

    A ``Tuple`` (e.g. Blackjack's ``(player sum, dealer card, usable ace)``) is flattened in
    row-major order, as ``numpy.ravel_multi_index`` does; ``start`` offsets are removed.

    :param space: the observation space
    :param algo_name: named in the error for an unsupported space
    """

    def __init__(self, space: spaces.Space, algo_name: str = "this algorithm") -> None:
        if isinstance(space, spaces.Discrete):
            self.sizes: tuple[int, ...] = (int(space.n),)
            self.starts: tuple[int, ...] = (int(space.start),)
        elif isinstance(space, spaces.Tuple) and space.spaces and all(
            isinstance(member, spaces.Discrete) for member in space.spaces
        ):
            self.sizes = tuple(int(member.n) for member in space.spaces)
            self.starts = tuple(int(member.start) for member in space.spaces)
        else:
            hint = ""
            if isinstance(space, spaces.Tuple):
                hint = " (every member of a Tuple must be Discrete)"
            raise SpaceMismatchError(
                f"{algo_name} learns a table indexed by the observation, so it needs a Discrete observation space "
                f"or a Tuple of Discrete spaces{hint}; got {space}. Discretise the observations (e.g. with a "
                "gymnasium ObservationWrapper) or pick a neural algorithm (see `rlhub algos`)."
            )
        self.space = space
        self.is_tuple = isinstance(space, spaces.Tuple)
        strides = []
        stride = 1
        for size in reversed(self.sizes):
            strides.append(stride)
            stride *= size
        self.strides = tuple(reversed(strides))
        self.n_states = stride
        #: ``index(observation) -> int`` for one observation, as fast as Python allows
        self.index: Callable[[Any], int] = self._make_index()

    def _make_index(self) -> Callable[[Any], int]:
        if not self.is_tuple:
            start = self.starts[0]
            if start == 0:
                return int
            return lambda observation: int(observation) - start
        offset = sum(start * stride for start, stride in zip(self.starts, self.strides))
        strides = self.strides
        return lambda observation: sum(int(value) * stride for value, stride in zip(observation, strides)) - offset

    def indices(self, observation: Any) -> tuple[np.ndarray, bool]:
        """Row indices of one observation or a batch, and whether it was a batch (as SB3's
        ``is_vectorized_observation`` decides: a scalar is one observation, a 1-D array a batch)."""
        if not self.is_tuple:
            values = np.asarray(observation)
            if values.ndim > 1:
                raise ValueError(f"a batch of Discrete observations must be 1-D, got shape {values.shape}")
            vectorized = values.ndim == 1
            rows = values.reshape(-1).astype(np.int64) - self.starts[0]
        else:
            components = self._tuple_components(observation)
            vectorized = components[0].ndim == 1
            rows = np.zeros(components[0].shape, dtype=np.int64)
            for values, start, stride in zip(components, self.starts, self.strides):
                rows += (values.astype(np.int64) - start) * stride
            rows = rows.reshape(-1)
        for_check = self._tuple_components(observation) if self.is_tuple else [rows + self.starts[0]]
        for values, size, start in zip(for_check, self.sizes, self.starts):
            if np.any(values < start) or np.any(values >= start + size):
                raise ValueError(f"observation {observation!r} is outside the observation space {self.space}")
        return rows, vectorized

    def _tuple_components(self, observation: Any) -> list[np.ndarray]:
        n = len(self.sizes)
        if isinstance(observation, (tuple, list)) and len(observation) == n:
            components = [np.asarray(value) for value in observation]
        else:
            array = np.asarray(observation)
            if array.ndim == 1 and array.shape[0] == n:
                components = list(array)
                components = [np.asarray(value) for value in components]
            elif array.ndim == 2 and array.shape[1] == n:
                components = [array[:, k] for k in range(n)]
            else:
                raise ValueError(f"cannot read {observation!r} as an observation of {self.space}")
        if len({value.shape for value in components}) != 1 or components[0].ndim > 1:
            raise ValueError(f"the members of a Tuple observation must have one shape, got {observation!r}")
        return components


def check_action_space(space: spaces.Space, algo_name: str) -> None:
    """Raise :class:`~rlhub.spec.SpaceMismatchError` unless ``space`` is ``Discrete``."""
    if not isinstance(space, spaces.Discrete):
        raise SpaceMismatchError(
            f"{algo_name} keeps one table column per action, so it needs a Discrete action space; got {space}. "
            "Pick an algorithm for continuous actions (see `rlhub algos`)."
        )


# --------------------------------------------------------------------------------------------
# Randomness


class RandomStream:
    """Uniform numbers in [0, 1) from a seeded ``numpy.random.Generator``, drawn in blocks.

    One ``Generator.random()`` call costs about as much as a whole tabular update; popping from a
    pre-drawn list costs a tenth of that.
    """

    def __init__(self, rng: np.random.Generator, block: int = 4096) -> None:
        self.rng = rng
        self.block = block
        self._buffer: list[float] = []

    def uniform(self) -> float:
        try:
            return self._buffer.pop()
        except IndexError:
            self._buffer = self.rng.random(self.block).tolist()
            return self._buffer.pop()

    def index(self, n: int) -> int:
        """A uniform integer in ``[0, n)``."""
        return int(self.uniform() * n)


def greedy_with_ties(row: list[float], random: RandomStream) -> int:
    """The index of the largest value, ties broken uniformly at random (so that an all-zero table
    does not always pick action 0)."""
    best = max(row)
    if row.count(best) == 1:
        return row.index(best)
    ties = [action for action, value in enumerate(row) if value == best]
    return ties[random.index(len(ties))]


# --------------------------------------------------------------------------------------------
# Policy


class TabularPolicy(BasePolicy):
    """A policy whose state is a set of tables (torch buffers), acting on ``q_table``.

    ``deterministic=True`` takes the greedy action (the first of equal values, so that it is
    reproducible); otherwise the behaviour policy acts: epsilon-greedy with the ``exploration_rate``
    buffer, ties broken at random.

    :param observation_space: ``Discrete`` or ``Tuple`` of ``Discrete``
    :param action_space: ``Discrete``
    :param tables: ``name -> (shape, dtype, fill value, persistent)`` of the algorithm's tables;
        ``q_table`` of shape ``(n_states, n_actions)`` and the scalar ``exploration_rate`` are
        always there. Non-persistent tables (e.g. eligibility traces) are not saved.
    :param lr_schedule: unused; accepted because SB3 passes it to policies
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        tables: TableSpecs | None = None,
        lr_schedule: Schedule | None = None,
    ) -> None:
        super().__init__(observation_space, action_space)
        self.indexer = StateIndexer(observation_space, type(self).__name__)
        check_action_space(action_space, type(self).__name__)
        self.n_states = self.indexer.n_states
        self.n_actions = int(action_space.n)
        self.action_start = int(action_space.start)
        self.tables: TableSpecs = {
            "q_table": ((self.n_states, self.n_actions), "float64", 0.0, True),
            "exploration_rate": ((), "float64", 0.0, True),
            **(tables or {}),
        }
        for name, (shape, dtype, fill, persistent) in self.tables.items():
            self.register_buffer(name, th.full(tuple(shape), fill, dtype=_DTYPES[dtype]), persistent=persistent)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(tables=self.tables)
        return data

    def table(self, name: str) -> np.ndarray:
        """A numpy view of a table: writing to it writes the buffer."""
        tensor = getattr(self, name)
        if tensor.device.type != "cpu":
            raise RuntimeError("tabular policies keep their tables on the CPU")
        return tensor.numpy()

    # Acting

    def greedy_actions(self, rows: np.ndarray) -> np.ndarray:
        """The greedy action of each row (first of equal values)."""
        return self.table("q_table")[rows].argmax(axis=1)

    def behaviour_actions(self, rows: np.ndarray) -> np.ndarray:
        """The behaviour policy's action of each row: epsilon-greedy, ties broken at random."""
        values = self.table("q_table")[rows]
        best = values == values.max(axis=1, keepdims=True)
        greedy = (best * np.random.random_sample(values.shape)).argmax(axis=1)
        explore = np.random.random_sample(len(rows)) < float(self.exploration_rate)
        return np.where(explore, np.random.randint(self.n_actions, size=len(rows)), greedy)

    def predict(
        self,
        observation: Any,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """As SB3's ``BasePolicy.predict``: a batch of observations gives a batch of actions, one
        observation gives a 0-d array."""
        if isinstance(observation, tuple) and len(observation) == 2 and isinstance(observation[1], dict):
            raise ValueError(
                "predict() got (observation, info): pass the observation only (Gymnasium's reset() returns both)."
            )
        rows, vectorized = self.indexer.indices(observation)
        actions = self.greedy_actions(rows) if deterministic else self.behaviour_actions(rows)
        actions = actions.astype(np.int64) + self.action_start
        if not vectorized:
            actions = actions.squeeze(axis=0)
        return actions, state

    def _predict(self, observation: Any, deterministic: bool = False) -> th.Tensor:
        if isinstance(observation, th.Tensor):
            observation = observation.cpu().numpy()
        elif isinstance(observation, (tuple, list)):
            observation = tuple(o.cpu().numpy() if isinstance(o, th.Tensor) else o for o in observation)
        actions, _ = self.predict(observation, deterministic=deterministic)
        return th.as_tensor(np.atleast_1d(actions))

    def forward(self, observation: Any, deterministic: bool = False) -> th.Tensor:
        return self._predict(observation, deterministic=deterministic)


# --------------------------------------------------------------------------------------------
# Environment stepping


class _DirectSteps:
    """Steps the sub-environments of a plain ``DummyVecEnv`` directly.

    ``DummyVecEnv.step`` deep-copies the infos and copies observations into buffers on every step,
    which costs more than the env itself on toy-text environments; a tabular update needs none of
    it. Resets happen as ``DummyVecEnv`` does them (``reset()`` without a seed after the first).
    """

    def __init__(self, venv: DummyVecEnv, action_start: int) -> None:
        self.envs = venv.envs
        self.action_start = action_start

    def step(self, actions: list[int]) -> list[tuple[Any, float, bool, bool, dict]]:
        if self.action_start:
            return [env.step(action + self.action_start) for env, action in zip(self.envs, actions)]
        return [env.step(action) for env, action in zip(self.envs, actions)]

    def reset(self, index: int) -> Any:
        return self.envs[index].reset()[0]


class _VecEnvSteps:
    """Steps any ``VecEnv`` (subprocess, wrapped) through its own API."""

    def __init__(self, venv: VecEnv, action_start: int) -> None:
        self.venv = venv
        self.action_start = action_start
        self._observations: Any = None

    def step(self, actions: list[int]) -> list[tuple[Any, float, bool, bool, dict]]:
        observations, rewards, dones, infos = self.venv.step(np.asarray(actions, dtype=np.int64) + self.action_start)
        self._observations = observations
        results = []
        for index, (reward, done, info) in enumerate(zip(rewards, dones, infos)):
            if done:
                truncated = bool(info.get("TimeLimit.truncated", False))
                results.append((info["terminal_observation"], float(reward), not truncated, truncated, info))
            else:
                results.append((_unstack(observations, index), float(reward), False, False, info))
        return results

    def reset(self, index: int) -> Any:
        return _unstack(self._observations, index)


def _unstack(observations: Any, index: int) -> Any:
    if isinstance(observations, tuple):
        return tuple(values[index] for values in observations)
    return observations[index]


class _Rollout:
    """Where each sub-environment is: its state row and next action, plus the arrays callbacks read
    (``dones``, ``infos``, ``rewards``) as ``self.locals``, updated in place every step."""

    def __init__(self, n_envs: int) -> None:
        self.states = [0] * n_envs
        self.actions = [0] * n_envs
        self.dones = np.zeros(n_envs, dtype=bool)
        self.rewards = np.zeros(n_envs, dtype=np.float64)
        self.infos: list[dict] = [{} for _ in range(n_envs)]

    def callback_locals(self) -> dict[str, Any]:
        return {"dones": self.dones, "infos": self.infos, "rewards": self.rewards}


# --------------------------------------------------------------------------------------------
# Algorithm


class TabularAlgorithm(BaseAlgorithm):
    """Base of algorithms that learn tables from an environment, one transition at a time.

    A subclass implements :meth:`_start_episode` and :meth:`_transition` (and may implement
    :meth:`_end_episode`, :meth:`_table_specs`, :meth:`_bind_tables`, :meth:`_record_logs`).
    ``learn(total_timesteps)`` counts environment steps as SB3 does (``n_envs`` per vectorised step),
    calls ``callback.on_step()`` after each, and dumps the logger every ``log_interval`` episodes
    and at the end.

    Exploration (when the subclass explores): SB3 DQN's linear schedule (``exploration_initial_eps``
    to ``exploration_final_eps`` over ``exploration_fraction`` of the budget, updated every step),
    or, with ``exploration_decay_rate`` set, the Hugging Face course's per-episode exponential decay
    ``eps = final + (initial - final) * exp(-decay_rate * episode)``.
    The learning rate (a float or a schedule of the remaining progress) is read at each episode start.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"TabularPolicy": TabularPolicy}
    #: attributes rebuilt by ``_setup_model`` (numpy views, generators, loop state): never pickled
    _transient_attributes: ClassVar[tuple[str, ...]] = (
        "_rng", "_random", "_rollout", "_q", "_exploration_view", "indexer"
    )
    #: whether the algorithm acts epsilon-greedily with the exploration schedule
    _explores: ClassVar[bool] = True

    policy: TabularPolicy

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
    ) -> None:
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
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
        self._rollout: _Rollout | None = None

    # Setup

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.indexer = StateIndexer(self.observation_space, type(self).__name__)
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, tables=self._table_specs(),
            **self._policy_arguments(), **self.policy_kwargs,
        )
        self._rng = np.random.default_rng(self.seed)
        self._random = RandomStream(self._rng)
        self._rollout = None
        self._alpha = float(self.lr_schedule(self._current_progress_remaining))
        self._bind_tables()

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

    # Acting while learning

    def _epsilon_greedy(self, state: int) -> int:
        if self._random.uniform() < self.exploration_rate:
            return self._random.index(self.n_actions)
        return greedy_with_ties(self._q[state].tolist(), self._random)

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

        action_start = int(self.action_space.start)  # type: ignore[attr-defined]
        steps: _DirectSteps | _VecEnvSteps
        if type(self.env) is DummyVecEnv:
            steps = _DirectSteps(self.env, action_start)
        else:
            steps = _VecEnvSteps(self.env, action_start)
            steps._observations = self._last_obs
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

        self._last_obs = self._current_observations(steps)  # type: ignore[assignment]
        callback.on_rollout_end()
        self.dump_logs()
        callback.on_training_end()
        return self

    def _begin_rollout(self) -> _Rollout:
        assert self.env is not None
        rollout = _Rollout(self.env.num_envs)
        for env_index in range(self.env.num_envs):
            state = self.indexer.index(_unstack(self._last_obs, env_index))
            rollout.states[env_index] = state
            rollout.actions[env_index] = self._start_episode(env_index, state)
        return rollout

    def _current_observations(self, steps: _DirectSteps | _VecEnvSteps) -> Any:
        """The observations the environments are at, in VecEnv form (for ``_last_obs``)."""
        if isinstance(steps, _VecEnvSteps):
            return steps._observations
        # DummyVecEnv's own buffers are stale after direct steps; rebuild from the state rows.
        assert self._rollout is not None
        rows = np.asarray(self._rollout.states, dtype=np.int64)
        components = np.unravel_index(rows, self.indexer.sizes)
        values = [component + start for component, start in zip(components, self.indexer.starts)]
        return tuple(values) if self.indexer.is_tuple else values[0]

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


def td_target(q: np.ndarray, reward: float, next_state: int, terminated: bool, gamma: float) -> float:
    """``r + gamma * max_a Q(s', a)``, or ``r`` at a terminal state."""
    if terminated:
        return reward
    return reward + gamma * max(q[next_state].tolist())


# --------------------------------------------------------------------------------------------
# Planning


class TransitionModel:
    """A tabular MDP read from Gymnasium's toy-text convention ``P[s][a] = [(prob, next_state,
    reward, terminated), ...]``, stored sparsely for vectorised Bellman backups.

    :param transitions: the ``P`` mapping or list
    :param n_states: expected number of states
    :param n_actions: expected number of actions
    """

    def __init__(self, transitions: Any, n_states: int, n_actions: int) -> None:
        pair_index, next_states, weights, rewards, continues = [], [], [], [], []
        if len(transitions) != n_states:
            raise ValueError(f"the transition model P has {len(transitions)} states, the observation space {n_states}")
        for state in range(n_states):
            outcomes_by_action = transitions[state]
            if len(outcomes_by_action) != n_actions:
                raise ValueError(f"P[{state}] has {len(outcomes_by_action)} actions, the action space {n_actions}")
            for action in range(n_actions):
                total = 0.0
                for outcome in outcomes_by_action[action]:
                    probability, next_state, reward, terminated = outcome[:4]
                    pair_index.append(state * n_actions + action)
                    next_states.append(int(next_state))
                    weights.append(float(probability))
                    rewards.append(float(reward))
                    continues.append(0.0 if terminated else 1.0)
                    total += float(probability)
                if abs(total - 1.0) > 1e-6:
                    raise ValueError(f"the probabilities of P[{state}][{action}] sum to {total}, not 1")
        self.n_states = n_states
        self.n_actions = n_actions
        self.pair_index = np.asarray(pair_index, dtype=np.int64)
        self.next_states = np.asarray(next_states, dtype=np.int64)
        probabilities = np.asarray(weights, dtype=np.float64)
        #: expected immediate reward of each (state, action), shape (S, A)
        self.expected_rewards = np.bincount(
            self.pair_index, weights=probabilities * np.asarray(rewards), minlength=n_states * n_actions
        ).reshape(n_states, n_actions)
        #: probability of each outcome times "not terminated": the weight of the next state's value
        self.continue_weights = probabilities * np.asarray(continues)

    def q_values(self, values: np.ndarray, gamma: float) -> np.ndarray:
        """``Q(s, a) = E[r + gamma * (1 - terminated) * V(s')]``, shape (S, A)."""
        future = np.bincount(
            self.pair_index, weights=self.continue_weights * values[self.next_states],
            minlength=self.n_states * self.n_actions,
        ).reshape(self.n_states, self.n_actions)
        return self.expected_rewards + gamma * future

    @classmethod
    def from_env(cls, env: VecEnv, n_states: int, n_actions: int, algo_name: str) -> TransitionModel:
        """Read ``env.unwrapped.P`` of the first sub-environment, or fail saying what is missing."""
        try:
            transitions = env.get_attr("P", indices=[0])[0]
        except AttributeError:
            transitions = None
        if transitions is None:
            env_id = _env_id(env)
            raise MissingTransitionModelError(
                f"{algo_name} plans on the environment's transition model and {env_id} has none: it needs "
                "env.unwrapped.P in Gymnasium's toy-text convention P[s][a] = [(prob, next_state, reward, "
                "terminated), ...] (FrozenLake-v1, Taxi-v4, CliffWalking-v1 and rlhub/Cliff-v0 have it). "
                "Use a learning algorithm such as q_learning for environments without a model."
            )
        return cls(transitions, n_states, n_actions)


class MissingTransitionModelError(SpaceMismatchError):
    """A planning algorithm got an environment without ``env.unwrapped.P``."""


def _env_id(env: VecEnv) -> str:
    try:
        spec = env.get_attr("spec", indices=[0])[0]
    except AttributeError:
        spec = None
    return f"the environment {spec.id!r}" if spec is not None else "the environment"


class PlanningAlgorithm(TabularAlgorithm):
    """Base of dynamic-programming planners (value and policy iteration).

    ``learn(total_timesteps)`` plans on ``env.unwrapped.P`` instead of stepping the environment; one
    timestep is one Bellman backup of one state, so a sweep costs ``n_states`` timesteps and
    ``total_timesteps`` is the sweep budget times ``n_states``. Planning stops early at convergence,
    as an early-stopping callback would. ``callback.on_step()`` is called after every sweep.
    """

    _explores = False
    _transient_attributes = (*TabularAlgorithm._transient_attributes, "_v", "_model")

    def __init__(self, policy: str | type[TabularPolicy], env: GymEnv | str | None, gamma: float, theta: float,
                 stats_window_size: int, tensorboard_log: str | None, policy_kwargs: dict[str, Any] | None,
                 verbose: int, seed: int | None, device: th.device | str) -> None:
        super().__init__(policy, env, learning_rate=0.0, gamma=gamma, exploration_initial_eps=0.0,
                         exploration_final_eps=0.0, stats_window_size=stats_window_size,
                         tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs, verbose=verbose, seed=seed,
                         device=device)
        if theta <= 0:
            raise ValueError(f"{type(self).__name__}: theta must be > 0, got {theta}")
        self.theta = theta
        self.converged = False
        self.n_sweeps = 0
        self._model: TransitionModel | None = None

    def _table_specs(self) -> TableSpecs:
        return {"v_table": ((self.n_states,), "float64", 0.0, True)}

    def _bind_tables(self) -> None:
        super()._bind_tables()
        self._v = self.policy.table("v_table")
        self._model = None
        if self.env is not None:  # fail before any training when the environment has no model
            self._model = TransitionModel.from_env(self.env, self.n_states, self.n_actions, type(self).__name__)

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset)
        self._model = TransitionModel.from_env(self.env, self.n_states, self.n_actions,  # type: ignore[arg-type]
                                               type(self).__name__)

    def _sweep(self, model: TransitionModel) -> tuple[float, bool]:
        """One sweep: return the largest value change and whether planning has converged."""
        raise NotImplementedError

    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 100,
        tb_log_name: str = "run",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> Self:
        """Plan for at most ``total_timesteps`` state backups (``n_states`` per sweep) or until converged.

        :param log_interval: dump the logger every this many sweeps (and at the end)
        """
        total_timesteps, callback = self._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name,
                                                      progress_bar)
        assert self.env is not None
        if self._model is None:
            self._model = TransitionModel.from_env(self.env, self.n_states, self.n_actions, type(self).__name__)
        callback.on_training_start(locals(), globals())
        callback.on_rollout_start()
        self.converged = False
        sweeps_this_call = 0
        while self.num_timesteps < total_timesteps:
            self.last_delta, self.converged = self._sweep(self._model)
            self.n_sweeps += 1
            sweeps_this_call += 1
            self.num_timesteps += self.n_states
            self._current_progress_remaining = 1.0 - self.num_timesteps / total_timesteps
            if not callback.on_step() or self.converged:
                break
            if sweeps_this_call % max(log_interval, 1) == 0:
                self.dump_logs()
        callback.on_rollout_end()
        self.dump_logs()
        callback.on_training_end()
        return self

    def _record_logs(self) -> None:
        self.logger.record("train/sweeps", self.n_sweeps)
        self.logger.record("train/max_value_change", getattr(self, "last_delta", float("nan")))
        self.logger.record("train/converged", int(self.converged))


def transition_model_of(env: VecEnv, algo_name: str = "planning") -> TransitionModel:
    """The :class:`TransitionModel` of a VecEnv's first sub-environment (tests, benchmarks)."""
    observation_space = env.observation_space
    action_space = env.action_space
    return TransitionModel.from_env(
        env, StateIndexer(observation_space).n_states, int(action_space.n), algo_name  # type: ignore[attr-defined]
    )


__all__ = [
    "MissingTransitionModelError",
    "PlanningAlgorithm",
    "RandomStream",
    "StateIndexer",
    "TabularAlgorithm",
    "TabularPolicy",
    "TransitionModel",
    "check_action_space",
    "greedy_with_ties",
    "td_target",
    "transition_model_of",
]
