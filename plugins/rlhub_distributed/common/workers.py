"""Rollout workers on Ray: each holds env copies and a policy copy, and steps them with the learner's weights.

A worker sends back a :class:`Rollout` (what SB3's ``RolloutBuffer`` holds for its envs) or, for A3C,
the gradients of the actor-critic loss on one. :class:`WorkerPool` starts the workers as Ray actors,
replaces one whose process died (a fresh actor, new monitor files) and counts the steps that were lost.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.utils import obs_as_tensor
from torch.nn import functional as F


@dataclass
class Rollout:
    """``n_steps`` steps of a worker's ``n_envs`` envs: arrays shaped ``[n_steps, n_envs, ...]``."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    episode_starts: np.ndarray
    values: np.ndarray
    log_probs: np.ndarray
    #: the value of the observation after the last step, and whether that step ended an episode
    last_values: np.ndarray
    last_dones: np.ndarray
    #: Monitor's ``{"r", "l", "t"}`` of the episodes that ended
    episode_infos: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        return int(self.rewards.size)


@dataclass
class Gradients:
    """A3C's message: the loss gradients of one worker's rollout, one array per policy parameter."""

    gradients: list[np.ndarray]
    steps: int
    episode_infos: list[dict[str, float]]
    seconds: float
    losses: dict[str, float]


def fill_buffer(buffer: RolloutBuffer, rollouts: Sequence[Rollout]) -> None:
    """Put the workers' rollouts side by side (worker ``k``'s envs after worker ``k-1``'s) in ``buffer``,
    then compute its returns and advantages (GAE with the buffer's gamma and lambda)."""
    buffer.reset()

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(rollout, name) for rollout in rollouts], axis=1)

    observations, actions, rewards, starts, values, log_probs = map(joined, (
        "observations", "actions", "rewards", "episode_starts", "values", "log_probs"))
    for step in range(len(rewards)):
        buffer.add(observations[step], actions[step], rewards[step], starts[step], th.as_tensor(values[step]),
                   th.as_tensor(log_probs[step]))
    buffer.compute_returns_and_advantage(
        th.as_tensor(np.concatenate([rollout.last_values for rollout in rollouts])),
        np.concatenate([rollout.last_dones for rollout in rollouts]))


class RolloutWorker:
    """The body of one Ray actor: ``n_envs`` envs from ``env_factory`` and a copy of the learner's policy."""

    def __init__(self, env_factory: Callable[..., Any], policy_class: type[ActorCriticPolicy],
                 policy_kwargs: dict[str, Any], n_envs: int, seed: int | None, start_index: int,
                 gamma: float) -> None:
        th.set_num_threads(1)  # a worker per CPU: more threads would fight over them
        self.env = env_factory(n_envs, seed=seed, start_index=start_index)
        self.policy = policy_class(self.env.observation_space, self.env.action_space, lambda _: 0.0, **policy_kwargs)
        self.policy_kwargs, self.gamma = policy_kwargs, gamma
        self.last_obs = self.env.reset()
        self.last_episode_starts = np.ones(n_envs, dtype=bool)

    def pid(self) -> int:
        return os.getpid()

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(self, *args)``, run here: how an algorithm gives the workers a step of its own."""
        return function(self, *args)

    def rollout(self, weights: dict[str, th.Tensor], n_steps: int) -> Rollout:
        """``n_steps`` steps with ``weights``, as SB3's ``collect_rollouts`` takes them (truncated episodes
        bootstrapped from their last observation's value)."""
        started = time.perf_counter()
        self.policy.load_state_dict(weights)
        self.policy.set_training_mode(False)
        columns: dict[str, list[np.ndarray]] = {name: [] for name in (
            "observations", "actions", "rewards", "episode_starts", "values", "log_probs")}
        episodes: list[dict[str, float]] = []
        dones = self.last_episode_starts
        for _ in range(n_steps):
            with th.no_grad():
                actions, values, log_probs = self.policy(obs_as_tensor(self.last_obs, self.policy.device))
            actions = actions.cpu().numpy()
            new_obs, rewards, dones, infos = self.env.step(self._env_actions(actions))
            rewards = rewards.astype(np.float32)
            for index, info in enumerate(infos):
                if "episode" in info:
                    episodes.append({key: float(info["episode"][key]) for key in ("r", "l", "t")})
                if dones[index] and info.get("TimeLimit.truncated") and info.get("terminal_observation") is not None:
                    terminal = self.policy.obs_to_tensor(info["terminal_observation"])[0]
                    with th.no_grad():
                        rewards[index] += self.gamma * float(self.policy.predict_values(terminal)[0, 0])
            for name, value in (("observations", self.last_obs), ("actions", actions), ("rewards", rewards),
                                ("episode_starts", self.last_episode_starts), ("values", values.cpu().numpy().ravel()),
                                ("log_probs", log_probs.cpu().numpy())):
                columns[name].append(np.array(value))
            self.last_obs, self.last_episode_starts = new_obs, dones
        with th.no_grad():
            last_values = self.policy.predict_values(obs_as_tensor(self.last_obs, self.policy.device))
        return Rollout(**{name: np.stack(values) for name, values in columns.items()},
                       last_values=last_values.cpu().numpy().ravel(), last_dones=np.array(dones),
                       episode_infos=episodes, seconds=time.perf_counter() - started)

    def gradients(self, weights: dict[str, th.Tensor], n_steps: int, gae_lambda: float, ent_coef: float,
                  vf_coef: float, max_grad_norm: float) -> Gradients:
        """A3C's worker step: a rollout, then the gradients of A2C's loss on it with the same weights."""
        started = time.perf_counter()
        rollout = self.rollout(weights, n_steps)
        buffer = RolloutBuffer(n_steps, self.env.observation_space, self.env.action_space, device="cpu",
                               gamma=self.gamma, gae_lambda=gae_lambda, n_envs=self.env.num_envs)
        fill_buffer(buffer, [rollout])
        batch = next(buffer.get())
        actions = batch.actions.long().flatten() if isinstance(self.env.action_space, spaces.Discrete) else batch.actions
        self.policy.set_training_mode(True)
        values, log_probs, entropy = self.policy.evaluate_actions(batch.observations, actions)
        policy_loss = -(batch.advantages * log_probs).mean()
        value_loss = F.mse_loss(batch.returns, values.flatten())
        entropy_loss = -th.mean(entropy) if entropy is not None else -th.mean(-log_probs)
        loss = policy_loss + ent_coef * entropy_loss + vf_coef * value_loss
        self.policy.zero_grad()
        loss.backward()
        th.nn.utils.clip_grad_norm_(self.policy.parameters(), max_grad_norm)
        gradients = [np.zeros(tuple(p.shape), np.float32) if p.grad is None else p.grad.numpy().copy()
                     for p in self.policy.parameters()]
        losses = {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
                  "entropy_loss": entropy_loss.item()}
        return Gradients(gradients, rollout.steps, rollout.episode_infos, time.perf_counter() - started, losses)

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        space = self.env.action_space
        if not isinstance(space, spaces.Box):
            return actions
        if self.policy.squash_output:
            return self.policy.unscale_action(actions)
        return np.clip(actions, space.low, space.high)


