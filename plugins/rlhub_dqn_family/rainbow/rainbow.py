"""The DQN family as one algorithm: Double, Dueling, prioritized, n-step, noisy and distributional DQN."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import LinearSchedule, polyak_update
from torch.nn import functional as F

from rlhub_dqn_family.common.prioritized_replay import PrioritizedReplayBuffer
from rlhub_dqn_family.rainbow.distributional import project_distribution
from rlhub_dqn_family.rainbow.policies import CnnPolicy, MlpPolicy, RainbowPolicy, RainbowQNetwork

SelfRainbowDQN = TypeVar("SelfRainbowDQN", bound="RainbowDQN")


class RainbowDQN(OffPolicyAlgorithm):
    """
    DQN with any of Rainbow's six components, each an option

    - ``double_q``: the online network picks the next action, the target network values it
      (van Hasselt et al. 2015, arXiv 1509.06461);
    - ``dueling``: value and advantage streams (Wang et al. 2016, arXiv 1511.06581);
    - ``prioritized``: :class:`~rlhub_dqn_family.common.prioritized_replay.PrioritizedReplayBuffer`
      (Schaul et al. 2015, arXiv 1511.05952), importance weights on the loss and TD errors (or, for
      C51, the cross-entropy) as priorities, ``beta`` annealed to 1 over training;
    - ``n_steps``: n-step returns from the replay buffer;
    - ``noisy``: factorised noisy layers instead of epsilon-greedy exploration (Fortunato et al.
      2017, arXiv 1706.10295);
    - ``n_atoms > 1``: C51's categorical return distribution on ``[v_min, v_max]``, trained by
      cross-entropy to the projected target (Bellemare et al. 2017, arXiv 1707.06887).

    All on is Rainbow (Hessel et al. 2017, arXiv 1710.02298); the other ids of the family
    (``double_dqn``, ``dueling_dqn``, ``per_dqn``, ``c51``, ``rainbow``) are this class with their
    components on by default (:mod:`rlhub_dqn_family.presets`).

    Paper: Hessel et al. (2017), "Rainbow: Combining Improvements in Deep Reinforcement Learning",
    https://arxiv.org/abs/1710.02298
    Code: written for rlhub; the loop is SB3's DQN's (exploration schedule, target updates), the C51
    projection follows the paper's algorithm 1

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, ...)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0)
    :param buffer_size: size of the replay buffer
    :param learning_starts: how many steps of the model to collect transitions for before learning starts
    :param batch_size: Minibatch size for each gradient update
    :param tau: the soft update coefficient ("Polyak update", between 0 and 1), 1 for a hard update
    :param gamma: the discount factor
    :param train_freq: Update the model every ``train_freq`` steps (an int or a tuple with the unit)
    :param gradient_steps: How many gradient steps to do after each rollout
    :param double_q: Double DQN targets
    :param dueling: Dueling value and advantage streams
    :param prioritized: Prioritized replay (a ``PrioritizedReplayBuffer`` with ``alpha`` and ``beta``)
    :param alpha: Prioritization exponent
    :param beta: Initial importance-sampling exponent (annealed to 1)
    :param noisy: Noisy layers for exploration (epsilon-greedy is then off unless set)
    :param n_atoms: Atoms of the return distribution (1: plain Q-learning, 51: C51)
    :param v_min: Lowest return of the distribution's support
    :param v_max: Highest return of the distribution's support
    :param n_steps: Steps of the n-step returns
    :param replay_buffer_class: Replay buffer class (None: chosen from ``prioritized`` and ``n_steps``)
    :param replay_buffer_kwargs: Keyword arguments to pass to the replay buffer on creation
    :param optimize_memory_usage: Enable a memory efficient variant of the (plain) replay buffer
    :param target_update_interval: update the target network every ``target_update_interval`` environment steps
    :param exploration_fraction: fraction of the training over which the exploration rate is reduced
    :param exploration_initial_eps: initial value of random action probability
    :param exploration_final_eps: final value of random action probability
    :param max_grad_norm: The maximum value for the gradient clipping
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
    #: The components this class turns on by default (a preset overrides it).
    components: ClassVar[dict[str, Any]] = {}
    policy: RainbowPolicy
    q_net: RainbowQNetwork
    q_net_target: RainbowQNetwork

    def __init__(
        self,
        policy: str | type[RainbowPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 4,
        gradient_steps: int = 1,
        double_q: bool | None = None,
        dueling: bool | None = None,
        prioritized: bool | None = None,
        alpha: float = 0.5,
        beta: float = 0.4,
        noisy: bool | None = None,
        n_atoms: int | None = None,
        v_min: float = -10.0,
        v_max: float = 10.0,
        n_steps: int | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        target_update_interval: int = 10000,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float | None = None,
        exploration_final_eps: float | None = None,
        max_grad_norm: float = 10,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        # None: the preset's choice (self.components), else off. Noisy nets replace epsilon-greedy.
        def component(name: str, value: Any, default: Any) -> Any:
            return self.components.get(name, default) if value is None else value

        self.double_q = bool(component("double_q", double_q, False))
        self.dueling = bool(component("dueling", dueling, False))
        self.prioritized = bool(component("prioritized", prioritized, False))
        self.noisy = bool(component("noisy", noisy, False))
        self.n_atoms = int(component("n_atoms", n_atoms, 1))
        n_steps = int(component("n_steps", n_steps, 1))
        if self.n_atoms < 1 or self.n_atoms == 2 or v_max <= v_min:
            raise ValueError(f"n_atoms must be 1 (Q-values) or at least 3, and v_min < v_max; got n_atoms="
                             f"{self.n_atoms}, v_min={v_min}, v_max={v_max}")
        replay_buffer_kwargs = dict(replay_buffer_kwargs or {})
        if replay_buffer_class is None and self.prioritized:
            replay_buffer_class = PrioritizedReplayBuffer
            replay_buffer_kwargs = {"alpha": alpha, "beta": beta, "n_steps": n_steps, "gamma": gamma,
                                    **replay_buffer_kwargs}
            n_steps = 1  # the prioritized buffer sums the n steps itself: SB3 must not set up its own
        self.alpha, self.beta, self.v_min, self.v_max = alpha, beta, v_min, v_max
        super().__init__(
            policy,
            env,
            learning_rate,
            buffer_size,
            learning_starts,
            batch_size,
            tau,
            gamma,
            train_freq,
            gradient_steps,
            action_noise=None,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            sde_support=False,
            supported_action_spaces=(spaces.Discrete,),
            support_multi_env=True,
        )
        self.policy_kwargs.update(dueling=self.dueling, noisy=self.noisy, n_atoms=self.n_atoms, v_min=v_min,
                                  v_max=v_max)
        no_epsilon = 0.0 if self.noisy else None
        self.exploration_initial_eps = component("exploration_initial_eps", exploration_initial_eps,
                                                 1.0 if no_epsilon is None else no_epsilon)
        self.exploration_final_eps = component("exploration_final_eps", exploration_final_eps,
                                               0.05 if no_epsilon is None else no_epsilon)
        self.exploration_fraction = exploration_fraction
        self.target_update_interval = target_update_interval
        self._n_calls = 0
        self.max_grad_norm = max_grad_norm
        self.exploration_rate = 0.0
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        self.q_net, self.q_net_target = self.policy.q_net, self.policy.q_net_target
        self.exploration_schedule = LinearSchedule(self.exploration_initial_eps, self.exploration_final_eps,
                                                   self.exploration_fraction)
        if isinstance(self.replay_buffer, PrioritizedReplayBuffer):
            self.replay_buffer.progress = lambda: 1.0 - self._current_progress_remaining
        if self.n_envs > self.target_update_interval:
            warnings.warn(f"more environments than the target update interval ({self.n_envs} > "
                          f"{self.target_update_interval}): the target network is updated after every step")

    def _on_step(self) -> None:
        """Update the exploration rate and, every ``target_update_interval`` steps, the target network."""
        self._n_calls += 1
        if self._n_calls % max(self.target_update_interval // self.n_envs, 1) == 0:
            polyak_update(self.q_net.parameters(), self.q_net_target.parameters(), self.tau)
        self.exploration_rate = self.exploration_schedule(self._current_progress_remaining)
        self.logger.record("rollout/exploration_rate", self.exploration_rate)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses = []
        for _ in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = batch.discounts if batch.discounts is not None else self.gamma
            if self.noisy:
                self.policy.reset_noise()
            actions = batch.actions.long()
            if self.n_atoms == 1:
                per_sample, td_errors = self._q_learning_loss(batch, actions, discounts)
            else:
                per_sample = td_errors = self._distributional_loss(batch, actions, discounts)
            weights = getattr(batch, "weights", None)
            loss = (per_sample * weights.flatten()).mean() if weights is not None else per_sample.mean()
            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
            if isinstance(self.replay_buffer, PrioritizedReplayBuffer):
                self.replay_buffer.update_priorities(batch.leaves, td_errors)
            losses.append(loss.item())
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(np.mean(losses)))
        if isinstance(self.replay_buffer, PrioritizedReplayBuffer):
            self.logger.record("train/per_beta", self.replay_buffer.beta)

    def _next_actions(self, next_observations: th.Tensor, target_q: th.Tensor) -> th.Tensor:
        """Greedy next actions: by the online network (Double DQN) or by the target network's values."""
        if self.double_q:
            return self.q_net(next_observations).argmax(dim=1, keepdim=True)
        return target_q.argmax(dim=1, keepdim=True)

    def _q_learning_loss(self, batch, actions: th.Tensor, discounts) -> tuple[th.Tensor, th.Tensor]:
        """Per-sample Huber loss to the (Double) DQN target, and the TD errors."""
        with th.no_grad():
            target_q = self.q_net_target(batch.next_observations)
            next_q = target_q.gather(1, self._next_actions(batch.next_observations, target_q))
            targets = batch.rewards + (1 - batch.dones) * discounts * next_q
        current = self.q_net(batch.observations).gather(1, actions)
        return F.smooth_l1_loss(current, targets, reduction="none").flatten(), (current - targets).detach().flatten()

    def _distributional_loss(self, batch, actions: th.Tensor, discounts) -> th.Tensor:
        """Per-sample cross-entropy to C51's projected target distribution."""
        with th.no_grad():
            target_log_probs = self.q_net_target.log_probs(batch.next_observations)
            target_q = (target_log_probs.exp() * self.q_net_target.support).sum(dim=-1)
            next_actions = self._next_actions(batch.next_observations, target_q)
            next_probs = target_log_probs.exp()[th.arange(len(next_actions)), next_actions.flatten()]
            target = project_distribution(next_probs, batch.rewards, batch.dones, discounts, self.q_net_target.support)
        log_probs = self.q_net.log_probs(batch.observations)[th.arange(len(actions)), actions.flatten()]
        return -(target * log_probs).sum(dim=-1)

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        """Epsilon-greedy when not deterministic (as SB3's DQN); noisy layers add their noise then."""
        if not deterministic and np.random.rand() < self.exploration_rate:
            if self.policy.is_vectorized_observation(observation):
                n_batch = observation.shape[0]
                return np.array([self.action_space.sample() for _ in range(n_batch)]), state
            return np.array(self.action_space.sample()), state
        return self.policy.predict(observation, state, episode_start, deterministic)

    def learn(self: SelfRainbowDQN, total_timesteps: int, callback=None, log_interval: int = 4,
              tb_log_name: str = "RainbowDQN", reset_num_timesteps: bool = True,
              progress_bar: bool = False) -> SelfRainbowDQN:
        return super().learn(total_timesteps=total_timesteps, callback=callback, log_interval=log_interval,
                             tb_log_name=tb_log_name, reset_num_timesteps=reset_num_timesteps,
                             progress_bar=progress_bar)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "q_net", "q_net_target"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []
