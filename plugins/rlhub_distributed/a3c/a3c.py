"""A3C: workers on Ray compute n-step actor-critic gradients; the learner applies each as it arrives."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3 import A2C
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from rlhub_distributed.common.distributed import DistributedAlgorithm
from rlhub_distributed.common.workers import Gradients, WorkerPool

SelfA3C = TypeVar("SelfA3C", bound="A3C")


class A3C(DistributedAlgorithm, A2C):
    """
    Asynchronous advantage actor-critic. Each of the ``n_workers`` Ray workers takes ``n_steps`` steps
    in each of its envs with the weights it was last sent, computes the gradient of A2C's loss (n-step
    returns, value loss, entropy bonus) and sends it; the learner applies every gradient as it arrives
    with its RMSprop, whose statistics are thereby shared by all workers (the paper's "shared RMSProp"),
    and sends that worker the new weights. Gradients are thus computed on weights a few updates old, as
    in the paper. A worker that dies is replaced; ``workers/lost_steps`` counts the steps it was taking.

    Paper: Mnih et al. (2016), "Asynchronous Methods for Deep Reinforcement Learning",
    https://arxiv.org/abs/1602.01783 (there, threads share the parameters in memory; here the learner
    holds them, so workers may run on other machines)

    :param n_workers: Rollout workers (Ray actors, one CPU each)
    :param envs_per_worker: Envs each worker steps
    :param ray_address: A Ray cluster to join (None: ``$RAY_ADDRESS``, else a local Ray instance for the run)
    :param env_factory: Makes a worker's envs, ``(n_envs, seed, start_index) -> VecEnv``; ``rlhub train``
        passes one that builds them as the run's config says (None: from the env's gymnasium spec)

    The other parameters are :class:`~stable_baselines3.A2C`'s (``gae_lambda`` 1: the paper's n-step returns).
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": ActorCriticPolicy,
                                                             "CnnPolicy": ActorCriticCnnPolicy}

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 7e-4,
        n_steps: int = 5,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        ent_coef: float = 0.01,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        rms_prop_eps: float = 1e-5,
        use_rms_prop: bool = True,
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
        super().__init__(policy, env, learning_rate=learning_rate, n_steps=n_steps, gamma=gamma,
                         gae_lambda=gae_lambda, ent_coef=ent_coef, vf_coef=vf_coef, max_grad_norm=max_grad_norm,
                         rms_prop_eps=rms_prop_eps, use_rms_prop=use_rms_prop, stats_window_size=stats_window_size,
                         tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs, verbose=verbose, seed=seed,
                         device=device, _init_setup_model=False)
        self._set_up_workers(n_workers, envs_per_worker, ray_address, env_factory)
        self._check_env(self.env)
        if _init_setup_model:
            self._setup_model()

    def learn(self: SelfA3C, total_timesteps: int, callback=None, log_interval: int = 100, tb_log_name: str = "A3C",
              reset_num_timesteps: bool = True, progress_bar: bool = False) -> SelfA3C:
        total_timesteps, callback = self._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name,
                                                      progress_bar)
        callback.on_training_start(locals(), globals())
        with self.running_workers() as workers:
            self._learn_asynchronously(workers, total_timesteps, callback, log_interval)
        callback.on_training_end()
        return self

    def _learn_asynchronously(self, workers: WorkerPool, total_timesteps: int, callback: Any,
                              log_interval: int) -> None:
        """Apply gradients in the order they arrive; the sender goes on from the weights they make."""
        lost_per_failure = self.n_steps * self.envs_per_worker
        pending = {self._request(workers, index): index for index in range(len(workers))}
        reports: list[tuple[int, int, float]] = []
        losses: list[dict[str, float]] = []
        while self.num_timesteps < total_timesteps:
            (reference,), _ = workers.ray.wait(list(pending), num_returns=1)
            index = pending.pop(reference)
            result = workers.result(index, reference, lost_per_failure)
            if result is not None:
                self._apply(result, total_timesteps)
                reports.append((index, result.steps, result.seconds))
                losses.append(result.losses)
                if not self.advance(result.steps, callback):
                    break
                if self._n_updates % log_interval == 0:
                    self._dump(reports, losses)
                    reports, losses = [], []
            pending[self._request(workers, index)] = index
        self._dump(reports, losses)

    def _request(self, workers: WorkerPool, index: int) -> Any:
        weights = {name: tensor.detach().cpu() for name, tensor in self.policy.state_dict().items()}
        return workers.submit(index, "gradients", weights, self.n_steps, self.gae_lambda, self.ent_coef,
                              self.vf_coef, self.max_grad_norm)

    def _apply(self, result: Gradients, total_timesteps: int) -> None:
        self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
        self._update_learning_rate(self.policy.optimizer)
        for parameter, gradient in zip(self.policy.parameters(), result.gradients, strict=True):
            parameter.grad = th.tensor(gradient, device=self.device)  # Ray hands over read-only arrays
        self.policy.optimizer.step()
        self._n_updates += 1
        self.ep_info_buffer.extend(result.episode_infos)

    def _dump(self, reports: list[tuple[int, int, float]], losses: list[dict[str, float]]) -> None:
        for key in losses[0] if losses else ():
            self.logger.record(f"train/{key}", float(np.mean([loss[key] for loss in losses])))
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.record_workers(reports)
        self.dump_logs(self._n_updates)
