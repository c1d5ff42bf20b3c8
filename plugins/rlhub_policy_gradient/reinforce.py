"""REINFORCE: Monte-Carlo policy gradient on complete episodes."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import explained_variance, obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv
from torch.nn import functional as F

from rlhub_policy_gradient.buffers import EpisodeBuffer
from rlhub_policy_gradient.policies import CnnPolicy, MlpPolicy

SelfREINFORCE = TypeVar("SelfREINFORCE", bound="REINFORCE")


class REINFORCE(OnPolicyAlgorithm):
    """
    REINFORCE (Monte-Carlo policy gradient), with an optional learned baseline

    Each update collects ``n_episodes`` complete episodes with the current policy and takes one
    gradient step on ``-log pi(a_t|s_t) * G_t``, where ``G_t`` is the discounted reward-to-go. With
    ``baseline=True`` a learned state value ``V(s_t)`` is subtracted from ``G_t`` (and regressed on
    it). With a VecEnv, an episode that was running when the policy changed is played out but not
    learned from, so one environment (``n_envs: 1``) wastes no steps.

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
    policy: ActorCriticPolicy

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
            n_steps=1,  # unused: a rollout lasts until n_episodes episodes are complete
            gamma=gamma,
            gae_lambda=1.0,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,  # type: ignore[arg-type]
            use_sde=False,
            sde_sample_freq=-1,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
            supported_action_spaces=(spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
        )
        if n_episodes < 1:
            raise ValueError(f"n_episodes must be at least 1, got {n_episodes}")
        if max_grad_norm is not None and max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be positive or None, got {max_grad_norm}")
        self.n_episodes = n_episodes
        self.baseline = baseline
        self.normalize_returns = normalize_returns
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, self.lr_schedule, **self.policy_kwargs
        )
        self.policy = self.policy.to(self.device)
        self.rollout_buffer = EpisodeBuffer(self.n_envs, self.gamma)  # type: ignore[assignment]

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: RolloutBuffer,
        n_rollout_steps: int,
    ) -> bool:
        """Play the current policy until ``n_episodes`` episodes are complete (``n_rollout_steps`` is unused)."""
        assert self._last_obs is not None, "No previous observation was provided"
        episodes: EpisodeBuffer = rollout_buffer  # type: ignore[assignment]
        self.policy.set_training_mode(False)
        episodes.reset()
        callback.on_rollout_start()
        while episodes.n_complete < self.n_episodes:
            with th.no_grad():
                actions, _, _ = self.policy(obs_as_tensor(self._last_obs, self.device))  # type: ignore[arg-type]
            actions = actions.cpu().numpy()
            env_actions = actions
            if isinstance(self.action_space, spaces.Box):
                env_actions = np.clip(actions, self.action_space.low, self.action_space.high)
            new_obs, rewards, dones, infos = env.step(env_actions)
            self.num_timesteps += env.num_envs

            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            if self.baseline:
                rewards = self._bootstrap_time_limits(rewards, dones, infos)
            episodes.add(self._last_obs, actions, rewards, dones)  # type: ignore[arg-type]
            self._last_obs = new_obs  # type: ignore[assignment]
            self._last_episode_starts = dones
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _bootstrap_time_limits(self, rewards: np.ndarray, dones: np.ndarray, infos: list[dict]) -> np.ndarray:
        """An episode cut by a time limit did not end: add the discounted value of where it stopped."""
        rewards = rewards.astype(np.float32, copy=True)
        for env_index, done in enumerate(dones):
            info = infos[env_index]
            if done and info.get("TimeLimit.truncated", False) and info.get("terminal_observation") is not None:
                terminal_obs = self.policy.obs_to_tensor(info["terminal_observation"])[0]
                with th.no_grad():
                    rewards[env_index] += self.gamma * float(self.policy.predict_values(terminal_obs)[0])
        return rewards

    def train(self) -> None:
        """One gradient step on the collected episodes."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        batch = self.rollout_buffer.get()  # type: ignore[attr-defined]
        observations = obs_as_tensor(batch.observations, self.device)
        actions = th.as_tensor(batch.actions, device=self.device)
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.long().flatten()
        returns = th.as_tensor(batch.returns, device=self.device)

        values, log_prob, entropy = self.policy.evaluate_actions(observations, actions)  # type: ignore[arg-type]
        values = values.flatten()
        weights = returns - values.detach() if self.baseline else returns
        if self.normalize_returns and len(weights) > 1:
            weights = (weights - weights.mean()) / (weights.std() + 1e-8)
        policy_loss = -(weights * log_prob).mean()
        entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
        loss = policy_loss + self.ent_coef * entropy_loss
        value_loss = F.mse_loss(values, returns) if self.baseline else th.zeros((), device=self.device)
        if self.baseline:
            loss = loss + self.vf_coef * value_loss

        self.policy.optimizer.zero_grad()
        loss.backward()
        if self.max_grad_norm is not None:
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        self._n_updates += 1

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/policy_gradient_loss", policy_loss.item())
        self.logger.record("train/entropy_loss", entropy_loss.item())
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/episodes", batch.n_episodes)
        self.logger.record("train/batch_steps", len(returns))
        self.logger.record("train/discarded_steps", self.rollout_buffer.discarded_steps)  # type: ignore[attr-defined]
        self.logger.record("train/mean_return", returns.mean().item())
        if self.baseline:
            self.logger.record("train/value_loss", value_loss.item())
            self.logger.record("train/explained_variance",
                               explained_variance(values.detach().cpu().numpy(), batch.returns))

    def learn(
        self: SelfREINFORCE,
        total_timesteps: int,
        callback: Any = None,
        log_interval: int = 10,
        tb_log_name: str = "REINFORCE",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfREINFORCE:
        super().learn(total_timesteps, callback=callback, log_interval=log_interval, tb_log_name=tb_log_name,
                      reset_num_timesteps=reset_num_timesteps, progress_bar=progress_bar)
        self.logger.dump(step=self.num_timesteps)  # the last update's losses
        return self
