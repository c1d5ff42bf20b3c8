"""DPPO's gradient averaging (Heess et al. 2017, sec. 3): every worker runs SB3's own PPO update on its
own rollout, and each of its minibatch steps applies the mean of all workers' gradients for that step.
The workers start each iteration from the learner's weights and Adam state and apply the same mean
gradients, so they end it with the same weights, which the learner then takes back."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th

from rlhub_distributed.common.workers import Rollout, RolloutWorker, WorkerPool, fill_buffer

#: Seconds a worker waits at a minibatch step for the other workers' gradients before giving up
#: (one of them died): the learner then replaces the dead worker and runs the iteration again.
BARRIER_TIMEOUT = 30.0


class GradientAverager:
    """A Ray (async) actor: the mean of the ``n_workers`` gradients sent under one key, to each sender."""

    def __init__(self, n_workers: int, timeout: float = BARRIER_TIMEOUT) -> None:
        self.n_workers, self.timeout = n_workers, timeout
        self._rounds: dict[Any, tuple[list[np.ndarray], asyncio.Event]] = {}
        self._collected: dict[Any, int] = {}

    async def mean(self, key: Any, gradient: np.ndarray) -> np.ndarray:
        arrived, complete = self._rounds.setdefault(key, ([], asyncio.Event()))
        arrived.append(gradient)
        if len(arrived) == self.n_workers:
            complete.set()
        await asyncio.wait_for(complete.wait(), self.timeout)
        mean = np.mean(arrived, axis=0)
        self._collected[key] = self._collected.get(key, 0) + 1
        if self._collected[key] == self.n_workers:  # everyone has it: forget the round
            del self._rounds[key], self._collected[key]
        return mean


class AveragedOptimizer:
    """Wraps a worker's optimizer: each ``step`` first swaps the gradients for all workers' mean.
    Everything else (``zero_grad``, ``param_groups``, the state) is the wrapped optimizer's."""

    def __init__(self, optimizer: th.optim.Optimizer, ray: Any, averager: Any, round_key: Any) -> None:
        self.optimizer, self.ray, self.averager, self.round_key = optimizer, ray, averager, round_key
        self.steps = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)

    def step(self) -> None:
        parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
        flat = th.cat([(th.zeros_like(p) if p.grad is None else p.grad).flatten() for p in parameters])
        mean = self.ray.get(self.averager.mean.remote((self.round_key, self.steps), flat.numpy()))
        self.steps += 1
        offset = 0
        for parameter in parameters:
            size = parameter.numel()
            parameter.grad = th.tensor(mean[offset:offset + size]).view_as(parameter)
            offset += size
        self.optimizer.step()


@dataclass
class WorkerUpdate:
    """What a worker returns from an averaged iteration."""

    weights: dict[str, th.Tensor]
    optimizer_state: dict[str, Any]
    rollout: Rollout
    logs: dict[str, float]


def averaged_update(worker: RolloutWorker, state: dict[str, Any], n_steps: int, settings: dict[str, Any],
                    progress_remaining: float, averager: Any, round_key: Any) -> WorkerUpdate:
    """Run on a worker: a rollout from the learner's weights, then SB3's ``PPO.train`` on it with
    averaged gradients. The worker keeps a PPO of its own (built on first use) for that update."""
    import ray
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import configure

    if not hasattr(worker, "ppo"):
        worker.ppo = PPO(type(worker.policy), worker.env, n_steps=n_steps, device="cpu",
                         policy_kwargs=worker.policy_kwargs, **settings)
        worker.ppo.set_logger(configure(None, []))
        worker.policy = worker.ppo.policy  # the rollouts step with the policy this update trains
    ppo = worker.ppo
    ppo.policy.optimizer.load_state_dict(state["optimizer"])
    rollout = worker.rollout(state["policy"], n_steps)
    fill_buffer(ppo.rollout_buffer, [rollout])
    ppo._current_progress_remaining = progress_remaining
    optimizer = ppo.policy.optimizer
    ppo.policy.optimizer = AveragedOptimizer(optimizer, ray, averager, round_key)
    try:
        ppo.train()
    finally:
        ppo.policy.optimizer = optimizer
    logs = {key: float(value) for key, value in ppo.logger.name_to_value.items()}
    ppo.logger.dump()
    return WorkerUpdate({name: tensor.detach().clone() for name, tensor in ppo.policy.state_dict().items()},
                        optimizer.state_dict(), rollout, logs)


def averaged_iteration(pool: WorkerPool, state: dict[str, Any], n_steps: int, settings: dict[str, Any],
                       progress_remaining: float) -> list[WorkerUpdate]:
    """One iteration on every worker; if one dies, it is replaced (its steps counted as lost) and the
    iteration runs again from the same state, once the others have given up waiting for it."""
    averager_class = pool.ray.remote(num_cpus=0)(GradientAverager)
    while True:
        pool.attempts = getattr(pool, "attempts", 0) + 1
        averager = averager_class.remote(len(pool), BARRIER_TIMEOUT)
        state_ref = pool.ray.put(state)
        references = [pool.submit(index, "call", averaged_update, state_ref, n_steps, settings, progress_remaining,
                                  averager, pool.attempts) for index in range(len(pool))]
        updates, dead, errors = [], [], []
        for index, reference in enumerate(references):
            try:
                updates.append(pool.ray.get(reference))
            except pool.ray.exceptions.RayActorError:
                dead.append(index)
            except pool.ray.exceptions.RayTaskError as error:  # gave up waiting at a step: someone died
                errors.append(error)
        pool.ray.kill(averager)
        for index in dead:
            pool.replace(index, n_steps * pool.envs_per_worker)
        if not dead and errors:
            raise errors[0]
        if not dead:
            return updates
