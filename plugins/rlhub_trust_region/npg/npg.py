"""NPG: the natural policy gradient with a fixed step size."""

from __future__ import annotations

import copy
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

from rlhub_trust_region.common.natural_gradient import (
    FisherVectorProduct,
    actor_parameters,
    add_flat_,
    conjugate_gradient_solver,
    flat_grad,
    policy_kl,
    record_policy_change,
)

SelfNPG = TypeVar("SelfNPG", bound="NPG")


class NPG(OnPolicyAlgorithm):
    """
    Natural Policy Gradient (NPG)

    Each update solves ``F d = g`` by conjugate gradient, where ``g`` is the policy gradient of the
    batch (GAE advantages) and ``F`` the Fisher matrix of the policy, reached through Fisher-vector
    products, and moves the actor by ``step_size * d``: no line search and no KL constraint, which
    is what TRPO added. The value function is fitted by ``n_critic_updates`` epochs of minibatch
    gradient steps on the batch's returns.

    Paper: Kakade (2001), "A Natural Policy Gradient", NeurIPS; in the form of Schulman et al. (2015),
    "Trust Region Policy Optimization" (arXiv 1502.05477), appendix C
    Code: written for rlhub; the conjugate gradient is sb3-contrib's (its TRPO's), the defaults
    follow Tianshou's NPG (https://github.com/thu-ml/tianshou, tianshou/policy/modelfree/npg.py)

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, ...)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate of the value function (Adam); it can be a function of
        the current progress remaining (from 1 to 0)
    :param step_size: The natural-gradient step size of the actor (a number or a schedule)
    :param n_steps: The number of steps to run for each environment per update
    :param batch_size: Minibatch size of the value-function steps
    :param gamma: Discount factor
    :param gae_lambda: Factor for trade-off of bias vs variance for Generalized Advantage Estimator
    :param cg_max_steps: Maximum number of conjugate-gradient iterations for the natural direction
    :param cg_damping: Damping added to the Fisher matrix (``F + damping I``)
    :param n_critic_updates: Epochs of value-function steps per update
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
        learning_rate: float | Schedule = 1e-3,
        step_size: float | Schedule = 0.1,
        n_steps: int = 2048,
        batch_size: int = 128,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        cg_max_steps: int = 10,
        cg_damping: float = 0.1,
        n_critic_updates: int = 10,
        normalize_advantage: bool = True,
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
            ent_coef=0.0,  # the natural gradient is of the plain objective, as in the paper
            vf_coef=0.0,  # the value function is fitted separately
            max_grad_norm=0.0,
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
        self.step_size = step_size
        self.batch_size = batch_size
        self.cg_max_steps = cg_max_steps
        self.cg_damping = cg_damping
        self.n_critic_updates = n_critic_updates
        self.normalize_advantage = normalize_advantage
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        self.step_size = FloatSchedule(self.step_size)

    def train(self) -> None:
        """One natural-gradient step of the actor, then the value function's epochs, on the rollout."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        step_size = self.step_size(self._current_progress_remaining)
        batch = next(self.rollout_buffer.get(batch_size=None))
        actions = batch.actions.long().flatten() if isinstance(self.action_space, spaces.Discrete) else batch.actions
        advantages = batch.advantages
        if self.normalize_advantage:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

        # The actor: g, then d = F^-1 g by conjugate gradient, then a fixed step along d.
        with th.no_grad():
            # A shallow copy keeps the distribution's tensors, detached (gSDE's noise included).
            old_distribution = copy.copy(self.policy.get_distribution(batch.observations))
        distribution = self.policy.get_distribution(batch.observations)
        ratio = th.exp(distribution.log_prob(actions) - batch.old_log_prob)
        policy_objective = (advantages * ratio).mean()
        params = actor_parameters(self.policy)
        gradient = flat_grad(policy_objective, params, retain_graph=True)
        fisher_product = FisherVectorProduct(policy_kl(old_distribution, distribution).mean(), params, self.cg_damping)
        direction = conjugate_gradient_solver(fisher_product, gradient, max_iter=self.cg_max_steps)
        add_flat_(params, step_size * direction)
        with th.no_grad():
            record_policy_change(self.logger, old_distribution, self.policy.get_distribution(batch.observations))

        # The critic: minibatch regression on the returns; the actor's gradients are dropped so the
        # natural step above is the only change to the policy.
        value_losses = []
        for _ in range(self.n_critic_updates):
            for minibatch in self.rollout_buffer.get(self.batch_size):
                value_loss = F.mse_loss(minibatch.returns, self.policy.predict_values(minibatch.observations).flatten())
                self.policy.optimizer.zero_grad()
                value_loss.backward()
                for param in params:
                    param.grad = None
                self.policy.optimizer.step()
                value_losses.append(value_loss.item())

        self._n_updates += 1
        self.logger.record("train/policy_objective", policy_objective.item())
        self.logger.record("train/natural_gradient_norm", direction.norm().item())
        self.logger.record("train/step_size", step_size)
        self.logger.record("train/value_loss", float(np.mean(value_losses)))
        self.logger.record("train/explained_variance",
                           explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten()))
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")

    def learn(self: SelfNPG, total_timesteps: int, callback=None, log_interval: int = 1, tb_log_name: str = "NPG",
              reset_num_timesteps: bool = True, progress_bar: bool = False) -> SelfNPG:
        return super().learn(total_timesteps=total_timesteps, callback=callback, log_interval=log_interval,
                             tb_log_name=tb_log_name, reset_num_timesteps=reset_num_timesteps,
                             progress_bar=progress_bar)
