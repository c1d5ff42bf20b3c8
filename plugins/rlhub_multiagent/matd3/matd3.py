"""MATD3: multi-agent TD3 (Ackermann et al. 2019), of which MADDPG (Lowe et al. 2017) is the
single-critic, undelayed, unsmoothed case."""

from __future__ import annotations

from typing import Any, TypeVar

import torch as th
import torch.nn.functional as F
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import polyak_update

from rlhub_multiagent.common.off_policy import MultiAgentOffPolicyAlgorithm
from rlhub_multiagent.common.policies import MultiAgentPolicy

SelfMATD3 = TypeVar("SelfMATD3", bound="MATD3")


class MATD3(MultiAgentOffPolicyAlgorithm):
    """
    Multi-Agent Twin Delayed DDPG (MATD3): per agent, a decentralised actor on its own observation and
    ``n_critics`` centralised critics on every agent's observation and action, trained from one
    shared replay buffer.

    Each gradient step, agent i's critics regress on
    ``y_i = r_i + gamma * (1 - d) * min_k Q'_ik(o', a'_1 .. a'_N)``, the ``a'_j`` being the target actors'
    actions: Gumbel-softmax samples for Discrete agents (the MADDPG authors sample the target
    policy), ``tanh`` plus clipped noise for Box agents (target policy smoothing). Every
    ``policy_delay`` steps each actor ascends its first critic with its own action replaced by its
    current (differentiable) one, plus ``actor_regularization`` times its squared pre-activation
    (the authors' ``p_reg``), and the targets move by ``tau``. Gradients are clipped per agent.

    Paper: https://arxiv.org/abs/1910.01465 (MATD3), https://arxiv.org/abs/1706.02275 (MADDPG)
    Code: https://github.com/openai/maddpg (maddpg/trainer/maddpg.py), AgileRL (agilerl/algorithms/matd3.py)

    :param policy: The policy model to use (MultiInputPolicy: observations are dicts keyed by agent)
    :param env: The environment to learn from (a PettingZoo env id, module:env_name, or its VecEnv)
    :param learning_rate: Learning rate of actors and critics (the MADDPG paper: 0.01); it can be a
        function of the current progress remaining (from 1 to 0)
    :param buffer_size: Size of the shared replay buffer (joint transitions)
    :param learning_starts: Env steps of uniformly random actions before learning starts
    :param batch_size: Joint transitions per gradient step
    :param tau: The soft update coefficient of the target networks ("Polyak update", between 0 and 1)
    :param gamma: Discount factor
    :param train_freq: Update the model every ``train_freq`` steps of the vectorised env (the MADDPG
        paper updates every 100 transitions added); or a tuple of frequency and unit ("step" or "episode")
    :param gradient_steps: Gradient steps after each rollout (-1: as many as env steps were collected)
    :param exploration_noise: Standard deviation of the Gaussian noise on Box agents' actions while
        collecting, in [-1, 1] units
    :param policy_delay: Critic updates per actor (and target) update
    :param target_policy_noise: Standard deviation of the noise on Box target actions (smoothing)
    :param target_noise_clip: Limit of that noise's absolute value
    :param actor_regularization: Weight of the mean squared pre-activation of the actors' outputs
    :param max_grad_norm: The maximum norm of each agent's actor (critic) gradient
    :param stats_window_size: Window size for the rollout logging, specifying the number of episodes to average
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation (``n_critics``: 2)
    :param verbose: the verbosity level: 0 no output, 1 info, 2 debug
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    def __init__(
        self,
        policy: str | type[MultiAgentPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 1e-2,
        buffer_size: int = 1_000_000,
        learning_starts: int = 1000,
        batch_size: int = 1024,
        tau: float = 0.01,
        gamma: float = 0.95,
        train_freq: int | tuple[int, str] = 100,
        gradient_steps: int = 1,
        exploration_noise: float = 0.1,
        policy_delay: int = 2,
        target_policy_noise: float = 0.2,
        target_noise_clip: float = 0.5,
        actor_regularization: float = 1e-3,
        max_grad_norm: float = 0.5,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy, env, learning_rate, buffer_size=buffer_size, learning_starts=learning_starts, batch_size=batch_size,
            tau=tau, gamma=gamma, train_freq=train_freq, gradient_steps=gradient_steps,
            exploration_noise=exploration_noise, policy_kwargs=policy_kwargs, stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log, verbose=verbose, device=device, seed=seed,
        )
        self.policy_kwargs = {"n_critics": self.default_n_critics, **self.policy_kwargs}
        self.policy_delay = policy_delay
        self.target_policy_noise = target_policy_noise
        self.target_noise_clip = target_noise_clip
        self.actor_regularization = actor_regularization
        self.max_grad_norm = max_grad_norm
        if _init_setup_model:
            self._setup_model()

    #: Critics per agent unless ``policy_kwargs`` says otherwise.
    default_n_critics = 2

    def train(self, gradient_steps: int, batch_size: int = 1024) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        slots = self.policy.joint.slots
        critic_losses, actor_losses = [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            batch = self.replay_buffer.sample(batch_size)

            with th.no_grad():
                next_outputs = self.actor_target.outputs(batch.next_observations)
                next_actions = th.cat(self.actor_target.actions(
                    next_outputs, explore=True, noise_std=self.target_policy_noise, noise_clip=self.target_noise_clip),
                    dim=1)
                next_q = self.critic_target(batch.next_observations, next_actions).min(dim=1).values  # (N, B)
                targets = batch.rewards.T + self.gamma * (1.0 - batch.terminations.T) * next_q
            current_q = self.critic(batch.observations, batch.actions)  # (N, n_critics, B)
            critic_loss = F.mse_loss(current_q, targets.unsqueeze(1).expand_as(current_q), reduction="none")
            critic_loss = critic_loss.mean(dim=2).sum()  # each agent's critics' own mean squared errors
            self.critic.optimizer.zero_grad(set_to_none=True)
            critic_loss.backward()
            self.critic.clip_grad_norm_(self.max_grad_norm)
            self.critic.optimizer.step()
            critic_losses.append(critic_loss.item() / len(slots))

            if self._n_updates % self.policy_delay == 0:
                outputs = self.actor.outputs(batch.observations)
                own_actions = self.actor.actions(outputs, explore=True)
                # agent i's critic sees the buffer's actions of the others and its actor's own action
                joint_actions = batch.actions.expand(len(slots), *batch.actions.shape).clone()
                for index, slot in enumerate(slots):
                    joint_actions[index, :, slot.actions] = own_actions[index]
                self.critic.requires_grad_(False)  # the actors' loss moves only the actors
                q_values = self.critic.first_critics(batch.observations, joint_actions)
                self.critic.requires_grad_(True)
                regularization = sum(output.pow(2).mean() for output in outputs)
                actor_loss = -q_values.mean(dim=1).sum() + self.actor_regularization * regularization
                self.actor.optimizer.zero_grad(set_to_none=True)
                actor_loss.backward()
                for net in self.actor.nets:  # per agent, as each agent's optimizer is clipped in the paper
                    th.nn.utils.clip_grad_norm_(net.parameters(), self.max_grad_norm)
                self.actor.optimizer.step()
                actor_losses.append(actor_loss.item() / len(slots))
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if actor_losses:
            self.logger.record("train/actor_loss", sum(actor_losses) / len(actor_losses))
        self.logger.record("train/critic_loss", sum(critic_losses) / len(critic_losses))

    def learn(
        self: SelfMATD3,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "MATD3",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMATD3:
        return super().learn(total_timesteps=total_timesteps, callback=callback, log_interval=log_interval,
                             tb_log_name=tb_log_name, reset_num_timesteps=reset_num_timesteps,
                             progress_bar=progress_bar)
