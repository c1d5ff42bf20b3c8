"""ACKTR: actor-critic with K-FAC natural gradients and a KL-clipped step."""

from __future__ import annotations

import copy
from typing import Any, ClassVar, TypeVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import (
    ActorCriticCnnPolicy,
    ActorCriticPolicy,
    BasePolicy,
    MultiInputActorCriticPolicy,
)
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import explained_variance
from torch.nn import functional as F

from rlhub_trust_region.acktr.kfac import KFAC
from rlhub_trust_region.common.natural_gradient import record_policy_change
from rlhub_trust_region.common.policy import distribution_and_values

SelfACKTR = TypeVar("SelfACKTR", bound="ACKTR")


class ACKTR(OnPolicyAlgorithm):
    """
    Actor Critic using Kronecker-Factored Trust Region (ACKTR)

    A2C's synchronous rollouts and loss, optimised by K-FAC (:class:`~rlhub_trust_region.acktr.kfac.KFAC`)
    instead of RMSprop: every layer of actor and critic gets a natural gradient. The Fisher factors
    come from a loss that samples the Fisher: the log-likelihood of actions sampled from the current
    policy, and for the critic, whose output is read as the mean of a unit Gaussian, the squared
    error to a target sampled from that Gaussian. Each step is scaled so that its predicted KL is at
    most ``kl_clip`` (the trust region), then applied with momentum.

    Paper: Wu et al. (2017), "Scalable trust-region method for deep reinforcement learning using
    Kronecker-factored approximation", https://arxiv.org/abs/1708.05144
    Code: written for rlhub; the defaults are those of OpenAI Baselines' and Stable Baselines 2's ACKTR
    (https://github.com/hill-a/stable-baselines, stable_baselines/acktr)

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, ...)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: K-FAC's learning rate, before the KL clipping; it can be a function of the
        current progress remaining (from 1 to 0)
    :param n_steps: The number of steps to run for each environment per update
    :param gamma: Discount factor
    :param gae_lambda: Factor for trade-off of bias vs variance for Generalized Advantage Estimator
        (1.0: the n-step returns of the paper)
    :param ent_coef: Entropy coefficient for the loss calculation
    :param vf_coef: Value function coefficient for the loss calculation
    :param vf_fisher_coef: Weight of the critic's sampled Fisher loss against the actor's
    :param kl_clip: Bound on the predicted KL of one step (the trust region)
    :param damping: Damping added to the Kronecker-factored Fisher
    :param momentum: Momentum of K-FAC's steps
    :param stat_decay: Decay of the running averages of the Kronecker factors
    :param eigen_update_interval: Updates between eigendecompositions of the factors
    :param normalize_advantage: Whether to normalize the advantages over the batch
    :param use_sde: Whether to use generalized State Dependent Exploration (gSDE)
    :param sde_sample_freq: Sample a new noise matrix every n steps when using gSDE (-1: only at the
        beginning of the rollout)
    :param rollout_buffer_class: Rollout buffer class to use. If ``None``, it will be automatically selected.
    :param rollout_buffer_kwargs: Keyword arguments to pass to the rollout buffer on creation
    :param stats_window_size: Window size for the rollout logging, specifying the number of episodes to average
        the reported success rate, mean episode length, and mean reward over
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation
    :param verbose: the verbosity level: 0 no output, 1 info, 2 debug
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": ActorCriticPolicy,
        "CnnPolicy": ActorCriticCnnPolicy,
        "MultiInputPolicy": MultiInputActorCriticPolicy,
    }
    policy: ActorCriticPolicy

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 0.25,
        n_steps: int = 20,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        ent_coef: float = 0.01,
        vf_coef: float = 0.25,
        vf_fisher_coef: float = 1.0,
        kl_clip: float = 0.001,
        damping: float = 0.01,
        momentum: float = 0.9,
        stat_decay: float = 0.99,
        eigen_update_interval: int = 10,
        normalize_advantage: bool = False,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        rollout_buffer_class: type[RolloutBuffer] | None = None,
        rollout_buffer_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=n_steps,
            gamma=gamma,
            gae_lambda=gae_lambda,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=0.0,  # the KL clipping bounds each step instead
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            rollout_buffer_class=rollout_buffer_class,
            rollout_buffer_kwargs=rollout_buffer_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            device=device,
            seed=seed,
            _init_setup_model=False,
            supported_action_spaces=(spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
        )
        if self.env is not None and normalize_advantage and self.env.num_envs * self.n_steps < 2:
            raise ValueError(f"normalize_advantage needs n_steps * n_envs > 1, got n_steps={self.n_steps} "
                             f"with {self.env.num_envs} env(s): raise n_steps")
        self.vf_fisher_coef = vf_fisher_coef
        self.kl_clip = kl_clip
        self.damping = damping
        self.momentum = momentum
        self.stat_decay = stat_decay
        self.eigen_update_interval = eigen_update_interval
        self.normalize_advantage = normalize_advantage
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        # K-FAC replaces the policy's own optimizer, so saving and loading carry its Kronecker factors.
        self.policy.optimizer = KFAC(self.policy, lr=self.lr_schedule(1), momentum=self.momentum,
                                     damping=self.damping, stat_decay=self.stat_decay, kl_clip=self.kl_clip,
                                     eigen_update_interval=self.eigen_update_interval)

    def train(self) -> None:
        """One K-FAC step on A2C's loss over the rollout, after folding in the batch's Fisher statistics."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        optimizer: KFAC = self.policy.optimizer  # type: ignore[assignment]
        batch = next(self.rollout_buffer.get(batch_size=None))
        actions = batch.actions.long().flatten() if isinstance(self.action_space, spaces.Discrete) else batch.actions

        with optimizer.recording():
            distribution, values = distribution_and_values(self.policy, batch.observations)

        # The Fisher, sampled: actions drawn from the policy now, and a critic target drawn from a
        # unit Gaussian around its own output.
        with th.no_grad():
            sampled_actions = distribution.get_actions()
            value_samples = values + th.randn_like(values)
        fisher_loss = -distribution.log_prob(sampled_actions).mean()
        fisher_loss = fisher_loss + self.vf_fisher_coef * 0.5 * F.mse_loss(values, value_samples)
        optimizer.update_curvature(fisher_loss)

        advantages = batch.advantages
        if self.normalize_advantage:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        log_prob = distribution.log_prob(actions)
        policy_loss = -(advantages * log_prob).mean()
        value_loss = F.mse_loss(batch.returns, values)
        entropy = distribution.entropy()
        entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
        loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss

        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        self._n_updates += 1
        # A copy: the policy hands out one distribution object, which the next forward pass reuses.
        old_distribution = copy.copy(distribution)
        with th.no_grad():
            record_policy_change(self.logger, old_distribution, self.policy.get_distribution(batch.observations))
        self.logger.record("train/kl_clip_scale", optimizer.last_kl_scale)
        self.logger.record("train/entropy_loss", entropy_loss.item())
        self.logger.record("train/policy_loss", policy_loss.item())
        self.logger.record("train/value_loss", value_loss.item())
        self.logger.record("train/explained_variance",
                           explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten()))
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")

    def learn(self: SelfACKTR, total_timesteps: int, callback=None, log_interval: int = 100,
              tb_log_name: str = "ACKTR", reset_num_timesteps: bool = True, progress_bar: bool = False) -> SelfACKTR:
        return super().learn(total_timesteps=total_timesteps, callback=callback, log_interval=log_interval,
                             tb_log_name=tb_log_name, reset_num_timesteps=reset_num_timesteps,
                             progress_bar=progress_bar)
