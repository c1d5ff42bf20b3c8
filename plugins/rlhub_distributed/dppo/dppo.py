"""Distributed PPO: workers on Ray collect the rollouts, the learner runs SB3's PPO update on them."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.vec_env import VecEnv

from rlhub_distributed.common.distributed import DistributedAlgorithm
from rlhub_distributed.common.workers import Rollout, fill_buffer
from rlhub_distributed.dppo.gradient_averaging import averaged_iteration

SelfDPPO = TypeVar("SelfDPPO", bound="DPPO")


class DPPO(DistributedAlgorithm, PPO):
    """
    Distributed PPO, synchronous: every iteration the learner broadcasts its weights, each of the
    ``n_workers`` Ray workers steps its ``envs_per_worker`` envs ``n_steps`` times with them, and the
    gathered batch (``n_steps * n_workers * envs_per_worker`` steps) goes through SB3's own PPO update
    (:meth:`stable_baselines3.PPO.train`, untouched). A worker that dies is replaced and its rollout
    taken again; ``workers/lost_steps`` and ``workers/restarts`` count what it cost.

    Paper: Heess et al. (2017), "Emergence of Locomotion Behaviours in Rich Environments",
    https://arxiv.org/abs/1707.02286 (the workers there send gradients; here they send data, which
    keeps PPO's minibatch epochs exactly SB3's)

    :param average_gradients: Run the update on the workers instead: each runs PPO's update on its own
        rollout, every minibatch step applying the mean of all workers' gradients (the paper's scheme;
        ``batch_size`` is then per worker); ``train/*`` logs are the workers' means
    :param n_workers: Rollout workers (Ray actors, one CPU each)
    :param envs_per_worker: Envs each worker steps
    :param ray_address: A Ray cluster to join (None: ``$RAY_ADDRESS``, else a local Ray instance for the run)
    :param env_factory: Makes a worker's envs, ``(n_envs, seed, start_index) -> VecEnv``; ``rlhub train``
        passes one that builds them as the run's config says (None: from the env's gymnasium spec)

    The other parameters are :class:`~stable_baselines3.PPO`'s, with ``n_steps`` counted per worker env.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": ActorCriticPolicy,
                                                             "CnnPolicy": ActorCriticCnnPolicy}

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
        clip_range: float | Schedule = 0.2,
        clip_range_vf: float | Schedule | None = None,
        normalize_advantage: bool = True,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        target_kl: float | None = None,
        average_gradients: bool = False,
        n_workers: int = 2,
        envs_per_worker: int = 1,
        ray_address: str | None = None,
        env_factory: Any = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        with warnings.catch_warnings():  # PPO checks batch_size against the learner's envs, not the workers'
            warnings.filterwarnings("ignore", message=".*mini-batch size.*")
            super().__init__(policy, env, learning_rate=learning_rate, n_steps=n_steps, batch_size=batch_size,
                             n_epochs=n_epochs, gamma=gamma, gae_lambda=gae_lambda, clip_range=clip_range,
                             clip_range_vf=clip_range_vf, normalize_advantage=normalize_advantage,
                             ent_coef=ent_coef, vf_coef=vf_coef, max_grad_norm=max_grad_norm, target_kl=target_kl,
                             stats_window_size=stats_window_size, tensorboard_log=tensorboard_log,
                             policy_kwargs=policy_kwargs, verbose=verbose, seed=seed, device=device,
                             _init_setup_model=False)
        self._set_up_workers(n_workers, envs_per_worker, ray_address, env_factory)
        self._check_env(self.env)
        self.average_gradients = average_gradients
        batch_envs = self.envs_per_worker if average_gradients else self.worker_envs
        if self.n_steps * batch_envs < batch_size:
            raise ValueError(f"batch_size {batch_size} is larger than a rollout of "
                             f"{'a worker' if average_gradients else 'the workers'}: {self.n_steps * batch_envs}")
        if average_gradients and target_kl is not None:
            raise ValueError("target_kl stops a worker's update early on its own data, so averaging workers "
                             "would wait for each other forever: leave one of them out")
        self._worker_logs: dict[str, float] = {}
        if _init_setup_model:
            self._setup_model()

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer,
                         n_rollout_steps: int) -> bool:
        """The workers' rollouts with the current weights, side by side in ``rollout_buffer``."""
        if self.workers is None:
            raise RuntimeError("DPPO's envs are stepped by its workers, which learn() starts")
        callback.on_rollout_start()
        weights = {name: tensor.detach().cpu() for name, tensor in self.policy.state_dict().items()}
        if self.average_gradients:
            rollouts = self._averaged_iteration(weights, n_rollout_steps)
        else:
            rollouts = self.workers.rollouts(weights, n_rollout_steps)
            fill_buffer(rollout_buffer, rollouts)
        self.ep_info_buffer.extend(info for rollout in rollouts for info in rollout.episode_infos)
        self.record_workers([(index, rollout.steps, rollout.seconds) for index, rollout in enumerate(rollouts)])
        self.logger.record("workers/overhead_ms", 1000 * self.workers.last_overhead)
        continuing = self.advance(sum(rollout.steps for rollout in rollouts), callback)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return continuing

    def _averaged_iteration(self, weights: dict[str, th.Tensor], n_steps: int) -> list[Rollout]:
        """The workers' rollouts and averaged update; the learner takes their (common) result."""
        optimizer_state = self.policy.optimizer.state_dict()
        settings = dict(learning_rate=self.learning_rate, batch_size=self.batch_size, n_epochs=self.n_epochs,
                        gamma=self.gamma, gae_lambda=self.gae_lambda, clip_range=self.clip_range,
                        clip_range_vf=self.clip_range_vf, normalize_advantage=self.normalize_advantage,
                        ent_coef=self.ent_coef, vf_coef=self.vf_coef, max_grad_norm=self.max_grad_norm)
        updates = averaged_iteration(self.workers, {"policy": weights, "optimizer": optimizer_state}, n_steps,
                                     settings, self._current_progress_remaining)
        self.policy.load_state_dict(updates[0].weights)
        self.policy.optimizer.load_state_dict(updates[0].optimizer_state)
        self._worker_logs = {key: float(np.mean([update.logs.get(key, np.nan) for update in updates]))
                             for key in updates[0].logs}
        return [update.rollout for update in updates]

    def train(self) -> None:
        """SB3's PPO update, or, with ``average_gradients``, the record of the workers' update."""
        if not self.average_gradients:
            return super().train()
        for key, value in self._worker_logs.items():
            self.logger.record(key, value)
        self._n_updates += self.n_epochs

    def learn(self: SelfDPPO, total_timesteps: int, callback=None, log_interval: int = 1, tb_log_name: str = "DPPO",
              reset_num_timesteps: bool = True, progress_bar: bool = False) -> SelfDPPO:
        if not self.average_gradients and self.rollout_buffer.n_envs != self.worker_envs:
            # The batch is the workers' envs side by side. Made here, not when the agent is built: a
            # downloaded agent's n_workers must not size memory it never uses.
            self.rollout_buffer = RolloutBuffer(self.n_steps, self.observation_space, self.action_space,
                                                device=self.device, gamma=self.gamma, gae_lambda=self.gae_lambda,
                                                n_envs=self.worker_envs)
        with self.running_workers():
            return super().learn(total_timesteps, callback=callback, log_interval=log_interval,
                                 tb_log_name=tb_log_name, reset_num_timesteps=reset_num_timesteps,
                                 progress_bar=progress_bar)

