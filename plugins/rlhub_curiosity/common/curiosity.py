"""The base of the curiosity algorithms (RND, ICM): any registered algorithm learns from the
environment's reward plus an intrinsic one that a curiosity module gives, and the module learns from
the steps the algorithm takes.

The learning algorithm (``base``: ``ppo``, ``a2c``, ``dqn``, ``sac``, a plugin's...) is built through
rlhub's registry with its own hyperparameters (``base_kwargs``) on the environment wrapped in
:class:`~rlhub_curiosity.common.intrinsic_env.IntrinsicRewardVecEnv`. ``learn`` runs the base's own
``learn``; after each of its rollouts the module trains on the steps since the last one. The caller's
callbacks see this algorithm as their model, so evaluations and checkpoints save the module too.
``predict`` is the base's policy: curiosity shapes learning, not acting.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, BasePolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from torch import nn

from rlhub.common.inner_learner import AsOuterAlgorithm
from rlhub.common.learned_reward import Transitions
from rlhub_curiosity.common.intrinsic_env import IntrinsicRewardVecEnv
from rlhub_curiosity.common.networks import ObservationNormalizer

#: Kinds of algorithms that can learn from the combined reward: those that play their environment.
BASE_KINDS = ("on-policy", "off-policy")

SelfCuriosity = TypeVar("SelfCuriosity", bound="CuriosityAlgorithm")


class CuriosityAlgorithm(BaseAlgorithm):
    """
    Base of curiosity-driven exploration. A subclass builds its module (``_build_module``), says what
    intrinsic reward a batch of transitions earns (``intrinsic_rewards``) and what the module's losses
    on a batch are (``module_losses``); the module reads observations standardised by running
    statistics (``normalize``).

    :param policy: The base's policy (a name its algorithm knows, e.g. MlpPolicy, or a class)
    :param env: The environment to learn in (if registered in Gym, can be str)
    :param base: The registered algorithm that learns from the combined reward
    :param base_kwargs: Its hyperparameters (policy_kwargs go in ``policy_kwargs``)
    :param learning_rate: The curiosity module's learning rate
    :param intrinsic_coef: Weight of the intrinsic reward (of its advantage, for a two-stream PPO)
    :param extrinsic_coef: Weight of the environment's reward (None: the algorithm's default)
    :param intrinsic_gamma: Discount of the intrinsic return, whose running spread normalises the
        intrinsic reward and, for a two-stream PPO, of the intrinsic value head
    :param normalize_intrinsic: Divide the intrinsic reward by that running spread
    :param n_epochs: Passes over each batch of collected steps when training the module
    :param batch_size: Minibatch size of the module's training; it trains once this many steps are in
    :param net_arch: Hidden layer widths of the module's MLPs (vector observations)
    :param features_dim: Width of the module's output (features, or RND's embedding)
    :param normalization_steps: The first steps only gather observation statistics (no intrinsic
        reward yet), as the papers start them from an untrained agent's steps
    :param policy_kwargs: The base policy's arguments
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param verbose: the verbosity level: 0 no output, 1 info, 2 debug
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
    :param _init_setup_model: Whether or not to build the networks at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": ActorCriticPolicy,
                                                             "CnnPolicy": ActorCriticCnnPolicy}
    #: With PPO as the base, keep extrinsic and intrinsic rewards apart (a value head each), as RND does.
    two_streams_with_ppo: ClassVar[bool] = False
    default_extrinsic_coef: ClassVar[float] = 1.0
    curiosity: nn.Module

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: GymEnv | str | None,
        base: str = "ppo",
        base_kwargs: dict[str, Any] | None = None,
        learning_rate: float | Schedule = 1e-4,
        intrinsic_coef: float = 1.0,
        extrinsic_coef: float | None = None,
        intrinsic_gamma: float = 0.99,
        normalize_intrinsic: bool = True,
        n_epochs: int = 4,
        batch_size: int = 256,
        net_arch: list[int] | None = None,
        features_dim: int = 64,
        normalization_steps: int = 1024,
        policy_kwargs: dict[str, Any] | None = None,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(policy, env, learning_rate=learning_rate, policy_kwargs=policy_kwargs,
                         tensorboard_log=tensorboard_log, verbose=verbose, device=device, support_multi_env=True,
                         seed=seed, supported_action_spaces=(spaces.Discrete, spaces.Box))
        self.base_id = base
        self.base_kwargs = dict(base_kwargs or {})
        self.intrinsic_coef = intrinsic_coef
        self.extrinsic_coef = self.default_extrinsic_coef if extrinsic_coef is None else extrinsic_coef
        self.intrinsic_gamma = intrinsic_gamma
        self.normalize_intrinsic = normalize_intrinsic
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        # Small by default: vector observations (images get NatureCNN whatever the widths)
        self.net_arch = [64, 64] if net_arch is None else list(net_arch)
        self.features_dim = features_dim
        self.normalization_steps = normalization_steps
        problems = [f"{name} must be at least 1, got {value}" for name, value in
                    (("n_epochs", n_epochs), ("batch_size", batch_size), ("features_dim", features_dim)) if value < 1]
        problems += [f"{name} must be non-negative, got {value}" for name, value in
                     (("intrinsic_coef", intrinsic_coef), ("normalization_steps", normalization_steps)) if value < 0]
        if not 0 <= intrinsic_gamma < 1:
            problems.append(f"intrinsic_gamma must be in [0, 1), got {intrinsic_gamma}")
        if problems:
            raise ValueError("; ".join(problems))
        if _init_setup_model:
            self._setup_model()

    def _get_policy_from_name(self, policy_name: str) -> Any:
        return policy_name  # the base's algorithm knows its own names

    def _setup_model(self) -> None:
        from rlhub.registry import get_algorithm

        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        spec = get_algorithm(self.base_id)
        if spec.kind not in BASE_KINDS:
            raise ValueError(f"the base must learn by playing its environment ({' or '.join(BASE_KINDS)}), "
                             f"and {self.base_id} is {spec.kind}")
        base_class, base_kwargs = spec.load(), dict(self.base_kwargs)
        if self._two_streams:
            from rlhub_curiosity.common.two_stream_ppo import TwoStreamPPO

            base_class = TwoStreamPPO
            base_kwargs.update(intrinsic_gamma=self.intrinsic_gamma, extrinsic_coef=self.extrinsic_coef,
                               intrinsic_coef=self.intrinsic_coef)
        self.observation_normalizer = ObservationNormalizer(self.observation_space.shape).to(self.device)
        self.curiosity = self._build_module().to(self.device)
        self.curiosity_optimizer = th.optim.Adam(self.curiosity.parameters(), lr=self.lr_schedule(1))
        self.intrinsic_return_statistics = RunningMeanStd(shape=())
        self._intrinsic_returns: np.ndarray | None = None  # per env, never reset: the stream is non-episodic
        self.intrinsic_env = None if self.env is None else self._wrap()
        self.base = base_class(self.policy_class, self.intrinsic_env, policy_kwargs=self.policy_kwargs,
                               seed=self.seed, device=self.device, verbose=self.verbose,
                               tensorboard_log=self.tensorboard_log, **base_kwargs)
        self.policy_class = self.base.policy_class
        self.policy = self.base.policy

    @property
    def _two_streams(self) -> bool:
        return self.two_streams_with_ppo and self.base_id == "ppo"

    def _wrap(self) -> IntrinsicRewardVecEnv:
        assert self.env is not None
        return IntrinsicRewardVecEnv(self.env, self._intrinsic_rewards_of_arrays, extrinsic_coef=self.extrinsic_coef,
                                     intrinsic_coef=self.intrinsic_coef, separate=self._two_streams,
                                     capacity=max(100_000 // self.env.num_envs, 1))

    @abstractmethod
    def _build_module(self) -> nn.Module:
        """The curiosity module's networks (saved with the model)."""

    @abstractmethod
    def intrinsic_rewards(self, batch: Transitions) -> th.Tensor:
        """(B,) the raw intrinsic reward of each transition (its observations as the env gave them: the
        module standardises those it reads with :meth:`normalize`)."""

    @abstractmethod
    def module_losses(self, batch: Transitions) -> dict[str, th.Tensor]:
        """The module's losses on a batch; ``"loss"`` is minimised, the rest logged."""

    def normalize(self, observations: th.Tensor) -> th.Tensor:
        """Observations standardised by the running statistics and clipped, as the module reads them."""
        return self.observation_normalizer(observations)

    def _intrinsic_rewards_of_arrays(self, step: Transitions) -> np.ndarray:
        batch = step.to_tensors(self.action_space, self.device)
        if self.observation_normalizer.count < self.normalization_steps:
            self.observation_normalizer.update(batch.next_observations)
            return np.zeros(len(batch), dtype=np.float64)
        with th.no_grad():
            rewards = self.intrinsic_rewards(batch).cpu().numpy().astype(np.float64)
        if not self.normalize_intrinsic:
            return rewards
        if self._intrinsic_returns is None or len(self._intrinsic_returns) != len(rewards):
            self._intrinsic_returns = np.zeros(len(rewards))
        self._intrinsic_returns = self._intrinsic_returns * self.intrinsic_gamma + rewards
        self.intrinsic_return_statistics.update(self._intrinsic_returns)
        return rewards / math.sqrt(float(self.intrinsic_return_statistics.var) + 1e-8)

    def train_curiosity(self) -> None:
        """``n_epochs`` passes over the steps since the last training, in minibatches, once there are
        ``batch_size`` of them; log the module's losses and the intrinsic rewards."""
        assert self.intrinsic_env is not None
        if self.intrinsic_env.n_kept < self.batch_size:
            return
        batch = self.intrinsic_env.take_transitions().to_tensors(self.action_space, self.device)
        self.observation_normalizer.update(batch.next_observations)
        self.curiosity.train()
        self._update_learning_rate(self.curiosity_optimizer)
        totals: dict[str, float] = {}
        n_updates = 0
        for _ in range(self.n_epochs):
            for indices in th.randperm(len(batch), device=self.device).split(self.batch_size):
                minibatch = Transitions(*(getattr(batch, name)[indices] for name in
                                          ("observations", "actions", "next_observations", "terminations")))
                losses = self.module_losses(minibatch)
                self.curiosity_optimizer.zero_grad(set_to_none=True)
                losses["loss"].backward()
                self.curiosity_optimizer.step()
                for name, value in losses.items():
                    totals[name] = totals.get(name, 0.0) + float(value.detach())
                n_updates += 1
        self._n_updates += n_updates
        for name, value in totals.items():
            self.logger.record(f"curiosity/{name}", value / n_updates)
        with th.no_grad():
            raw = self.intrinsic_rewards(batch)
        self.logger.record("curiosity/intrinsic_reward", float(raw.mean()))
        if self.intrinsic_env.episode_learned_returns:
            self.logger.record("curiosity/intrinsic_ep_return", float(np.mean(self.intrinsic_env.episode_learned_returns)))
        if self.base.ep_info_buffer:
            self.logger.record("curiosity/extrinsic_ep_return",
                               float(np.mean([info["r"] for info in self.base.ep_info_buffer])))

    def learn(
        self: SelfCuriosity,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "run",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfCuriosity:
        """Train the base for ``total_timesteps`` environment steps, the curiosity module after each rollout."""
        if self.intrinsic_env is None:
            raise ValueError(f"{type(self).__name__} needs an environment to learn in: set_env() first")
        self.base.num_timesteps = self.num_timesteps  # a loaded agent's count: its base starts at 0
        outer = AsOuterAlgorithm(self, callback, progress_bar, after_rollout=self.train_curiosity)
        self.base.learn(total_timesteps, callback=outer, log_interval=log_interval, tb_log_name=tb_log_name,
                        reset_num_timesteps=reset_num_timesteps)
        self.num_timesteps = self.base.num_timesteps
        return self

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "base", "intrinsic_env", "intrinsic_return_statistics",
                "_intrinsic_returns"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, tensors = self.base._get_torch_save_params()
        return ([f"base.{name}" for name in state_dicts] + ["curiosity", "curiosity_optimizer",
                                                             "observation_normalizer"],
                [f"base.{name}" for name in tensors])

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset)
        self.intrinsic_env = self._wrap()
        self.base.set_env(self.intrinsic_env, force_reset)
