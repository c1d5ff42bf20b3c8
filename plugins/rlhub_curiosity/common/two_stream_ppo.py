"""PPO with two value heads, one per reward stream, as used by Random Network Distillation.

Burda et al. 2018, "Exploration by Random Network Distillation", https://arxiv.org/abs/1810.12894 (section 2.3):
the extrinsic and intrinsic returns are estimated by two heads of one critic, with their own discount factors;
the extrinsic stream is episodic, the intrinsic one is not (a "game over" should not end curiosity). The policy
is trained on ``extrinsic_coef * A_ext + intrinsic_coef * A_int``.

Intrinsic rewards are read from ``infos[i]["intrinsic_reward"]`` (0.0 when absent), written by a VecEnv wrapper;
the env's own rewards are the extrinsic ones.
"""

from __future__ import annotations

from collections.abc import Generator
from functools import partial
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.common.utils import explained_variance, obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from torch import nn
from torch.nn import functional as F

INTRINSIC_REWARD_KEY = "intrinsic_reward"


class TwoHeadActorCriticPolicy(ActorCriticPolicy):
    """SB3's actor-critic policy plus ``intrinsic_value_net``, a second value head on the critic's latent."""

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        self.intrinsic_value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        if self.ortho_init:
            self.intrinsic_value_net.apply(partial(self.init_weights, gain=1))
        # super()._build made the optimizer before the new head existed.
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _latents(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        features = self.extract_features(obs)
        if self.share_features_extractor:
            return self.mlp_extractor(features)
        pi_features, vf_features = features
        return self.mlp_extractor.forward_actor(pi_features), self.mlp_extractor.forward_critic(vf_features)

    def forward_two_heads(
        self, obs: th.Tensor, deterministic: bool = False
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
        """Like ``forward``: (actions, values, intrinsic_values, log_prob), in one pass."""
        latent_pi, latent_vf = self._latents(obs)
        distribution = self._get_action_dist_from_latent(latent_pi)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        actions = actions.reshape((-1, *self.action_space.shape))  # type: ignore[misc]
        return actions, self.value_net(latent_vf), self.intrinsic_value_net(latent_vf), log_prob

    def predict_intrinsic_values(self, obs: PyTorchObs) -> th.Tensor:
        features = BasePolicy.extract_features(self, obs, self.vf_features_extractor)
        return self.intrinsic_value_net(self.mlp_extractor.forward_critic(features))

    def evaluate_actions_two_heads(
        self, obs: PyTorchObs, actions: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor | None]:
        """(values, intrinsic_values, log_prob, entropy) of ``actions``, in one pass."""
        latent_pi, latent_vf = self._latents(obs)
        distribution = self._get_action_dist_from_latent(latent_pi)
        log_prob = distribution.log_prob(actions)
        return self.value_net(latent_vf), self.intrinsic_value_net(latent_vf), log_prob, distribution.entropy()


class TwoHeadActorCriticCnnPolicy(TwoHeadActorCriticPolicy):
    """``TwoHeadActorCriticPolicy`` with NatureCNN features by default (image observations)."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule, **kwargs):
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)


class TwoStreamRolloutBufferSamples(NamedTuple):
    # RolloutBufferSamples's fields, then the intrinsic stream's.
    observations: th.Tensor
    actions: th.Tensor
    old_values: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor
    returns: th.Tensor
    old_intrinsic_values: th.Tensor
    intrinsic_returns: th.Tensor


class TwoStreamRolloutBuffer(RolloutBuffer):
    """Rollout buffer with a second, non-episodic reward stream; ``advantages`` holds the weighted sum of both."""

    intrinsic_rewards: np.ndarray
    intrinsic_values: np.ndarray
    intrinsic_returns: np.ndarray

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        gae_lambda: float = 1,
        gamma: float = 0.99,
        n_envs: int = 1,
        intrinsic_gamma: float = 0.99,
        extrinsic_coef: float = 1.0,
        intrinsic_coef: float = 1.0,
    ):
        if isinstance(observation_space, spaces.Dict):
            raise ValueError("TwoStreamRolloutBuffer does not support Dict observation spaces")
        self.intrinsic_gamma = intrinsic_gamma
        self.extrinsic_coef = extrinsic_coef
        self.intrinsic_coef = intrinsic_coef
        super().__init__(buffer_size, observation_space, action_space, device, gae_lambda, gamma, n_envs)

    def reset(self) -> None:
        shape = (self.buffer_size, self.n_envs)
        self.intrinsic_rewards = np.zeros(shape, dtype=np.float32)
        self.intrinsic_values = np.zeros(shape, dtype=np.float32)
        self.intrinsic_returns = np.zeros(shape, dtype=np.float32)
        super().reset()

    def add(  # type: ignore[override]
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        episode_start: np.ndarray,
        value: th.Tensor,
        log_prob: th.Tensor,
        intrinsic_reward: np.ndarray,
        intrinsic_value: th.Tensor,
    ) -> None:
        self.intrinsic_rewards[self.pos] = np.asarray(intrinsic_reward, dtype=np.float32)
        self.intrinsic_values[self.pos] = intrinsic_value.clone().cpu().numpy().flatten()
        super().add(obs, action, reward, episode_start, value, log_prob)

    def compute_returns_and_advantage(  # type: ignore[override]
        self, last_values: th.Tensor, last_intrinsic_values: th.Tensor, dones: np.ndarray
    ) -> None:
        super().compute_returns_and_advantage(last_values, dones)  # episodic extrinsic GAE
        extrinsic_advantages = self.advantages.copy()

        # Intrinsic GAE ignores episode ends: the paper's intrinsic stream runs across episodes.
        intrinsic_advantages = np.zeros_like(self.intrinsic_values)
        next_values = last_intrinsic_values.clone().cpu().numpy().flatten()
        last_gae_lam = np.zeros(self.n_envs, dtype=np.float32)
        for step in reversed(range(self.buffer_size)):
            delta = self.intrinsic_rewards[step] + self.intrinsic_gamma * next_values - self.intrinsic_values[step]
            last_gae_lam = delta + self.intrinsic_gamma * self.gae_lambda * last_gae_lam
            intrinsic_advantages[step] = last_gae_lam
            next_values = self.intrinsic_values[step]
        self.intrinsic_returns = intrinsic_advantages + self.intrinsic_values
        self.advantages = self.extrinsic_coef * extrinsic_advantages + self.intrinsic_coef * intrinsic_advantages

    def get(  # type: ignore[override]
        self, batch_size: int | None = None
    ) -> Generator[TwoStreamRolloutBufferSamples, None, None]:
        assert self.full, ""
        indices = np.random.permutation(self.buffer_size * self.n_envs)
        if not self.generator_ready:
            for name in (
                "observations", "actions", "values", "log_probs", "advantages", "returns",
                "intrinsic_values", "intrinsic_returns",
            ):  # fmt: skip
                self.__dict__[name] = self.swap_and_flatten(self.__dict__[name])
            self.generator_ready = True
        if batch_size is None:
            batch_size = self.buffer_size * self.n_envs
        for start_idx in range(0, self.buffer_size * self.n_envs, batch_size):
            yield self._get_samples(indices[start_idx : start_idx + batch_size])

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> TwoStreamRolloutBufferSamples:
        data = (
            self.observations[batch_inds],
            # float32 as in SB3 (MultiBinary actions would otherwise fail)
            self.actions[batch_inds].astype(np.float32, copy=False),
            self.values[batch_inds].flatten(),
            self.log_probs[batch_inds].flatten(),
            self.advantages[batch_inds].flatten(),
            self.returns[batch_inds].flatten(),
            self.intrinsic_values[batch_inds].flatten(),
            self.intrinsic_returns[batch_inds].flatten(),
        )
        return TwoStreamRolloutBufferSamples(*map(self.to_torch, data))


def _value_loss(values: th.Tensor, old_values: th.Tensor, returns: th.Tensor, clip_range_vf: float | None) -> th.Tensor:
    if clip_range_vf is not None:
        # PPO's optional value clipping (depends on the reward scale)
        values = old_values + th.clamp(values - old_values, -clip_range_vf, clip_range_vf)
    return F.mse_loss(returns, values)


class TwoStreamPPO(PPO):
    """
    PPO with an extrinsic (episodic, ``gamma``) and an intrinsic (non-episodic, ``intrinsic_gamma``) value head.

    Takes all of PPO's parameters, plus:

    :param intrinsic_gamma: discount factor of the intrinsic stream (paper: 0.99, with gamma=0.999)
    :param extrinsic_coef: weight of the extrinsic advantage in the policy's advantage (paper: 2)
    :param intrinsic_coef: weight of the intrinsic advantage (paper: 1)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {  # type: ignore[assignment]
        "MlpPolicy": TwoHeadActorCriticPolicy,
        "CnnPolicy": TwoHeadActorCriticCnnPolicy,
    }
    policy: TwoHeadActorCriticPolicy
    rollout_buffer: TwoStreamRolloutBuffer

    def __init__(
        self,
        policy: str | type[TwoHeadActorCriticPolicy],
        env: Any,
        *args: Any,
        intrinsic_gamma: float = 0.99,
        extrinsic_coef: float = 2.0,
        intrinsic_coef: float = 1.0,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ):
        super().__init__(policy, env, *args, _init_setup_model=False, **kwargs)
        self.intrinsic_gamma = intrinsic_gamma
        self.extrinsic_coef = extrinsic_coef
        self.intrinsic_coef = intrinsic_coef
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        if isinstance(self.observation_space, spaces.Dict):
            raise ValueError("TwoStreamPPO does not support Dict observation spaces")
        if self.rollout_buffer_class is None:
            self.rollout_buffer_class = TwoStreamRolloutBuffer
        if not issubclass(self.rollout_buffer_class, TwoStreamRolloutBuffer):
            raise TypeError(f"rollout_buffer_class must subclass TwoStreamRolloutBuffer: {self.rollout_buffer_class}")
        # Hand the stream settings to the buffer without storing them twice (they are saved as attributes).
        user_buffer_kwargs = self.rollout_buffer_kwargs
        self.rollout_buffer_kwargs = {
            **user_buffer_kwargs,
            "intrinsic_gamma": self.intrinsic_gamma,
            "extrinsic_coef": self.extrinsic_coef,
            "intrinsic_coef": self.intrinsic_coef,
        }
        try:
            super()._setup_model()
        finally:
            self.rollout_buffer_kwargs = user_buffer_kwargs
        if not isinstance(self.policy, TwoHeadActorCriticPolicy):
            raise TypeError(f"TwoStreamPPO needs a TwoHeadActorCriticPolicy, got {type(self.policy).__name__}")

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: TwoStreamRolloutBuffer,  # type: ignore[override]
        n_rollout_steps: int,
    ) -> bool:
        """SB3's ``OnPolicyAlgorithm.collect_rollouts``, also storing intrinsic rewards and values."""
        assert self._last_obs is not None, "No previous observation was provided"
        self.policy.set_training_mode(False)
        n_steps = 0
        rollout_buffer.reset()
        if self.use_sde:
            self.policy.reset_noise(env.num_envs)

        callback.on_rollout_start()

        while n_steps < n_rollout_steps:
            if self.use_sde and self.sde_sample_freq > 0 and n_steps % self.sde_sample_freq == 0:
                self.policy.reset_noise(env.num_envs)

            with th.no_grad():
                obs_tensor = obs_as_tensor(self._last_obs, self.device)  # type: ignore[arg-type]
                actions, values, intrinsic_values, log_probs = self.policy.forward_two_heads(obs_tensor)
            actions = actions.cpu().numpy()

            clipped_actions = actions
            if isinstance(self.action_space, spaces.Box):
                if self.policy.squash_output:
                    clipped_actions = self.policy.unscale_action(clipped_actions)
                else:
                    # the Gaussian is unbounded, the env is not
                    clipped_actions = np.clip(actions, self.action_space.low, self.action_space.high)

            new_obs, rewards, dones, infos = env.step(clipped_actions)
            intrinsic_rewards = np.array([info.get(INTRINSIC_REWARD_KEY, 0.0) for info in infos], dtype=np.float32)

            self.num_timesteps += env.num_envs

            callback.update_locals(locals())
            if not callback.on_step():
                return False

            self._update_info_buffer(infos, dones)
            n_steps += 1

            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.reshape(-1, 1)

            # Time-limit truncation is not a real end: bootstrap the extrinsic stream (SB3 GH #633).
            # The intrinsic stream needs no such fix, it never stops at episode ends.
            for idx, done in enumerate(dones):
                if (
                    done
                    and infos[idx].get("terminal_observation") is not None
                    and infos[idx].get("TimeLimit.truncated", False)
                ):
                    terminal_obs = self.policy.obs_to_tensor(infos[idx]["terminal_observation"])[0]
                    with th.no_grad():
                        terminal_value = self.policy.predict_values(terminal_obs)[0]  # type: ignore[arg-type]
                    rewards[idx] += self.gamma * terminal_value

            rollout_buffer.add(
                self._last_obs,  # type: ignore[arg-type]
                actions,
                rewards,
                self._last_episode_starts,  # type: ignore[arg-type]
                values,
                log_probs,
                intrinsic_rewards,
                intrinsic_values,
            )
            self._last_obs = new_obs  # type: ignore[assignment]
            self._last_episode_starts = dones

        with th.no_grad():
            last_obs = obs_as_tensor(new_obs, self.device)  # type: ignore[arg-type]
            values = self.policy.predict_values(last_obs)
            intrinsic_values = self.policy.predict_intrinsic_values(last_obs)

        rollout_buffer.compute_returns_and_advantage(values, intrinsic_values, dones)

        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def train(self) -> None:
        """PPO's update, with the value loss summed over both heads."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]
        clip_range_vf = None
        if self.clip_range_vf is not None:
            clip_range_vf = self.clip_range_vf(self._current_progress_remaining)  # type: ignore[operator]

        entropy_losses, pg_losses, value_losses, intrinsic_value_losses, clip_fractions = [], [], [], [], []
        continue_training = True
        for epoch in range(self.n_epochs):
            approx_kl_divs = []
            for batch in self.rollout_buffer.get(self.batch_size):
                actions = batch.actions
                if isinstance(self.action_space, spaces.Discrete):
                    actions = actions.long().flatten()
                values, intrinsic_values, log_prob, entropy = self.policy.evaluate_actions_two_heads(
                    batch.observations, actions
                )

                advantages = batch.advantages
                if self.normalize_advantage and len(advantages) > 1:  # std of one sample is undefined (SB3 GH #325)
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

                ratio = th.exp(log_prob - batch.old_log_prob)
                clipped_ratio = th.clamp(ratio, 1 - clip_range, 1 + clip_range)
                policy_loss = -th.min(advantages * ratio, advantages * clipped_ratio).mean()
                value_loss = _value_loss(values.flatten(), batch.old_values, batch.returns, clip_range_vf)
                intrinsic_value_loss = _value_loss(
                    intrinsic_values.flatten(), batch.old_intrinsic_values, batch.intrinsic_returns, clip_range_vf
                )
                # No analytical entropy (e.g. squashed Gaussian): estimate it from the log-probabilities.
                entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * (value_loss + intrinsic_value_loss)

                pg_losses.append(policy_loss.item())
                clip_fractions.append(th.mean((th.abs(ratio - 1) > clip_range).float()).item())
                value_losses.append(value_loss.item())
                intrinsic_value_losses.append(intrinsic_value_loss.item())
                entropy_losses.append(entropy_loss.item())

                with th.no_grad():  # http://joschu.net/blog/kl-approx.html
                    log_ratio = log_prob - batch.old_log_prob
                    approx_kl_div = th.mean((th.exp(log_ratio) - 1) - log_ratio).cpu().numpy()
                approx_kl_divs.append(approx_kl_div)
                if self.target_kl is not None and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {approx_kl_div:.2f}")
                    break

                self.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()

            self._n_updates += 1
            if not continue_training:
                break

        buffer = self.rollout_buffer
        self.logger.record("train/entropy_loss", np.mean(entropy_losses))
        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        self.logger.record("train/value_loss", np.mean(value_losses))
        self.logger.record("train/intrinsic_value_loss", np.mean(intrinsic_value_losses))
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        self.logger.record("train/clip_fraction", np.mean(clip_fractions))
        self.logger.record("train/loss", loss.item())
        self.logger.record(
            "train/explained_variance", explained_variance(buffer.values.flatten(), buffer.returns.flatten())
        )
        self.logger.record(
            "train/explained_variance_intrinsic",
            explained_variance(buffer.intrinsic_values.flatten(), buffer.intrinsic_returns.flatten()),
        )
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)
