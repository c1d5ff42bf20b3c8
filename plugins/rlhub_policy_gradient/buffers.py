"""Storage for the policy-gradient plugin: whole episodes (REINFORCE) and trajectory segments (ACER)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def reward_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Discounted return from every step to the end of the episode: ``G_t = r_t + gamma * G_{t+1}``."""
    returns = np.zeros(len(rewards), dtype=np.float32)
    running = 0.0
    for step in reversed(range(len(rewards))):
        running = float(rewards[step]) + gamma * running
        returns[step] = running
    return returns


@dataclass
class EpisodeBatch:
    """The steps of complete episodes, flattened, with their reward-to-go."""

    observations: np.ndarray
    actions: np.ndarray
    returns: np.ndarray
    n_episodes: int


class EpisodeBuffer:
    """Complete episodes of every environment of a VecEnv, for Monte-Carlo policy gradients.

    An episode that was already running when a batch starts was partly played by an older
    policy: it is played out but not stored, so that every stored episode is on-policy.

    :param n_envs: number of environments in the VecEnv
    :param gamma: discount factor of the returns
    """

    def __init__(self, n_envs: int, gamma: float) -> None:
        self.n_envs = n_envs
        self.gamma = gamma
        self._running: list[list[tuple[np.ndarray, np.ndarray, float]]] = [[] for _ in range(n_envs)]
        self._stale = np.zeros(n_envs, dtype=bool)
        self._episodes: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.discarded_steps = 0

    @property
    def n_complete(self) -> int:
        return len(self._episodes)

    def reset(self) -> None:
        """Start a new batch: forget finished episodes, mark running ones as stale."""
        self._episodes.clear()
        for env_index, steps in enumerate(self._running):
            if steps:
                self._stale[env_index] = True
                steps.clear()
        self.discarded_steps = 0

    def add(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, dones: np.ndarray) -> None:
        """Record one step of every environment (``observations`` are those the actions were chosen on)."""
        for env_index in range(self.n_envs):
            if self._stale[env_index]:
                self.discarded_steps += 1
            else:
                self._running[env_index].append(
                    (np.array(observations[env_index]), np.array(actions[env_index]), float(rewards[env_index]))
                )
            if dones[env_index]:
                if not self._stale[env_index]:
                    self._finish(env_index)
                self._stale[env_index] = False

    def _finish(self, env_index: int) -> None:
        steps = self._running[env_index]
        observations = np.stack([step[0] for step in steps])
        actions = np.stack([step[1] for step in steps])
        rewards = np.array([step[2] for step in steps], dtype=np.float32)
        self._episodes.append((observations, actions, reward_to_go(rewards, self.gamma)))
        steps.clear()

    def get(self) -> EpisodeBatch:
        if not self._episodes:
            raise RuntimeError("no complete episode collected yet")
        return EpisodeBatch(
            observations=np.concatenate([episode[0] for episode in self._episodes]),
            actions=np.concatenate([episode[1] for episode in self._episodes]),
            returns=np.concatenate([episode[2] for episode in self._episodes]),
            n_episodes=len(self._episodes),
        )


@dataclass
class Segments:
    """A batch of trajectory segments of ``n_steps`` transitions each (leading axes: segment, step).

    ``observations`` has ``n_steps + 1`` entries per segment: the last one bootstraps the return.
    ``behaviour`` holds what the behaviour policy ``mu`` knew about each step: its probability
    vector (discrete actions) or its Gaussian's mean and log standard deviation, concatenated
    (continuous actions), from which its density at any action is recomputed.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    behaviour: np.ndarray

    @property
    def n_transitions(self) -> int:
        return int(self.rewards.size)


class SegmentReplayBuffer:
    """A FIFO store of ACER's rollouts: one segment of ``n_steps`` per environment per rollout.

    :param capacity: number of transitions to keep (all environments together)
    :param n_steps: length of a segment
    :param n_envs: segments per rollout
    :param observation_shape: shape of one observation
    :param observation_dtype: dtype of the observations
    :param action_shape: shape of one action
    :param action_dtype: dtype of the actions
    :param behaviour_dim: length of the behaviour policy's description of one step
    """

    def __init__(self, capacity: int, n_steps: int, n_envs: int, observation_shape: tuple[int, ...],
                 observation_dtype: np.dtype, action_shape: tuple[int, ...], action_dtype: np.dtype,
                 behaviour_dim: int) -> None:
        self.n_rollouts = max(capacity // (n_steps * n_envs), 1)
        self.n_steps = n_steps
        self.n_envs = n_envs
        shape = (self.n_rollouts, n_envs)
        self.observations = np.zeros((*shape, n_steps + 1, *observation_shape), dtype=observation_dtype)
        self.actions = np.zeros((*shape, n_steps, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros((*shape, n_steps), dtype=np.float32)
        self.dones = np.zeros((*shape, n_steps), dtype=np.float32)
        self.behaviour = np.zeros((*shape, n_steps, behaviour_dim), dtype=np.float32)
        self.position = 0
        self.full = False

    @property
    def n_transitions(self) -> int:
        return (self.n_rollouts if self.full else self.position) * self.n_envs * self.n_steps

    def add(self, rollout: Segments) -> None:
        """Store a rollout (one segment per environment), overwriting the oldest when full."""
        for name in ("observations", "actions", "rewards", "dones", "behaviour"):
            getattr(self, name)[self.position] = getattr(rollout, name)
        self.position = (self.position + 1) % self.n_rollouts
        self.full = self.full or self.position == 0

    def sample(self, n_segments: int, rng: np.random.Generator) -> Segments:
        """``n_segments`` segments drawn uniformly (with replacement) from all stored ones."""
        stored = self.n_rollouts if self.full else self.position
        if stored == 0:
            raise RuntimeError("the replay buffer is empty")
        rollouts = rng.integers(0, stored, size=n_segments)
        envs = rng.integers(0, self.n_envs, size=n_segments)
        return Segments(
            observations=self.observations[rollouts, envs],
            actions=self.actions[rollouts, envs],
            rewards=self.rewards[rollouts, envs],
            dones=self.dones[rollouts, envs],
            behaviour=self.behaviour[rollouts, envs],
        )
