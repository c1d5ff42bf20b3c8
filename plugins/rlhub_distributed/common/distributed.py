"""What DPPO and A3C share: their worker settings, the workers' lifetime around ``learn``, their logs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from rlhub_distributed.common.cluster import ray_session
from rlhub_distributed.common.workers import WorkerPool


@dataclass(frozen=True)
class SpecEnvFactory:
    """Worker envs for an agent built in Python rather than by ``rlhub train`` (which passes its own
    factory): ``gym.make`` of the learner env's spec, monitored."""

    spec: gym.envs.registration.EnvSpec

    def __call__(self, n_envs: int, seed: int | None = None, start_index: int = 0) -> VecEnv:
        return make_vec_env(partial(gym.make, self.spec), n_envs=n_envs, seed=seed, start_index=start_index)

    @classmethod
    def of(cls, env: VecEnv) -> SpecEnvFactory:
        spec = env.get_attr("unwrapped", [0])[0].spec  # the outer spec lists Monitor, which gym.make cannot redo
        if spec is None:
            raise ValueError("the workers cannot remake an env with no gymnasium spec: register it, or pass "
                             "env_factory (a picklable callable (n_envs, seed, start_index) -> VecEnv)")
        return cls(spec)


class DistributedAlgorithm:
    """A mixin for an SB3 algorithm whose envs are stepped by :class:`WorkerPool` workers on Ray.

    :param n_workers: Rollout workers (Ray actors, one CPU each)
    :param envs_per_worker: Envs each worker steps
    :param ray_address: A Ray cluster to join (None: ``$RAY_ADDRESS``, else a local instance for the run)
    :param env_factory: Makes a worker's envs: ``(n_envs, seed, start_index) -> VecEnv`` (``rlhub train``
        passes one that builds them as the run's config says; None: from the env's gymnasium spec)
    """

    n_workers: int
    envs_per_worker: int
    ray_address: str | None
    env_factory: Any
    workers: WorkerPool | None

    def _set_up_workers(self, n_workers: int, envs_per_worker: int, ray_address: str | None,
                        env_factory: Any) -> None:
        if n_workers < 1 or envs_per_worker < 1:
            raise ValueError(f"n_workers and envs_per_worker must be 1 or more, got {n_workers} and {envs_per_worker}")
        self.n_workers, self.envs_per_worker = int(n_workers), int(envs_per_worker)
        self.ray_address, self.env_factory, self.workers = ray_address, env_factory, None

    def _check_env(self, env: VecEnv | None) -> None:
        if env is not None and isinstance(env, VecNormalize):
            raise ValueError("normalize is not supported by the distributed algorithms: each worker would keep "
                             "statistics of its own. Leave it out of the config")

    @property
    def worker_envs(self) -> int:
        """Envs stepped by all the workers together."""
        return self.n_workers * self.envs_per_worker

    @contextmanager
    def running_workers(self) -> Iterator[WorkerPool]:
        """The workers, started on Ray (joined or embedded) for the ``with`` block."""
        env_factory = self.env_factory or SpecEnvFactory.of(self.env)
        with ray_session(self.ray_address, self.n_workers) as ray:
            # The learner's own envs keep the first ranks (monitor files 0..n_envs-1).
            self.workers = WorkerPool(ray, n_workers=self.n_workers, envs_per_worker=self.envs_per_worker,
                                      env_factory=env_factory, policy_class=self.policy_class,
                                      policy_kwargs=self.policy_kwargs, seed=self.seed, gamma=self.gamma,
                                      first_rank=self.env.num_envs)
            try:
                yield self.workers
            finally:
                self.workers.close()
                self.workers = None

    def advance(self, steps: int, callback: Any) -> bool:
        """Count ``steps`` env steps taken by the workers and call the callbacks as SB3's loop would:
        once per step of the learner's env (the size the callbacks' frequencies were set for)."""
        for _ in range(max(steps // self.env.num_envs, 1)):
            self.num_timesteps += self.env.num_envs
            if not callback.on_step():
                return False
        return True

    def record_workers(self, reports: Sequence[tuple[int, int, float]]) -> None:
        """Throughput per worker from ``(worker, steps, seconds)`` reports, and the failures so far."""
        total = {}
        for index, steps, seconds in reports:
            done, spent = total.get(index, (0, 0.0))
            total[index] = (done + steps, spent + seconds)
        for index, (steps, seconds) in sorted(total.items()):
            self.logger.record(f"workers/steps_per_second_{index}", steps / max(seconds, 1e-9))
        self.logger.record("workers/restarts", self.workers.restarts if self.workers else 0)
        self.logger.record("workers/lost_steps", self.workers.lost_steps if self.workers else 0)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "env_factory", "workers"]  # type: ignore[misc]
