"""ACER: Actor-Critic with Experience Replay, for discrete and continuous actions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import obs_as_tensor, polyak_update
from stable_baselines3.common.vec_env import VecEnv

from rlhub_policy_gradient.buffers import SegmentReplayBuffer, Segments
from rlhub_policy_gradient.policies import ACERCnnPolicy, ACERPolicy

SelfACER = TypeVar("SelfACER", bound="ACER")

#: Keeps logarithms and ratios of probabilities finite.
_EPS = 1e-6
#: Largest log importance ratio computed (exp(30) ~ 1e13): beyond that only its truncation matters.
_MAX_LOG_RATIO = 30.0


def retrace_targets(rewards: th.Tensor, dones: th.Tensor, q_taken: th.Tensor, values: th.Tensor,
                    traces: th.Tensor, bootstrap: th.Tensor, gamma: float) -> th.Tensor:
    """Retrace targets ``Q_ret`` (eq. 5 of the ACER paper), computed backwards along each segment.

    ``Q_ret(x_t, a_t) = r_t + gamma * [c_{t+1} (Q_ret(x_{t+1}, a_{t+1}) - Q(x_{t+1}, a_{t+1})) + V(x_{t+1})]``,
    cut at episode ends and started from ``V`` of the observation after the segment. With traces of
    1 this is ``Q_opc``.

    :param rewards: (segments, steps)
    :param dones: (segments, steps), 1 where the episode ended after the step
    :param q_taken: (segments, steps) ``Q(x_t, a_t)`` of the critic
    :param values: (segments, steps) ``V(x_t)``
    :param traces: (segments, steps) ``c_t``: ``min(1, rho_t)`` (discrete), ``min(1, rho_t ** (1/d))``
        (continuous) or 1 (``Q_opc``)
    :param bootstrap: (segments,) ``V`` of the observation following the last step
    :param gamma: discount factor
    :return: (segments, steps) the targets
    """
    targets = th.empty_like(rewards)
    target = bootstrap
    for step in reversed(range(rewards.shape[1])):
        target = rewards[:, step] + gamma * (1.0 - dones[:, step]) * target
        targets[:, step] = target
        target = traces[:, step] * (target - q_taken[:, step]) + values[:, step]
    return targets


def trust_region_step(gradient: th.Tensor, kl_gradient: th.Tensor, delta: float) -> tuple[th.Tensor, th.Tensor]:
    """ACER's efficient trust-region projection (eq. 12-13 of the paper), one row per sample.

    Solves ``min_z 1/2 ||g - z||^2  s.t.  k.z <= delta`` in closed form:
    ``z* = g - max(0, (k.g - delta) / ||k||^2) k``.

    :param gradient: (samples, P) gradient ``g`` of the policy objective with respect to the
        distribution statistics ``phi``
    :param kl_gradient: (samples, P) ``k``, the gradient of ``KL(f(phi_average) || f(phi))``
    :param delta: the trust region's radius
    :return: ``z*`` (samples, P) and the scale of ``k`` removed from each row (samples,)
    """
    scale = ((kl_gradient * gradient).sum(-1) - delta) / (kl_gradient.pow(2).sum(-1) + 1e-10)
    scale = scale.clamp(min=0.0)
    return gradient - scale.unsqueeze(-1) * kl_gradient, scale


@dataclass
class _UpdateStats:
    values: dict[str, float]
    replay: bool


class ACER(OnPolicyAlgorithm):
    """
    Actor-Critic with Experience Replay (ACER)

    Each iteration collects ``n_steps`` transitions per environment with the current policy, takes
    one on-policy update on them and stores them in a replay buffer of trajectory segments, then
    takes on average ``replay_ratio`` (Poisson-distributed) off-policy updates on segments sampled
    from it. An update combines Retrace targets for the critic, truncated importance weights with
    bias correction for the policy gradient, an entropy bonus and the efficient trust region
    against an exponential moving average of the policy. Discrete actions use a Q head
    (``V = sum_a pi(a) Q(a)``); continuous actions a Gaussian policy and a stochastic dueling network
    (``Q~(x, a) = V(x) + A(x, a) - mean_i A(x, u_i)``, ``u_i ~ pi``), as in the paper.

    Paper: Wang et al. (2016), "Sample Efficient Actor-Critic with Experience Replay", https://arxiv.org/abs/1611.01224
    Code: written for rlhub; the update rules were checked against Stable Baselines' acer_simple.py
    (https://github.com/hill-a/stable-baselines, discrete only) and PFRL's acer.py (https://github.com/pfnet/pfrl)

    :param policy: The policy model to use (MlpPolicy, CnnPolicy)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0)
    :param n_steps: The number of steps to run for each environment per update: the length of the
        trajectory segments (rollout size is ``n_steps * n_envs``)
    :param gamma: Discount factor
    :param q_coef: Weight of the critic's loss (Q, and V for continuous actions)
    :param ent_coef: Entropy coefficient for the loss calculation
    :param max_grad_norm: The maximum value for the gradient clipping (None: no clipping)
    :param use_rms_prop: Whether to use RMSprop (default, as the paper) or Adam as optimizer; an
        ``optimizer_class`` in ``policy_kwargs`` wins over both
    :param rms_prop_eps: RMSProp epsilon. It stabilizes square root computation in denominator
        of RMSProp update
    :param buffer_size: Transitions (all environments together) the replay buffer keeps
    :param replay_ratio: Mean number of off-policy updates per on-policy update (Poisson); 0 turns
        replay off (on-policy ACER)
    :param replay_start: Transitions the replay buffer must hold before replay starts
    :param replay_batch_size: Segments per off-policy update (None: ``n_envs``, the on-policy batch)
    :param correction_term: Truncation threshold ``c`` of the importance weights; the bias
        correction term covers what truncation drops
    :param trust_region: Whether to use the efficient trust-region update
    :param alpha: Decay of the exponential moving average of the policy network (the trust
        region's average policy)
    :param delta: Radius of the trust region (bound on the first-order change of the KL divergence
        from the average policy)
    :param n_action_samples: Actions sampled from the policy to centre the advantage stream of the
        stochastic dueling network (continuous actions)
    :param use_q_opc: Use ``Q_opc`` (Retrace with traces of 1) instead of ``Q_ret`` in the policy
        gradient; "auto" does so for continuous actions only, as the paper does
    :param stats_window_size: Window size for the rollout logging, specifying the number of episodes to average
        the reported success rate, mean episode length, and mean reward over
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation
        (``net_arch``, ``activation_fn``, ``log_std_init``, ``optimizer_class``, ...)
    :param verbose: the verbosity level: 0 no output, 1 info, 2 debug
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": ACERPolicy, "CnnPolicy": ACERCnnPolicy}
    policy: ACERPolicy
    rollout_buffer: Segments  # type: ignore[assignment]

    def __init__(
        self,
        policy: str | type[ACERPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 7e-4,
        n_steps: int = 20,
        gamma: float = 0.99,
        q_coef: float = 0.5,
        ent_coef: float = 0.01,
        max_grad_norm: float | None = 10.0,
        use_rms_prop: bool = True,
        rms_prop_eps: float = 1e-5,
        buffer_size: int = 50_000,
        replay_ratio: float = 4.0,
        replay_start: int = 1_000,
        replay_batch_size: int | None = None,
        correction_term: float = 10.0,
        trust_region: bool = True,
        alpha: float = 0.99,
        delta: float = 1.0,
        n_action_samples: int = 5,
        use_q_opc: bool | str = "auto",
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
            n_steps=n_steps,
            gamma=gamma,
            gae_lambda=1.0,  # unused: Retrace replaces GAE
            ent_coef=ent_coef,
            vf_coef=q_coef,
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
            supported_action_spaces=(spaces.Discrete, spaces.Box),
        )
        problems = []
        if n_steps < 1:
            problems.append(f"n_steps must be at least 1, got {n_steps}")
        if replay_ratio < 0:
            problems.append(f"replay_ratio must be >= 0, got {replay_ratio}")
        if correction_term <= 0:
            problems.append(f"correction_term (c) must be positive, got {correction_term}")
        if not 0.0 <= alpha < 1.0:
            problems.append(f"alpha must be in [0, 1), got {alpha}")
        if delta <= 0:
            problems.append(f"delta must be positive, got {delta}")
        if max_grad_norm is not None and max_grad_norm <= 0:
            problems.append(f"max_grad_norm must be positive or None, got {max_grad_norm}")
        if n_action_samples < 1:
            problems.append(f"n_action_samples must be at least 1, got {n_action_samples}")
        if use_q_opc not in (True, False, "auto"):
            problems.append(f"use_q_opc must be true, false or 'auto', got {use_q_opc!r}")
        if replay_batch_size is not None and replay_batch_size < 1:
            problems.append(f"replay_batch_size must be at least 1 or None, got {replay_batch_size}")
        if problems:
            raise ValueError("ACER: " + "; ".join(problems))
        self.q_coef = q_coef
        self.use_rms_prop = use_rms_prop
        self.rms_prop_eps = rms_prop_eps
        self.buffer_size = buffer_size
        self.replay_ratio = replay_ratio
        self.replay_start = replay_start
        self.replay_batch_size = replay_batch_size
        self.correction_term = correction_term
        self.trust_region = trust_region
        self.alpha = alpha
        self.delta = delta
        self.n_action_samples = n_action_samples
        self.use_q_opc = use_q_opc
        if use_rms_prop and "optimizer_class" not in self.policy_kwargs:
            self.policy_kwargs["optimizer_class"] = th.optim.RMSprop
            self.policy_kwargs["optimizer_kwargs"] = dict(alpha=0.99, eps=rms_prop_eps, weight_decay=0)
        if _init_setup_model:
            self._setup_model()

    # ----------------------------------------------------------------------------------------
    # Building

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, self.lr_schedule, **self.policy_kwargs
        )
        self.policy = self.policy.to(self.device)
        self.continuous = isinstance(self.action_space, spaces.Box)
        observation_shape = self.observation_space.shape
        action_shape = self.action_space.shape if self.continuous else ()
        action_dtype = np.float32 if self.continuous else np.int64
        observation_dtype = self.observation_space.dtype
        self.rollout_buffer = Segments(
            observations=np.zeros((self.n_envs, self.n_steps + 1, *observation_shape), dtype=observation_dtype),
            actions=np.zeros((self.n_envs, self.n_steps, *action_shape), dtype=action_dtype),
            rewards=np.zeros((self.n_envs, self.n_steps), dtype=np.float32),
            dones=np.zeros((self.n_envs, self.n_steps), dtype=np.float32),
            behaviour=np.zeros((self.n_envs, self.n_steps, self.policy.behaviour_dim), dtype=np.float32),
        )
        self.replay_buffer = None
        if self.replay_ratio > 0:
            self.replay_buffer = SegmentReplayBuffer(
                self.buffer_size, self.n_steps, self.n_envs, observation_shape, observation_dtype,  # type: ignore[arg-type]
                action_shape, action_dtype, self.policy.behaviour_dim,  # type: ignore[arg-type]
            )
        self._replay_rng = np.random.default_rng(self.seed)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_replay_rng"]

    # ----------------------------------------------------------------------------------------
    # Acting

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: RolloutBuffer,
        n_rollout_steps: int,
    ) -> bool:
        """Play ``n_steps`` steps in every environment, recording the behaviour policy of each."""
        assert self._last_obs is not None, "No previous observation was provided"
        self.policy.set_training_mode(False)
        rollout = self.rollout_buffer
        callback.on_rollout_start()
        for step in range(self.n_steps):
            with th.no_grad():
                actions, behaviour = self.policy.act(obs_as_tensor(self._last_obs, self.device))  # type: ignore[arg-type]
            actions = actions.cpu().numpy()
            env_actions = actions
            if self.continuous:
                env_actions = np.clip(actions, self.action_space.low, self.action_space.high)  # type: ignore[attr-defined]
            new_obs, rewards, dones, infos = env.step(env_actions)
            self.num_timesteps += env.num_envs

            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            rollout.observations[:, step] = self._last_obs
            rollout.actions[:, step] = actions
            rollout.rewards[:, step] = self._bootstrap_time_limits(rewards, dones, infos)
            rollout.dones[:, step] = dones
            rollout.behaviour[:, step] = behaviour.cpu().numpy()
            self._last_obs = new_obs  # type: ignore[assignment]
            self._last_episode_starts = dones
        rollout.observations[:, self.n_steps] = self._last_obs
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

    # ----------------------------------------------------------------------------------------
    # Learning

    def train(self) -> None:
        """One on-policy update on the last rollout, then the off-policy updates from replay."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        updates = [self._update(self.rollout_buffer, replay=False)]
        if self.replay_buffer is not None:
            self.replay_buffer.add(self.rollout_buffer)
            if self.replay_buffer.n_transitions >= self.replay_start:
                batch_size = self.replay_batch_size or self.n_envs
                for _ in range(self._replay_rng.poisson(self.replay_ratio)):
                    segments = self.replay_buffer.sample(batch_size, self._replay_rng)
                    updates.append(self._update(segments, replay=True))
        self._log_updates(updates)

    def _update(self, segments: Segments, replay: bool) -> _UpdateStats:
        n_segments, n_steps = segments.rewards.shape
        observations = obs_as_tensor(segments.observations, self.device)
        observations = observations.reshape(n_segments * (n_steps + 1), *observations.shape[2:])
        observations = self.policy.preprocess(observations)  # type: ignore[arg-type]
        rewards = th.as_tensor(segments.rewards, device=self.device)
        dones = th.as_tensor(segments.dones, device=self.device)
        behaviour = th.as_tensor(segments.behaviour, device=self.device)
        actions = th.as_tensor(segments.actions, device=self.device)
        # The average policy only sees the steps (not the bootstrap observation).
        step_mask = th.ones(n_segments, n_steps + 1, dtype=th.bool, device=self.device)
        step_mask[:, -1] = False
        step_observations = observations[step_mask.flatten()]
        if self.continuous:
            losses = self._continuous_losses(observations, step_observations, actions, rewards, dones, behaviour)
        else:
            losses = self._discrete_losses(observations, step_observations, actions, rewards, dones, behaviour)
        loss = losses.pop("loss_tensor")
        self.policy.optimizer.zero_grad()
        loss.backward()
        if self.max_grad_norm is not None:
            grad_norm = th.nn.utils.clip_grad_norm_(self.policy.network.parameters(), self.max_grad_norm)
        else:
            grad_norm = th.nn.utils.clip_grad_norm_(self.policy.network.parameters(), float("inf"))
        self.policy.optimizer.step()
        polyak_update(self.policy.network.parameters(), self.policy.average_network.parameters(), 1.0 - self.alpha)
        self._n_updates += 1
        stats = {name: float(value) for name, value in losses.items()}
        stats["loss"] = loss.item()
        stats["grad_norm"] = float(grad_norm)
        return _UpdateStats(stats, replay)

    def _policy_loss(self, objective: th.Tensor, statistics: list[th.Tensor], kl: th.Tensor,
                     stats: dict[str, th.Tensor]) -> th.Tensor:
        """The policy part of the loss: ``-objective``, or, with the trust region, a surrogate whose
        gradient with respect to the distribution statistics ``phi`` is the projected ``-z*``."""
        n_samples = objective.numel()
        stats["kl_to_average"] = kl.detach().mean()
        if not self.trust_region:
            return -objective.mean()
        gradients = th.autograd.grad(objective.sum(), statistics, retain_graph=True)
        kl_gradients = th.autograd.grad(kl.sum(), statistics, retain_graph=True)
        flat_gradient = th.cat([grad.reshape(n_samples, -1) for grad in gradients], dim=1)
        flat_kl_gradient = th.cat([grad.reshape(n_samples, -1) for grad in kl_gradients], dim=1)
        projected, scale = trust_region_step(flat_gradient, flat_kl_gradient, self.delta)
        stats["trust_region_scale"] = scale.mean()
        stats["trust_region_active"] = (scale > 0).float().mean()
        flat_statistics = th.cat([statistic.reshape(n_samples, -1) for statistic in statistics], dim=1)
        return -(flat_statistics * projected.detach()).sum() / n_samples

    def _discrete_losses(self, observations: th.Tensor, step_observations: th.Tensor, actions: th.Tensor,
                         rewards: th.Tensor, dones: th.Tensor, behaviour: th.Tensor) -> dict[str, th.Tensor]:
        n_segments, n_steps = rewards.shape
        probs_all, q_all = self.policy.network(observations)
        probs_all = probs_all.reshape(n_segments, n_steps + 1, -1)
        q_all = q_all.reshape(n_segments, n_steps + 1, -1)
        with th.no_grad():
            values_all = (probs_all * q_all).sum(-1)
            average_probs = self.policy.average_network.action_probs(step_observations)  # type: ignore[union-attr]
            average_probs = average_probs.reshape(n_segments, n_steps, -1)
        probs = probs_all[:, :n_steps]  # phi: the statistics the trust region acts on
        q_values = q_all[:, :n_steps]
        values = values_all[:, :n_steps]
        actions = actions.long().unsqueeze(-1)

        with th.no_grad():
            ratios = probs / (behaviour + _EPS)  # rho(a) for every action
            ratio = ratios.gather(-1, actions).squeeze(-1)
            q_taken = q_values.gather(-1, actions).squeeze(-1)
            q_retrace = retrace_targets(rewards, dones, q_taken, values, ratio.clamp(max=1.0),
                                        values_all[:, n_steps], self.gamma)
            q_policy = q_retrace
            if self.use_q_opc is True:
                q_policy = retrace_targets(rewards, dones, q_taken, values, th.ones_like(ratio),
                                           values_all[:, n_steps], self.gamma)
            correction_weights = (1.0 - self.correction_term / (ratios + _EPS)).clamp(min=0.0)
            correction_weights = correction_weights * probs * (q_values - values.unsqueeze(-1))

        log_probs = th.log(probs + _EPS)
        log_prob_taken = log_probs.gather(-1, actions).squeeze(-1)
        truncated_gain = ratio.clamp(max=self.correction_term) * (q_policy - values) * log_prob_taken
        correction_gain = (correction_weights * log_probs).sum(-1)
        entropy = -(probs * log_probs).sum(-1)
        objective = truncated_gain + correction_gain + self.ent_coef * entropy
        kl = (average_probs * (th.log(average_probs + _EPS) - log_probs)).sum(-1)

        stats: dict[str, th.Tensor] = {}
        policy_loss = self._policy_loss(objective, [probs], kl, stats)
        q_loss = 0.5 * (q_retrace - q_values.gather(-1, actions).squeeze(-1)).pow(2).mean()
        stats.update(
            loss_tensor=policy_loss + self.q_coef * q_loss,
            policy_gradient_loss=-truncated_gain.detach().mean(),
            bias_correction_loss=-correction_gain.detach().mean(),
            entropy_loss=-entropy.detach().mean(),
            q_loss=q_loss.detach(),
            importance_weight=ratio.mean(),
            truncated_fraction=(ratio > self.correction_term).float().mean(),
            q_retrace=q_retrace.mean(),
        )
        return stats

    def _continuous_losses(self, observations: th.Tensor, step_observations: th.Tensor, actions: th.Tensor,
                           rewards: th.Tensor, dones: th.Tensor, behaviour: th.Tensor) -> dict[str, th.Tensor]:
        network = self.policy.network
        n_segments, n_steps = rewards.shape
        mean_all, log_std_all, values_all, features_all = network(observations)
        action_dim = mean_all.shape[-1]
        mean_all = mean_all.reshape(n_segments, n_steps + 1, action_dim)
        log_std_all = log_std_all.reshape(n_segments, n_steps + 1, action_dim)
        values_all = values_all.reshape(n_segments, n_steps + 1)
        features = features_all.reshape(n_segments, n_steps + 1, -1)[:, :n_steps]
        mean, log_std = mean_all[:, :n_steps], log_std_all[:, :n_steps]  # phi
        values = values_all[:, :n_steps]
        policy = th.distributions.Normal(mean, log_std.exp())
        behaviour_policy = th.distributions.Normal(behaviour[..., :action_dim], behaviour[..., action_dim:].exp())
        with th.no_grad():
            average_mean, average_log_std = self.policy.average_network.policy_params(  # type: ignore[union-attr]
                step_observations
            )
            average_policy = th.distributions.Normal(
                average_mean.reshape(n_segments, n_steps, action_dim),
                average_log_std.reshape(n_segments, n_steps, action_dim).exp(),
            )
            values_target = values_all.detach()
            sampled_actions = policy.sample()  # a' ~ pi, for the bias correction
            ratio = self._density_ratio(policy, behaviour_policy, actions)
            sampled_ratio = self._density_ratio(policy, behaviour_policy, sampled_actions)
            centring_actions = policy.sample((self.n_action_samples,))

        # Stochastic dueling network: Q~(x, a) = V(x) + A(x, a) - mean_i A(x, u_i).
        # The environment executes actions clipped to the bounds, so Q(x, a) = Q(x, clip(a)): the advantage
        # stream sees clipped actions and cannot invent values beyond the bounds for the policy to chase.
        mean_advantage = network.advantage(features, self._clip(centring_actions)).mean(0)  # type: ignore[union-attr]
        q_taken = values + network.advantage(features, self._clip(actions)) - mean_advantage  # type: ignore[union-attr]
        with th.no_grad():
            q_sampled = (values + network.advantage(features, self._clip(sampled_actions))  # type: ignore[union-attr]
                         - mean_advantage)
            traces = ratio.pow(1.0 / action_dim).clamp(max=1.0)
            bootstrap = values_target[:, n_steps]
            q_retrace = retrace_targets(rewards, dones, q_taken.detach(), values_target[:, :n_steps], traces,
                                        bootstrap, self.gamma)
            q_policy = q_retrace
            if self.use_q_opc in (True, "auto"):
                q_policy = retrace_targets(rewards, dones, q_taken.detach(), values_target[:, :n_steps],
                                           th.ones_like(traces), bootstrap, self.gamma)
            correction_weights = (1.0 - self.correction_term / (sampled_ratio + _EPS)).clamp(min=0.0)
            correction_weights = correction_weights * (q_sampled - values_target[:, :n_steps])
            value_targets = ratio.clamp(max=1.0) * (q_retrace - q_taken.detach()) + values_target[:, :n_steps]

        log_prob_taken = policy.log_prob(actions).sum(-1)
        truncated_gain = ratio.clamp(max=self.correction_term) * (q_policy - values_target[:, :n_steps]) * log_prob_taken
        correction_gain = correction_weights * policy.log_prob(sampled_actions).sum(-1)
        entropy = policy.entropy().sum(-1)
        objective = truncated_gain + correction_gain + self.ent_coef * entropy
        kl = th.distributions.kl_divergence(average_policy, policy).sum(-1)

        stats: dict[str, th.Tensor] = {}
        policy_loss = self._policy_loss(objective, [mean, log_std], kl, stats)
        q_loss = 0.5 * (q_retrace - q_taken).pow(2).mean()
        v_loss = 0.5 * (value_targets - values).pow(2).mean()
        stats.update(
            loss_tensor=policy_loss + self.q_coef * (q_loss + v_loss),
            policy_gradient_loss=-truncated_gain.detach().mean(),
            bias_correction_loss=-correction_gain.detach().mean(),
            entropy_loss=-entropy.detach().mean(),
            q_loss=q_loss.detach(),
            v_loss=v_loss.detach(),
            importance_weight=ratio.mean(),
            truncated_fraction=(ratio > self.correction_term).float().mean(),
            q_retrace=q_retrace.mean(),
            std=log_std.detach().exp().mean(),
        )
        return stats

    def _clip(self, actions: th.Tensor) -> th.Tensor:
        low = th.as_tensor(self.action_space.low, device=actions.device)  # type: ignore[attr-defined]
        high = th.as_tensor(self.action_space.high, device=actions.device)  # type: ignore[attr-defined]
        return th.maximum(th.minimum(actions, high), low)

    @staticmethod
    def _density_ratio(policy: th.distributions.Normal, behaviour_policy: th.distributions.Normal,
                       actions: th.Tensor) -> th.Tensor:
        log_ratio = policy.log_prob(actions).sum(-1) - behaviour_policy.log_prob(actions).sum(-1)
        return log_ratio.clamp(max=_MAX_LOG_RATIO).exp()

    def _log_updates(self, updates: list[_UpdateStats]) -> None:
        names = sorted({name for update in updates for name in update.values})
        for name in names:
            values = [update.values[name] for update in updates if name in update.values]
            if name == "importance_weight":
                continue
            self.logger.record(f"train/{name}", float(np.mean(values)))
        replayed = [update.values["importance_weight"] for update in updates if update.replay]
        if replayed:  # on-policy weights are 1 by construction; the replayed ones say how stale the buffer is
            self.logger.record("train/avg_importance_weight", float(np.mean(replayed)))
        self.logger.record("train/replay_updates", len(replayed))
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if self.replay_buffer is not None:
            self.logger.record("train/replay_buffer_transitions", self.replay_buffer.n_transitions)

    def learn(
        self: SelfACER,
        total_timesteps: int,
        callback: Any = None,
        log_interval: int = 20,
        tb_log_name: str = "ACER",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfACER:
        super().learn(total_timesteps, callback=callback, log_interval=log_interval, tb_log_name=tb_log_name,
                      reset_num_timesteps=reset_num_timesteps, progress_bar=progress_bar)
        self.logger.dump(step=self.num_timesteps)  # the last update's losses
        return self
