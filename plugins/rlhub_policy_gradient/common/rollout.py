"""The rollout REINFORCE and ACER share: play the current policy in a VecEnv, record every step with
what a time limit cut, then learn from what was recorded; and the time-limit bootstrap.

A time limit is not a termination: the episode would have gone on, so the return after the step it
cut is the reward plus the discounted value of the observation it stopped at, ``r_t + gamma * V(s_T)``.
The rollout records the cut and that observation; the algorithm asks its critic for ``V(s_T)`` when it
learns (:func:`time_limit_bootstrap`), so a step replayed long after it was played is bootstrapped by
the current critic, not by the stale one that happened to be there when it was played.
"""

from __future__ import annotations

import sys
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import safe_mean
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs

SelfRolloutAlgorithm = TypeVar("SelfRolloutAlgorithm", bound="RolloutAlgorithm")
PolicyT = TypeVar("PolicyT", bound=BasePolicy)


@dataclass
class Step:
    """One step of every environment of a VecEnv (leading axis: environment).

    :param observations: the observations the actions were chosen on
    :param actions: the actions as the policy chose them (before clipping to a Box's bounds)
    :param rewards: the rewards, as the environments gave them (float32)
    :param dones: whether the episode ended after the step (terminated or truncated)
    :param truncated: whether it ended because a time limit cut it (and the VecEnv kept the
        observation it stopped at)
    :param final_observations: where ``truncated``, the observation the time limit cut the episode
        at; zeros elsewhere (the VecEnv has already reset those environments)
    :param behaviour: what the algorithm keeps of the policy that chose each action (ACER: the
        behaviour policy's statistics), None if nothing
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    truncated: np.ndarray
    final_observations: np.ndarray
    behaviour: np.ndarray | None = None


def time_limit_truncations(dones: np.ndarray, infos: list[dict[str, Any]],
                           observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which environments a time limit stopped this step, and the observations it stopped them at.

    :param dones: (n_envs,) from ``VecEnv.step``
    :param infos: from ``VecEnv.step``: ``TimeLimit.truncated`` and ``terminal_observation``
    :param observations: (n_envs, ...) any observations of the VecEnv, for the shape and dtype
    :return: ``truncated`` (n_envs,) bool and ``final_observations`` shaped as ``observations``,
        zeros where not truncated
    """
    truncated = np.zeros(len(dones), dtype=bool)
    final_observations = np.zeros_like(observations)
    for env_index, done in enumerate(dones):
        info = infos[env_index]
        if done and info.get("TimeLimit.truncated", False) and info.get("terminal_observation") is not None:
            truncated[env_index] = True
            final_observations[env_index] = info["terminal_observation"]
    return truncated, final_observations


def time_limit_bootstrap(rewards: th.Tensor, truncated: th.Tensor, final_observations: th.Tensor,
                         value: Callable[[th.Tensor], th.Tensor], gamma: float) -> th.Tensor:
    """Rewards with ``gamma * V(s_T)`` added where a time limit cut the episode after the step.

    ``r'_t = r_t + gamma * truncated_t * V(s_T)``: with ``r'`` in place of ``r`` and the step
    counted as the episode's end, any return or target computed backwards from it is the one of an
    episode that went on. ``V`` is evaluated now (without gradient), only on the truncated steps.

    :param rewards: (...) the rewards as stored
    :param truncated: (...) 1 (or True) where a time limit cut the episode after the step
    :param final_observations: (..., *observation_shape) the observations it cut them at
    :param value: the current critic: observations (batch, *observation_shape) to ``V`` (batch,)
    :param gamma: discount factor
    :return: a new tensor shaped as ``rewards``
    """
    cut = truncated.bool()
    bootstrapped = rewards.clone()
    if bool(cut.any()):
        with th.no_grad():
            bootstrapped[cut] += gamma * value(final_observations[cut]).reshape(-1).to(rewards.dtype)
    return bootstrapped


def array_observations(observations: VecEnvObs) -> np.ndarray:
    """The VecEnv's observations as one array (the family supports no dict or tuple observations)."""
    if not isinstance(observations, np.ndarray):
        raise TypeError(f"expected array observations, got {type(observations).__name__}")
    return observations


