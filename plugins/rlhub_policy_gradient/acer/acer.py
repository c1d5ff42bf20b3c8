"""ACER: Actor-Critic with Experience Replay, for discrete and continuous actions."""

from __future__ import annotations

import io
import pathlib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import load_from_pkl, save_to_pkl
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import obs_as_tensor, polyak_update

from rlhub_policy_gradient.acer.buffers import SegmentReplayBuffer, Segments
from rlhub_policy_gradient.acer.losses import LossSettings, SegmentBatch, continuous_loss, discrete_loss
from rlhub_policy_gradient.acer.policies import (
    ACERCnnPolicy,
    ACERPolicy,
    DiscreteActorQNetwork,
    GaussianDuelingNetwork,
)
from rlhub_policy_gradient.common.rollout import RolloutAlgorithm, Step, time_limit_bootstrap


@dataclass
class UpdateStats:
    """What one update reports: the numbers to log, and whether it learned from replay."""

    values: dict[str, float]
    replay: bool


class ACER(RolloutAlgorithm):
    """
    Actor-Critic with Experience Replay (ACER)

    Each iteration collects ``n_steps`` transitions per environment with the current policy, takes
    one on-policy update on them and stores them in a replay buffer of trajectory segments, then
    takes on average ``replay_ratio`` (Poisson-distributed) off-policy updates on segments sampled
    from it. An update combines Retrace targets for the critic, truncated importance weights with
    bias correction for the policy gradient, an entropy bonus and the efficient trust region
    against an exponential moving average of the policy. Discrete actions use a Q head
    (``V = sum_a pi(a) Q(a)``); continuous actions a Gaussian policy and a stochastic dueling network
    (``Q~(x, a) = V(x) + A(x, a) - mean_i A(x, u_i)``, ``u_i ~ pi``), as in the paper. The update
    rules are in :mod:`rlhub_policy_gradient.acer.losses`.

    A step after which a time limit cut the episode is stored with the observation it was cut at,
    and every update, replayed ones included, bootstraps it with the current critic's value of that
    observation.

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
    policy_class: type[ACERPolicy]
    policy: ACERPolicy
    rollout_buffer: Segments
    replay_buffer: SegmentReplayBuffer | None
    default_log_interval = 20

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
            gamma=gamma,
            ent_coef=ent_coef,
            max_grad_norm=max_grad_norm,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
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
        problems += self.argument_problems()
        if n_action_samples < 1:
            problems.append(f"n_action_samples must be at least 1, got {n_action_samples}")
        if use_q_opc not in (True, False, "auto"):
            problems.append(f"use_q_opc must be true, false or 'auto', got {use_q_opc!r}")
        if replay_batch_size is not None and replay_batch_size < 1:
            problems.append(f"replay_batch_size must be at least 1 or None, got {replay_batch_size}")
        if not issubclass(self.policy_class, ACERPolicy):
            problems.append(f"the policy must be an ACERPolicy, got {self.policy_class.__name__}")
        if problems:
            raise ValueError("ACER: " + "; ".join(problems))
        self.n_steps = n_steps
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
        self.policy = self._build_policy(self.policy_class)
        self.continuous = isinstance(self.action_space, spaces.Box)
        observation_shape = self.observation_space.shape or ()
        action_shape = (self.action_space.shape or ()) if self.continuous else ()
        action_dtype = np.float32 if self.continuous else np.int64
        observation_dtype = self.observation_space.dtype
        self.rollout_buffer = Segments.zeros(self.n_envs, self.n_steps, observation_shape, observation_dtype,
                                             action_shape, action_dtype, self.policy.behaviour_dim)
        self.replay_buffer = None
        if self.replay_ratio > 0:
            self.replay_buffer = SegmentReplayBuffer(
                self.buffer_size, self.n_steps, self.n_envs, observation_shape, observation_dtype,
                action_shape, action_dtype, self.policy.behaviour_dim,
            )
        self._replay_rng = np.random.default_rng(self.seed)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_replay_rng"]

    def save_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """Save the replay buffer as a pickle file (as SB3's off-policy algorithms), to continue with it."""
        if self.replay_buffer is None:
            raise ValueError("ACER has no replay buffer to save (replay_ratio is 0)")
        save_to_pkl(path, self.replay_buffer, self.verbose)

    def load_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """Load a replay buffer saved by :meth:`save_replay_buffer` (it is unpickled: trusted files only)."""
        buffer = load_from_pkl(path, self.verbose)
        if not isinstance(buffer, SegmentReplayBuffer):
            raise TypeError(f"{path} holds a {type(buffer).__name__}, not ACER's SegmentReplayBuffer")
        if (buffer.n_steps, buffer.n_envs) != (self.n_steps, self.n_envs):
            raise ValueError(f"{path} holds segments of {buffer.n_steps} steps from {buffer.n_envs} envs; this ACER "
                             f"plays {self.n_steps} steps in {self.n_envs} envs")
        self.replay_buffer = buffer

    @property
    def loss_settings(self) -> LossSettings:
        """The hyperparameters the losses take, with ``use_q_opc="auto"`` resolved."""
        use_q_opc = self.use_q_opc is True or (self.use_q_opc == "auto" and self.continuous)
        return LossSettings(gamma=self.gamma, correction_term=self.correction_term, ent_coef=self.ent_coef,
                            q_coef=self.q_coef, trust_region=self.trust_region, delta=self.delta,
                            use_q_opc=use_q_opc, n_action_samples=self.n_action_samples)

    # ----------------------------------------------------------------------------------------
    # The rollout: n_steps steps of every environment, one segment each

    def _act(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with th.no_grad():
            actions, behaviour = self.policy.act(obs_as_tensor(observations, self.device))
        return actions.cpu().numpy(), behaviour.cpu().numpy()

    def _record(self, step_index: int, step: Step) -> None:
        self.rollout_buffer.record(step_index, step)

    def _rollout_complete(self, n_steps: int) -> bool:
        return n_steps >= self.n_steps

    def _end_rollout(self, last_observations: np.ndarray) -> None:
        self.rollout_buffer.observations[:, self.n_steps] = last_observations

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

    def segment_batch(self, segments: Segments) -> SegmentBatch:
        """The segments as tensors, rewards bootstrapped where a time limit cut an episode, with
        ``V`` of the observation it was cut at from the current network."""
        rewards = time_limit_bootstrap(
            th.as_tensor(segments.rewards, device=self.device),
            th.as_tensor(segments.truncated, device=self.device),
            th.as_tensor(segments.final_observations, device=self.device),
            self.policy.predict_values, self.gamma,
        )
        return SegmentBatch(
            actions=th.as_tensor(segments.actions, device=self.device),
            rewards=rewards,
            dones=th.as_tensor(segments.dones, device=self.device),
            behaviour=th.as_tensor(segments.behaviour, device=self.device),
        )

    def _update(self, segments: Segments, replay: bool) -> UpdateStats:
        batch = self.segment_batch(segments)
        n_segments, n_steps = segments.rewards.shape
        observations = th.as_tensor(segments.observations, device=self.device)
        observations = self.policy.preprocess(observations.reshape(n_segments * (n_steps + 1),
                                                                   *observations.shape[2:]))
        # The average policy only sees the steps (not the bootstrap observation).
        step_observations = observations.reshape(n_segments, n_steps + 1, *observations.shape[1:])[:, :n_steps]
        step_observations = step_observations.reshape(n_segments * n_steps, *observations.shape[1:])
        network, average_network = self.policy.network, self.policy.average_network
        if isinstance(network, GaussianDuelingNetwork) and isinstance(average_network, GaussianDuelingNetwork):
            loss, stats = self._continuous_loss(network, average_network, observations, step_observations, batch)
        elif isinstance(network, DiscreteActorQNetwork) and isinstance(average_network, DiscreteActorQNetwork):
            probs_all, q_all = network(observations)
            with th.no_grad():
                average_probs = average_network.action_probs(step_observations).reshape(n_segments, n_steps, -1)
            loss, stats = discrete_loss(probs_all.reshape(n_segments, n_steps + 1, -1),
                                        q_all.reshape(n_segments, n_steps + 1, -1), average_probs, batch,
                                        self.loss_settings)
        else:
            raise TypeError(f"ACER has no loss for a {type(network).__name__}")
        stats["grad_norm"] = self._gradient_step(loss, network.parameters())
        stats["loss"] = loss.item()
        polyak_update(network.parameters(), average_network.parameters(), 1.0 - self.alpha)
        return UpdateStats(stats, replay)

    def _continuous_loss(self, network: GaussianDuelingNetwork, average_network: GaussianDuelingNetwork,
                         observations: th.Tensor, step_observations: th.Tensor,
                         batch: SegmentBatch) -> tuple[th.Tensor, dict[str, float]]:
        n_segments, n_steps = batch.rewards.shape
        mean_all, log_std_all, values_all, features_all = network(observations)
        action_dim = mean_all.shape[-1]
        mean = mean_all.reshape(n_segments, n_steps + 1, action_dim)[:, :n_steps]
        log_std = log_std_all.reshape(n_segments, n_steps + 1, action_dim)[:, :n_steps]
        features = features_all.reshape(n_segments, n_steps + 1, -1)[:, :n_steps]
        with th.no_grad():
            average_mean, average_log_std = average_network.policy_params(step_observations)
            average_policy = th.distributions.Normal(
                average_mean.reshape(n_segments, n_steps, action_dim),
                average_log_std.reshape(n_segments, n_steps, action_dim).exp(),
            )

        def advantage(actions: th.Tensor) -> th.Tensor:
            # The environment executes actions clipped to the bounds, so Q(x, a) = Q(x, clip(a)): the advantage
            # stream sees clipped actions and cannot invent values beyond the bounds for the policy to chase.
            return network.advantage(features, self._clip(actions))

        return continuous_loss(mean, log_std, values_all.reshape(n_segments, n_steps + 1), advantage, average_policy,
                               batch, self.loss_settings)

    def _clip(self, actions: th.Tensor) -> th.Tensor:
        assert isinstance(self.action_space, spaces.Box)
        low = th.as_tensor(self.action_space.low, device=actions.device)
        high = th.as_tensor(self.action_space.high, device=actions.device)
        return th.maximum(th.minimum(actions, high), low)

    def _log_updates(self, updates: list[UpdateStats]) -> None:
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
