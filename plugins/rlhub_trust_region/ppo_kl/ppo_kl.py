"""PPO with the adaptive KL penalty (Schulman et al. 2017, section 4)."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
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
from stable_baselines3.common.utils import FloatSchedule, explained_variance
from torch.nn import functional as F

from rlhub_trust_region.common.natural_gradient import policy_kl
from rlhub_trust_region.common.policy import distribution_and_values

SelfPPOKL = TypeVar("SelfPPOKL", bound="PPOKL")


class PPOKL(OnPolicyAlgorithm):
    """
    Proximal Policy Optimization with an adaptive KL penalty

    PPO's epochs of minibatch steps, on the objective ``E[r_t A_t] - beta KL[pi_old || pi]`` instead
    of the clipped one, with the exact KL of the two action distributions. After each update the
    batch's mean KL ``d`` sets the next ``beta``: halved when ``d < target_kl / 1.5``, doubled when
    ``d > 1.5 target_kl``. ``clip_range`` adds the clipped objective too (the paper's third
    variant); off by default.

    Paper: Schulman et al. (2017), "Proximal Policy Optimization Algorithms", section 4,
    https://arxiv.org/abs/1707.06347
    Code: written for rlhub; the rollout and value loss are SB3's PPO's

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, ...)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0)
    :param n_steps: The number of steps to run for each environment per update
    :param batch_size: Minibatch size
    :param n_epochs: Number of epoch when optimizing the surrogate loss
    :param gamma: Discount factor
    :param gae_lambda: Factor for trade-off of bias vs variance for Generalized Advantage Estimator
    :param target_kl: The KL per update that the penalty coefficient is adapted towards
    :param kl_coef: The penalty coefficient ``beta`` at the start (adapted after each update)
    :param clip_range: Also clip the probability ratio, as PPO does (None: no clipping); a number or a schedule
    :param normalize_advantage: Whether to normalize the advantages over each minibatch
    :param ent_coef: Entropy coefficient for the loss calculation
    :param vf_coef: Value function coefficient for the loss calculation
    :param max_grad_norm: The maximum value for the gradient clipping
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
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 2048,
        batch_size: int = 64,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        target_kl: float = 0.01,
        kl_coef: float = 1.0,
        clip_range: float | Schedule | None = None,
        normalize_advantage: bool = True,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
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
            max_grad_norm=max_grad_norm,
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
        if normalize_advantage and batch_size < 2:
            raise ValueError(f"normalize_advantage needs batch_size > 1, got {batch_size}")
        if target_kl <= 0 or kl_coef <= 0:
            raise ValueError(f"target_kl and kl_coef must be positive, got {target_kl} and {kl_coef}")
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.target_kl = target_kl
        self.kl_coef = kl_coef
        self.clip_range = clip_range
        self.normalize_advantage = normalize_advantage
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        if self.clip_range is not None:
            self.clip_range = FloatSchedule(self.clip_range)
        # The policy before each update, whose action distributions the penalty compares with; built
        # as the policy was (a deep copy fails on gSDE's non-leaf tensors).
        self._old_policy = self.policy_class(self.observation_space, self.action_space, self.lr_schedule,
                                             use_sde=self.use_sde, **self.policy_kwargs).to(self.device)
        self._old_policy.set_training_mode(False)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_old_policy"]

    def train(self) -> None:
        """``n_epochs`` of minibatch steps on the penalised objective, then adapt ``kl_coef``."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = None if self.clip_range is None else self.clip_range(self._current_progress_remaining)
        self._old_policy.load_state_dict(self.policy.state_dict())
        surrogates, kls, value_losses, entropy_losses = [], [], [], []
        for _ in range(self.n_epochs):
            for batch in self.rollout_buffer.get(self.batch_size):
                actions = batch.actions
                if isinstance(self.action_space, spaces.Discrete):
                    actions = batch.actions.long().flatten()
                advantages = batch.advantages
                if self.normalize_advantage and len(advantages) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

                with th.no_grad():
                    old_distribution = self._old_policy.get_distribution(batch.observations)
                distribution, values = distribution_and_values(self.policy, batch.observations)
                log_prob, entropy = distribution.log_prob(actions), distribution.entropy()
                ratio = th.exp(log_prob - batch.old_log_prob)
                surrogate = advantages * ratio
                if clip_range is not None:
                    surrogate = th.min(surrogate, advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range))
                kl = policy_kl(old_distribution, distribution).mean()
                policy_loss = -surrogate.mean() + self.kl_coef * kl
                value_loss = F.mse_loss(batch.returns, values)
                entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss

                self.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()
                surrogates.append(surrogate.mean().item())
                kls.append(kl.item())
                value_losses.append(value_loss.item())
                entropy_losses.append(entropy_loss.item())
            self._n_updates += 1

        # The KL the update ended at (the last epoch's minibatches cover the batch) sets the next beta.
        n_minibatches = max(1, len(kls) // self.n_epochs)
        update_kl = float(np.mean(kls[-n_minibatches:]))
        if update_kl < self.target_kl / 1.5:
            self.kl_coef /= 2
        elif update_kl > self.target_kl * 1.5:
            self.kl_coef *= 2

        self.logger.record("train/kl", update_kl)
        self.logger.record("train/kl_coef", self.kl_coef)
        self.logger.record("train/surrogate", float(np.mean(surrogates)))
        self.logger.record("train/value_loss", float(np.mean(value_losses)))
        self.logger.record("train/entropy_loss", float(np.mean(entropy_losses)))
        self.logger.record("train/explained_variance",
                           explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten()))
        if clip_range is not None:
            self.logger.record("train/clip_range", clip_range)
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")

    def learn(self: SelfPPOKL, total_timesteps: int, callback=None, log_interval: int = 1,
              tb_log_name: str = "PPO_KL", reset_num_timesteps: bool = True, progress_bar: bool = False) -> SelfPPOKL:
        return super().learn(total_timesteps=total_timesteps, callback=callback, log_interval=log_interval,
                             tb_log_name=tb_log_name, reset_num_timesteps=reset_num_timesteps,
                             progress_bar=progress_bar)
