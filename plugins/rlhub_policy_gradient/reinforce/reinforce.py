"""REINFORCE: Monte-Carlo policy gradient on complete episodes."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import explained_variance, obs_as_tensor
from torch.nn import functional as F

from rlhub_policy_gradient.common.rollout import RolloutAlgorithm, Step, time_limit_bootstrap
from rlhub_policy_gradient.reinforce.buffers import EpisodeBatch, EpisodeBuffer, reward_to_go
from rlhub_policy_gradient.reinforce.policies import CnnPolicy, MlpPolicy


class REINFORCE(RolloutAlgorithm):
    """
    REINFORCE (Monte-Carlo policy gradient), with an optional learned baseline

    Each update collects ``n_episodes`` complete episodes with the current policy and takes one
    gradient step on ``-log pi(a_t|s_t) * G_t``, where ``G_t`` is the discounted reward-to-go. With
    ``baseline=True`` a learned state value ``V(s_t)`` is subtracted from ``G_t`` (and regressed on
    it). With a VecEnv, an episode that was running when the policy changed is played out but not
    learned from, so one environment (``n_envs: 1``) wastes no steps.

    Time limits: with the baseline, an episode a time limit cut is bootstrapped with the baseline's
    value of the observation it stopped at (``G_T-1 = r + gamma * V(s_T)``), as SB3's on-policy
    algorithms do. Without a baseline there is no value to bootstrap from: the cut counts as the
    episode's end, which biases the returns of the steps just before a time limit downwards.

    Paper: Williams (1992), "Simple statistical gradient-following algorithms for connectionist
    reinforcement learning", https://doi.org/10.1007/BF00992696
    Code: written for rlhub; the CartPole setting follows the Hugging Face Deep RL course, unit 4
    (https://huggingface.co/learn/deep-rl-course/unit4)

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, ...): an SB3 actor-critic policy,
        whose value head is the baseline
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0)
    :param n_episodes: Complete episodes (over all environments) per gradient step
    :param gamma: Discount factor of the returns
    :param baseline: Subtract a learned state value from the returns (and train it by regression)
    :param normalize_returns: Standardise the policy-gradient weights (returns, or returns minus
        the baseline) over each batch
    :param ent_coef: Entropy coefficient for the loss calculation
    :param vf_coef: Value function coefficient for the loss calculation (with ``baseline=True``)
    :param max_grad_norm: The maximum value for the gradient clipping (None: no clipping)
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

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy, "CnnPolicy": CnnPolicy}
    policy_class: type[ActorCriticPolicy]
    policy: ActorCriticPolicy
    rollout_buffer: EpisodeBuffer
    default_log_interval = 10

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-3,
        n_episodes: int = 1,
        gamma: float = 0.99,
        baseline: bool = False,
        normalize_returns: bool = True,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            gamma=gamma,
            ent_coef=ent_coef,
            max_grad_norm=max_grad_norm,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            supported_action_spaces=(spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
        )
        self.n_episodes = n_episodes
        self.baseline = baseline
        self.normalize_returns = normalize_returns
        self.vf_coef = vf_coef
        problems = self.argument_problems()
        if n_episodes < 1:
            problems.insert(0, f"n_episodes must be at least 1, got {n_episodes}")
        if not issubclass(self.policy_class, ActorCriticPolicy):
            problems.append(f"the policy must be an SB3 ActorCriticPolicy, got {self.policy_class.__name__}")
        if problems:
            raise ValueError("REINFORCE: " + "; ".join(problems))
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self.policy = self._build_policy(self.policy_class)
        self.rollout_buffer = EpisodeBuffer(self.n_envs)

    # ----------------------------------------------------------------------------------------
    # The rollout: until n_episodes episodes are complete

    def _start_rollout(self) -> None:
        self.rollout_buffer.reset()

    def _act(self, observations: np.ndarray) -> tuple[np.ndarray, None]:
        with th.no_grad():
            actions, _, _ = self.policy(obs_as_tensor(observations, self.device))
        return actions.cpu().numpy(), None

    def _record(self, step_index: int, step: Step) -> None:
        self.rollout_buffer.add(step)

    def _rollout_complete(self, n_steps: int) -> bool:
        return self.rollout_buffer.n_complete >= self.n_episodes

    # ----------------------------------------------------------------------------------------
    # Learning

    def returns(self, batch: EpisodeBatch) -> th.Tensor:
        """The reward-to-go of every step of ``batch``; with the baseline, episodes a time limit cut
        are bootstrapped with its current value of where they stopped."""
        rewards = th.as_tensor(batch.rewards, device=self.device)
        if self.baseline:
            rewards = time_limit_bootstrap(rewards, th.as_tensor(batch.truncated, device=self.device),
                                           th.as_tensor(batch.final_observations, device=self.device),
                                           self.policy.predict_values, self.gamma)
        return th.as_tensor(reward_to_go(rewards.cpu().numpy(), self.gamma, batch.episode_ends), device=self.device)

    def train(self) -> None:
        """One gradient step on the collected episodes."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        batch = self.rollout_buffer.get()
        observations = th.as_tensor(batch.observations, device=self.device)
        actions = th.as_tensor(batch.actions, device=self.device)
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.long().flatten()
        returns = self.returns(batch)

        values, log_prob, entropy = self.policy.evaluate_actions(observations, actions)
        values = values.flatten()
        weights = returns - values.detach() if self.baseline else returns
        if self.normalize_returns and len(weights) > 1:
            weights = (weights - weights.mean()) / (weights.std() + 1e-8)
        policy_loss = -(weights * log_prob).mean()
        entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
        value_loss = F.mse_loss(values, returns) if self.baseline else th.zeros((), device=self.device)
        loss = policy_loss + self.ent_coef * entropy_loss + (self.vf_coef * value_loss if self.baseline else 0.0)
        grad_norm = self._gradient_step(loss, self.policy.parameters())

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/policy_gradient_loss", policy_loss.item())
        self.logger.record("train/entropy_loss", entropy_loss.item())
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/grad_norm", grad_norm)
        self.logger.record("train/episodes", batch.n_episodes)
        self.logger.record("train/batch_steps", len(returns))
        self.logger.record("train/discarded_steps", self.rollout_buffer.discarded_steps)
        self.logger.record("train/mean_return", returns.mean().item())
        if self.baseline:
            self.logger.record("train/value_loss", value_loss.item())
            self.logger.record("train/explained_variance",
                               explained_variance(values.detach().cpu().numpy(), returns.cpu().numpy()))