class RolloutAlgorithm(BaseAlgorithm):
    """
    Base of the policy-gradient family: play the current policy for a rollout, recording every
    step (:class:`Step`), then train on it; repeat until the step budget is spent.

    A subclass says how it acts (``_act``), where it keeps a step (``_record``), when a rollout is
    complete (``_rollout_complete``) and how it learns (``train``). It owns no buffer type nor
    hyperparameter it does not use, unlike SB3's ``OnPolicyAlgorithm``, whose GAE rollout buffer
    neither algorithm of the family learns from.

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, ...)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0)
    :param gamma: Discount factor
    :param ent_coef: Entropy coefficient for the loss calculation
    :param max_grad_norm: The maximum value for the gradient clipping (None: no clipping)
    :param stats_window_size: Window size for the rollout logging, specifying the number of episodes to average
        the reported success rate, mean episode length, and mean reward over
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation
    :param verbose: the verbosity level: 0 no output, 1 info, 2 debug
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
    :param supported_action_spaces: The action spaces supported by the algorithm
    """

    #: Rollouts between two dumps of the logger when ``learn`` is not told.
    default_log_interval: ClassVar[int] = 10

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule,
        gamma: float,
        ent_coef: float,
        max_grad_norm: float | None,
        stats_window_size: int,
        tensorboard_log: str | None,
        policy_kwargs: dict[str, Any] | None,
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
        self.gamma = gamma
        self.ent_coef = ent_coef
        self.max_grad_norm = max_grad_norm

    def argument_problems(self) -> list[str]:
        """What is wrong with the arguments this base knows (subclasses add theirs and raise once)."""
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            return [f"max_grad_norm must be positive or None, got {self.max_grad_norm}"]
        return []

    def _build_policy(self, policy_class: Callable[..., PolicyT]) -> PolicyT:
        """The learning-rate schedule, the seeds, then the policy on the device (``_setup_model``'s start)."""
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        policy = policy_class(self.observation_space, self.action_space, self.lr_schedule, **self.policy_kwargs)
        return policy.to(self.device)

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []

    # ----------------------------------------------------------------------------------------
    # What a subclass says

    @abstractmethod
    def _act(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Actions for ``observations`` (n_envs, ...) and what to keep of the policy (see :class:`Step`)."""

    @abstractmethod
    def _record(self, step_index: int, step: Step) -> None:
        """Keep step ``step_index`` (from 0) of the current rollout."""

    @abstractmethod
    def _rollout_complete(self, n_steps: int) -> bool:
        """Whether the rollout is complete after ``n_steps`` steps of every environment."""

    def _start_rollout(self) -> None:
        """Called before the first step of every rollout."""

    def _end_rollout(self, last_observations: np.ndarray) -> None:
        """Called after the last step of a complete rollout, with the observations it left the envs at."""

    @abstractmethod
    def train(self) -> None:
        """Learn from the rollout just collected."""

    # ----------------------------------------------------------------------------------------
    # The rollout

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback) -> bool:
        """Play the current policy until ``_rollout_complete``; False if a callback stopped training."""
        assert self._last_obs is not None, "No previous observation was provided"
        self.policy.set_training_mode(False)
        self._start_rollout()
        callback.on_rollout_start()
        n_steps = 0
        while not self._rollout_complete(n_steps):
            observations = array_observations(self._last_obs)
            actions, behaviour = self._act(observations)
            new_obs, rewards, dones, infos = env.step(self._env_actions(actions))
            self.num_timesteps += env.num_envs

            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            truncated, final_observations = time_limit_truncations(dones, infos, observations)
            self._record(n_steps, Step(observations, actions, rewards.astype(np.float32), dones, truncated,
                                       final_observations, behaviour))
            self._last_obs = array_observations(new_obs)
            self._last_episode_starts = dones
            n_steps += 1
        self._end_rollout(array_observations(self._last_obs))
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        """The actions the environments execute: a Gaussian's samples clipped to the Box's bounds."""
        if isinstance(self.action_space, spaces.Box):
            clipped: np.ndarray = np.clip(actions, self.action_space.low, self.action_space.high)
            return clipped
        return actions

    def _gradient_step(self, loss: th.Tensor, parameters: Iterable[th.nn.Parameter]) -> float:
        """Back-propagate ``loss``, clip the gradient's norm to ``max_grad_norm``, step the
        optimizer; returns the norm before clipping."""
        parameters = list(parameters)
        self.policy.optimizer.zero_grad()
        loss.backward()
        max_norm = float("inf") if self.max_grad_norm is None else self.max_grad_norm
        grad_norm = th.nn.utils.clip_grad_norm_(parameters, max_norm)
        self.policy.optimizer.step()
        self._n_updates += 1
        return float(grad_norm)

    # ----------------------------------------------------------------------------------------
    # Learning and logging

    def learn(
        self: SelfRolloutAlgorithm,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int | None = None,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfRolloutAlgorithm:
        """Alternate rollouts and training until ``total_timesteps`` environment steps.

        :param log_interval: rollouts between dumps of the logger (None: ``default_log_interval``);
            the last update's numbers are dumped at the end too
        :param tb_log_name: the TensorBoard run's name (None: the class name)
        """
        log_interval = self.default_log_interval if log_interval is None else log_interval
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name or type(self).__name__, progress_bar
        )
        callback.on_training_start(locals(), globals())
        assert self.env is not None
        iteration = 0
        while self.num_timesteps < total_timesteps:
            if not self.collect_rollouts(self.env, callback):
                break
            iteration += 1
            self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
            if log_interval > 0 and iteration % log_interval == 0:
                self.dump_logs(iteration)
            self.train()
        callback.on_training_end()
        self.logger.dump(step=self.num_timesteps)  # the last update's losses
        return self

    def dump_logs(self, iteration: int = 0) -> None:
        """Record the episode statistics and speed, as SB3's on-policy algorithms do, and dump."""
        assert self.ep_info_buffer is not None and self.ep_success_buffer is not None
        time_elapsed = max((time.time_ns() - self.start_time) / 1e9, sys.float_info.epsilon)
        fps = int((self.num_timesteps - self._num_timesteps_at_start) / time_elapsed)
        if iteration > 0:
            self.logger.record("time/iterations", iteration, exclude="tensorboard")
        if len(self.ep_info_buffer) > 0 and len(self.ep_info_buffer[0]) > 0:
            self.logger.record("rollout/ep_rew_mean", safe_mean([info["r"] for info in self.ep_info_buffer]))
            self.logger.record("rollout/ep_len_mean", safe_mean([info["l"] for info in self.ep_info_buffer]))
        self.logger.record("time/fps", fps)
        self.logger.record("time/time_elapsed", int(time_elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        if len(self.ep_success_buffer) > 0:
            self.logger.record("rollout/success_rate", safe_mean(self.ep_success_buffer))
        self.logger.dump(step=self.num_timesteps)
