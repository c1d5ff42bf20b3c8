"""Vanilla policy gradient with GAE and a learned value baseline: one gradient step per rollout."""

from typing import Any

import torch as th
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy


class VPG(OnPolicyAlgorithm):
    """Vanilla policy gradient (REINFORCE with a critic and GAE), one update per rollout.

    Paper: Sutton et al., "Policy Gradient Methods for RL with Function Approximation", 2000.
    Code: this example plugin.

    :param policy: the policy model ("MlpPolicy")
    :param env: the environment
    :param learning_rate: Adam learning rate
    :param n_steps: steps per environment per update
    :param gamma: discount factor
    :param gae_lambda: GAE lambda
    :param vf_coef: value loss weight
    :param kwargs: passed to OnPolicyAlgorithm (seed, device, tensorboard_log, verbose, ...)
    """

    policy_aliases = {"MlpPolicy": ActorCriticPolicy}

    def __init__(self, policy: Any, env: Any, learning_rate: float = 3e-3, n_steps: int = 128, gamma: float = 0.99,
                 gae_lambda: float = 0.95, vf_coef: float = 0.5, _init_setup_model: bool = True, **kwargs: Any):
        super().__init__(policy, env, learning_rate=learning_rate, n_steps=n_steps, gamma=gamma,
                         gae_lambda=gae_lambda, ent_coef=0.0, vf_coef=vf_coef, max_grad_norm=0.5, use_sde=False,
                         sde_sample_freq=-1, _init_setup_model=False, **kwargs)
        if _init_setup_model:
            self._setup_model()

    def train(self) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        rollout = next(self.rollout_buffer.get(batch_size=None))
        actions = rollout.actions.long().flatten() if self.action_space.__class__.__name__ == "Discrete" else rollout.actions
        values, log_prob, _ = self.policy.evaluate_actions(rollout.observations, actions)
        advantages = (rollout.advantages - rollout.advantages.mean()) / (rollout.advantages.std() + 1e-8)
        policy_loss = -(advantages * log_prob).mean()
        value_loss = th.nn.functional.mse_loss(rollout.returns, values.flatten())
        loss = policy_loss + self.vf_coef * value_loss
        self.policy.optimizer.zero_grad()
        loss.backward()
        th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        self._n_updates += 1
        self.logger.record("train/policy_loss", policy_loss.item())
        self.logger.record("train/value_loss", value_loss.item())
        self.logger.record("train/n_updates", self._n_updates)
