"""The base of the offline family: a fixed dataset held as tensors, learned from by gradient steps.

An offline algorithm never acts in its environment while it learns; the environment (optional)
only evaluates, through callbacks. ``learn(total_timesteps)`` therefore counts gradient steps: each
one samples a minibatch of transitions, updates the networks, adds 1 to ``num_timesteps`` and calls
the callbacks' ``on_step``, so rlhub's evaluation and checkpoint frequencies count gradient steps.
"""

from __future__ import annotations

import sys
import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common import utils
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule

from rlhub_offline.common.allocator import keep_freed_memory

if TYPE_CHECKING:
    from rlhub.datasets import OfflineData

SelfOfflineAlgorithm = TypeVar("SelfOfflineAlgorithm", bound="OfflineAlgorithm")


@dataclass(frozen=True)
class TransitionBatch:
    """A minibatch of transitions on the algorithm's device (leading axis: transition).

    :param observations: (B, *observation_shape) float32
    :param actions: (B,) int64 for Discrete actions, (B, action_dim) float32 for Box actions
    :param rewards: (B,) float32
    :param next_observations: (B, *observation_shape) float32
    :param terminations: (B,) float32, 1 where the episode terminated after the step (a time limit's
        truncation is not a termination: its next observation is bootstrapped)
    """

    observations: th.Tensor
    actions: th.Tensor
    rewards: th.Tensor
    next_observations: th.Tensor
    terminations: th.Tensor


class TransitionTensors:
    """Every transition of a dataset, converted once to one float32 matrix on the device, so that a
    minibatch is one ``index_select`` and a few views, with no per-step NumPy or copying.

    :param data: the dataset
    :param device: where the tensors live
    :param actions: the actions as the algorithm learns them (e.g. rescaled to [-1, 1]); the
        dataset's own by default
    """

    def __init__(self, data: OfflineData, device: th.device | str, actions: np.ndarray | None = None) -> None:
        actions = data.actions if actions is None else actions
        count = len(data.observations)
        self.observation_shape = tuple(data.observations.shape[1:])
        self.discrete_actions = isinstance(data.action_space, spaces.Discrete)
        observation_size = int(np.prod(self.observation_shape))
        action_columns = actions.reshape(count, -1).astype(np.float32)
        columns = [
            data.observations.reshape(count, -1).astype(np.float32),
            action_columns,
            data.rewards.reshape(count, 1).astype(np.float32),
            data.next_observations.reshape(count, -1).astype(np.float32),
            data.terminations.reshape(count, 1).astype(np.float32),
        ]
        self.packed = th.as_tensor(np.concatenate(columns, axis=1), device=device)
        self.size = count
        action_size = action_columns.shape[1]
        bounds = np.cumsum([0, observation_size, action_size, 1, observation_size, 1])
        self._slices = [slice(int(start), int(end)) for start, end in zip(bounds[:-1], bounds[1:])]

    def sample(self, batch_size: int, generator: th.Generator) -> TransitionBatch:
        """``batch_size`` transitions drawn uniformly with replacement."""
        indices = th.randint(0, self.size, (batch_size,), generator=generator, device=self.packed.device)
        return self.batch(indices)

    def batch(self, indices: th.Tensor) -> TransitionBatch:
        """The transitions at ``indices`` (B,)."""
        rows = self.packed.index_select(0, indices)
        observations, actions, rewards, next_observations, terminations = (rows[:, part] for part in self._slices)
        shape = (len(indices), *self.observation_shape)
        return TransitionBatch(
            observations.reshape(shape),
            actions.reshape(-1).long() if self.discrete_actions else actions,
            rewards.reshape(-1),
            next_observations.reshape(shape),
            terminations.reshape(-1),
        )


def load_offline_data(dataset: str | OfflineData) -> OfflineData:
    """The dataset itself, or the one ``rlhub.datasets.load_dataset`` finds for an id or path."""
    if isinstance(dataset, str):
        from rlhub.datasets import load_dataset

        return load_dataset(dataset)
    return dataset


def same_space(first: spaces.Space[Any], second: spaces.Space[Any]) -> bool:
    """Same kind and shape (and number of actions for Discrete); bounds and dtypes may differ."""
    if type(first) is not type(second) or first.shape != second.shape:
        return False
    return not isinstance(first, spaces.Discrete) or int(first.n) == int(second.n)  # type: ignore[attr-defined]