class WorkerPool:
    """``n_workers`` :class:`RolloutWorker` actors on Ray, each with ``envs_per_worker`` envs.

    Worker ``k``'s envs have ranks ``first_rank + k * envs_per_worker`` and on (their monitor files
    and seed offsets); a replacement takes the next unused ranks, so no monitor file is overwritten.
    """

    def __init__(self, ray: Any, *, n_workers: int, envs_per_worker: int, env_factory: Callable[..., Any],
                 policy_class: type[ActorCriticPolicy], policy_kwargs: dict[str, Any], seed: int | None,
                 gamma: float, first_rank: int) -> None:
        self.ray = ray
        self.envs_per_worker = envs_per_worker
        self._actor_class = ray.remote(num_cpus=1)(RolloutWorker)
        self._arguments = dict(env_factory=env_factory, policy_class=policy_class, policy_kwargs=policy_kwargs,
                               n_envs=envs_per_worker, gamma=gamma)
        self._seed, self._next_rank = seed, first_rank
        self.restarts = 0
        self.lost_steps = 0
        self.last_overhead = 0.0
        self.workers = [self._start() for _ in range(n_workers)]
        self._wait_until_ready(self.workers)

    def _start(self) -> Any:
        rank, self._next_rank = self._next_rank, self._next_rank + self.envs_per_worker
        seed = None if self._seed is None else self._seed + rank
        return self._actor_class.remote(seed=seed, start_index=rank, **self._arguments)

    def _wait_until_ready(self, workers: list[Any]) -> None:
        """Wait for ``workers`` to build their envs and policies: an error there is raised, not retried
        (a replacement would fail the same way)."""
        try:
            self.ray.get([worker.pid.remote() for worker in workers])
        except self.ray.exceptions.RayActorError as error:
            self.close()
            raise RuntimeError(f"a rollout worker could not start: {error}") from None

    def __len__(self) -> int:
        return len(self.workers)

    def pids(self) -> list[int]:
        return self.ray.get([worker.pid.remote() for worker in self.workers])

    def submit(self, index: int, method: str, *args: Any) -> Any:
        """Call ``method`` on worker ``index``: the reference of its result."""
        return getattr(self.workers[index], method).remote(*args)

    def result(self, index: int, reference: Any, lost_steps: int) -> Any:
        """The result behind ``reference``, or None if worker ``index`` died meanwhile: it is replaced,
        and the ``lost_steps`` it was taking are counted. A worker's own error (its env's) is raised."""
        try:
            return self.ray.get(reference)
        except self.ray.exceptions.RayActorError:
            self.replace(index, lost_steps)
            return None

    def replace(self, index: int, lost_steps: int) -> None:
        try:
            self.ray.kill(self.workers[index])
        except Exception:  # noqa: BLE001 - already gone, which is why it is being replaced
            pass
        self.workers[index] = self._start()
        self._wait_until_ready([self.workers[index]])
        self.restarts += 1
        self.lost_steps += lost_steps

    def rollouts(self, weights: dict[str, th.Tensor], n_steps: int) -> list[Rollout]:
        """One rollout from every worker with ``weights`` (synchronous); a dead worker's is taken again
        by its replacement."""
        started = time.perf_counter()
        weights_ref = self.ray.put(weights)
        references = [self.submit(index, "rollout", weights_ref, n_steps) for index in range(len(self))]
        rollouts = []
        for index, reference in enumerate(references):
            while (rollout := self.result(index, reference, n_steps * self.envs_per_worker)) is None:
                reference = self.submit(index, "rollout", weights_ref, n_steps)
            rollouts.append(rollout)
        # What distribution costs: the wait beyond the slowest worker's own stepping (sending the
        # weights, returning the arrays, Ray's scheduling).
        self.last_overhead = time.perf_counter() - started - max(rollout.seconds for rollout in rollouts)
        return rollouts

    def close(self) -> None:
        for worker in self.workers:
            try:
                self.ray.kill(worker)
            except Exception:  # noqa: BLE001 - the session may be gone already
                pass