class OfflineAlgorithm(BaseAlgorithm):
    """
    Base of the offline family: learn from a dataset by gradient steps, evaluate in the environment.

    A subclass builds its networks in ``_setup_model`` and says what one gradient step does
    (``train_step``, on what ``_sample_batch`` draws: transitions by default), which optimizers
    follow the learning-rate schedule (``_scheduled_optimizers``)
    and, if it learns actions on another scale than the dataset's, how to convert them
    (``_learned_actions``). The base loads the dataset (excluded from the saved model), checks it
    fits the environment, holds it as tensors (:class:`TransitionTensors`), runs the loop with
    callbacks, and logs the mean of each step statistic every ``log_interval`` steps.

    :param policy: The policy model to use (MlpPolicy, ...)
    :param env: The environment to evaluate on (if registered in Gym, can be str); None to learn
        from the dataset alone (its spaces are used)
    :param dataset: The dataset: an ``OfflineData``, or an id or path for ``rlhub.datasets.load_dataset``;
        None to attach one later with ``set_dataset`` (a loaded model has none)
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0)
    :param batch_size: Transitions per gradient step
    :param policy_kwargs: additional arguments to be passed to the policy on creation
    :param stats_window_size: Window size for the rollout logging (unused while learning offline)
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param verbose: the verbosity level: 0 no output, 1 info, 2 debug
    :param seed: Seed for the pseudo random generators (also the minibatch draws)
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
    :param supported_action_spaces: The action spaces supported by the algorithm
    """

    #: Gradient steps between two dumps of the logger when ``learn`` is not told.
    default_log_interval: ClassVar[int] = 1000

    policy: BasePolicy

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: GymEnv | str | None,
        dataset: str | OfflineData | None,
        learning_rate: float | Schedule,
        batch_size: int,
        policy_kwargs: dict[str, Any] | None,
        stats_window_size: int,
        tensorboard_log: str | None,
        verbose: int,
        seed: int | None,
        device: th.device | str,
        supported_action_spaces: tuple[type[spaces.Space[Any]], ...],
    ) -> None:
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            support_multi_env=True,
            seed=seed,
            supported_action_spaces=supported_action_spaces,
        )
        self.batch_size = batch_size
        self._supported_action_spaces = supported_action_spaces
        #: Which dataset the model learned from (saved with it; the data itself is not).
        self.dataset_id: str | None = None
        self.dataset_hash: str | None = None
        self.dataset: str | OfflineData | None = None
        self.offline_data: OfflineData | None = None
        self.transitions: TransitionTensors | None = None
        self._minibatch_generator: th.Generator | None = None
        if env is None:
            self.n_envs = 1
        if dataset is not None:
            self.set_dataset(dataset)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")

    # ----------------------------------------------------------------------------------------
    # The dataset

    def set_dataset(self, dataset: str | OfflineData) -> None:
        """Learn from ``dataset`` from now on (also after ``load``); it must fit the model's spaces."""
        data = load_offline_data(dataset)
        if not isinstance(data.action_space, self._supported_action_spaces):
            names = ", ".join(space.__name__ for space in self._supported_action_spaces)
            raise ValueError(f"{type(self).__name__} supports {names} actions; dataset {data.dataset_id!r} has "
                             f"{data.action_space}")
        if getattr(self, "observation_space", None) is None:  # no env: the dataset says
            self.observation_space = data.observation_space
            self.action_space = data.action_space
        for role, own, theirs in (("observation", self.observation_space, data.observation_space),
                                  ("action", self.action_space, data.action_space)):
            if not same_space(own, theirs):
                raise ValueError(f"dataset {data.dataset_id!r} has {role} space {theirs}, but the environment "
                                 f"(or model) has {own}; record the dataset in the same environment")
        if len(data.observations) == 0:
            raise ValueError(f"dataset {data.dataset_id!r} holds no transitions")
        self.dataset = dataset
        self.offline_data = data
        self.dataset_id = data.dataset_id
        self.dataset_hash = data.content_hash
        self.transitions = None

    def _learned_actions(self, data: OfflineData) -> np.ndarray:
        """The dataset's actions on the scale the algorithm learns them (the dataset's own here)."""
        return data.actions

    def _require_data(self) -> OfflineData:
        if self.offline_data is None and self.dataset is not None:  # given to load(), which only sets attributes
            self.set_dataset(self.dataset)
        if self.offline_data is None:
            raise ValueError(f"{type(self).__name__} has no dataset to learn from: pass dataset= to the constructor "
                             "or call set_dataset() (a loaded model keeps only the dataset's id)")
        return self.offline_data

    @property
    def minibatch_generator(self) -> th.Generator:
        """The torch generator minibatches are drawn with (on the device, seeded with ``seed``)."""
        if self._minibatch_generator is None:
            self._minibatch_generator = th.Generator(device=self.device)
            seed = self.seed if self.seed is not None else int(np.random.SeedSequence().entropy % 2**63)
            self._minibatch_generator.manual_seed(seed)
        return self._minibatch_generator

    def _prepare_data(self) -> None:
        """Called once per ``learn`` before the first step: hold the dataset as transitions on the device.
        An algorithm that learns from something else (windows of episodes) overrides this and ``_sample_batch``."""
        data = self._require_data()
        if self.transitions is None:
            self.transitions = TransitionTensors(data, self.device, self._learned_actions(data))

    def _sample_batch(self) -> Any:
        """The minibatch of one gradient step (a :class:`TransitionBatch` of ``batch_size`` transitions here)."""
        assert self.transitions is not None
        return self.transitions.sample(self.batch_size, self.minibatch_generator)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "dataset", "offline_data", "transitions", "_minibatch_generator",
                "_supported_action_spaces"]

    # ----------------------------------------------------------------------------------------
    # What a subclass says

    @abstractmethod
    def train_step(self, batch: Any) -> dict[str, th.Tensor]:
        """One gradient step on ``batch`` (from ``_sample_batch``); returns detached scalar statistics
        (0-d tensors, summed without synchronising) to log under ``train/``."""

    @abstractmethod
    def _scheduled_optimizers(self) -> list[th.optim.Optimizer]:
        """The optimizers whose learning rate follows ``learning_rate`` (a schedule or a constant)."""

    # ----------------------------------------------------------------------------------------
    # The loop

    def _setup_learn(self, total_timesteps: int, callback: MaybeCallback = None, reset_num_timesteps: bool = True,
                     tb_log_name: str = "run", progress_bar: bool = False) -> tuple[int, BaseCallback]:
        if self.env is not None:
            return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
        # SB3's setup without the environment reset (there is no environment)
        self.start_time = time.time_ns()
        if reset_num_timesteps:
            self.num_timesteps = 0
        else:
            total_timesteps += self.num_timesteps
        self._total_timesteps = total_timesteps
        self._num_timesteps_at_start = self.num_timesteps
        if not self._custom_logger:
            self._logger = utils.configure_logger(self.verbose, self.tensorboard_log, tb_log_name, reset_num_timesteps)
        return total_timesteps, self._init_callback(callback, progress_bar)

    def learn(
        self: SelfOfflineAlgorithm,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int | None = None,
        tb_log_name: str = "run",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfOfflineAlgorithm:
        """Take ``total_timesteps`` gradient steps on minibatches of the dataset.

        :param log_interval: gradient steps between two dumps of the logger (the class's
            ``default_log_interval`` if None); the last steps are dumped at the end
        """
        keep_freed_memory()
        self._prepare_data()
        total_timesteps, callback = self._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name,
                                                      progress_bar)
        log_interval = self.default_log_interval if log_interval is None else log_interval
        optimizers = self._scheduled_optimizers()
        callback.on_training_start(locals(), globals())
        stat_sums: dict[str, th.Tensor] = {}
        n_summed = 0
        while self.num_timesteps < total_timesteps:
            if not self.policy.training:  # an evaluation callback's predict() left it in eval mode
                self.policy.set_training_mode(True)
            self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
            self._update_learning_rate(optimizers)
            stats = self.train_step(self._sample_batch())
            for name, value in stats.items():
                stat_sums[name] = stat_sums[name] + value if name in stat_sums else value
            n_summed += 1
            self.num_timesteps += 1
            self._n_updates += 1
            callback.update_locals(locals())
            if not callback.on_step():
                break
            if log_interval > 0 and self.num_timesteps % log_interval == 0:
                self._dump_logs(stat_sums, n_summed)
                stat_sums, n_summed = {}, 0
        if n_summed:
            self._dump_logs(stat_sums, n_summed)
        self.policy.set_training_mode(False)
        callback.on_training_end()
        return self

    def _dump_logs(self, stat_sums: dict[str, th.Tensor], n_summed: int) -> None:
        """Record the mean of each statistic over the last ``n_summed`` steps, the speed, and dump."""
        elapsed = max((time.time_ns() - self.start_time) / 1e9, sys.float_info.epsilon)
        self.logger.record("time/fps", int((self.num_timesteps - self._num_timesteps_at_start) / elapsed))
        self.logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for name, total in stat_sums.items():
            self.logger.record(f"train/{name}", float(total) / max(n_summed, 1))
        self.logger.dump(step=self.num_timesteps)
