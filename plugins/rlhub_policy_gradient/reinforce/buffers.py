"""REINFORCE's storage: the complete episodes of a batch, and their discounted reward-to-go."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlhub_policy_gradient.common.rollout import Step


def reward_to_go(rewards: np.ndarray, gamma: float, episode_ends: np.ndarray | None = None) -> np.ndarray:
    """Discounted return from every step to the end of its episode: ``G_t = r_t + gamma * G_{t+1}``,
    restarting after every step where ``episode_ends`` is set (the last step always ends one).

    :param rewards: (steps,) the rewards of consecutive steps
    :param gamma: discount factor
    :param episode_ends: (steps,) True after the last step of each episode (None: one episode)
    :return: (steps,) float32
    """
    returns = np.zeros(len(rewards), dtype=np.float32)
    running = 0.0
    for step in reversed(range(len(rewards))):
        if episode_ends is not None and episode_ends[step]:
            running = 0.0
        running = float(rewards[step]) + gamma * running
        returns[step] = running
    return returns


@dataclass
class EpisodeBatch:
    """The steps of complete episodes, flattened, episode after episode.

    ``truncated`` marks an episode's last step where a time limit cut it, and ``final_observations``
    holds the observation it was cut at there (zeros elsewhere), for the baseline to bootstrap from.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    episode_ends: np.ndarray
    truncated: np.ndarray
    final_observations: np.ndarray
    n_episodes: int


@dataclass
class _Episode:
    observations: list[np.ndarray]
    actions: list[np.ndarray]
    rewards: list[float]


class EpisodeBuffer:
    """Complete episodes of every environment of a VecEnv, for Monte-Carlo policy gradients.

    An episode that was already running when a batch starts was partly played by an older
    policy: it is played out but not stored, so that every stored episode is on-policy.

    :param n_envs: number of environments in the VecEnv
    """

    def __init__(self, n_envs: int) -> None:
        self.n_envs = n_envs
        self._running = [_Episode([], [], []) for _ in range(n_envs)]
        self._stale = np.zeros(n_envs, dtype=bool)
        self._episodes: list[EpisodeBatch] = []
        self.discarded_steps = 0

    @property
    def n_complete(self) -> int:
        return len(self._episodes)

    def reset(self) -> None:
        """Start a new batch: forget finished episodes, mark running ones as stale."""
        self._episodes.clear()
        for env_index, episode in enumerate(self._running):
            if episode.rewards:
                self._stale[env_index] = True
                self._running[env_index] = _Episode([], [], [])
        self.discarded_steps = 0

    def add(self, step: Step) -> None:
        """Record one step of every environment."""
        for env_index in range(self.n_envs):
            episode = self._running[env_index]
            if self._stale[env_index]:
                self.discarded_steps += 1
            else:
                episode.observations.append(np.array(step.observations[env_index]))
                episode.actions.append(np.array(step.actions[env_index]))
                episode.rewards.append(float(step.rewards[env_index]))
            if step.dones[env_index]:
                if not self._stale[env_index]:
                    self._finish(env_index, bool(step.truncated[env_index]), step.final_observations[env_index])
                self._stale[env_index] = False

    def _finish(self, env_index: int, truncated: bool, final_observation: np.ndarray) -> None:
        episode = self._running[env_index]
        length = len(episode.rewards)
        observations = np.stack(episode.observations)
        last = np.arange(length) == length - 1
        final_observations = np.zeros_like(observations)
        if truncated:
            final_observations[-1] = final_observation
        self._episodes.append(EpisodeBatch(
            observations=observations,
            actions=np.stack(episode.actions),
            rewards=np.array(episode.rewards, dtype=np.float32),
            episode_ends=last,
            truncated=last & truncated,
            final_observations=final_observations,
            n_episodes=1,
        ))
        self._running[env_index] = _Episode([], [], [])

    def get(self) -> EpisodeBatch:
        """The complete episodes of the batch, concatenated."""
        if not self._episodes:
            raise RuntimeError("no complete episode collected yet")
        return EpisodeBatch(
            observations=np.concatenate([episode.observations for episode in self._episodes]),
            actions=np.concatenate([episode.actions for episode in self._episodes]),
            rewards=np.concatenate([episode.rewards for episode in self._episodes]),
            episode_ends=np.concatenate([episode.episode_ends for episode in self._episodes]),
            truncated=np.concatenate([episode.truncated for episode in self._episodes]),
            final_observations=np.concatenate([episode.final_observations for episode in self._episodes]),
            n_episodes=len(self._episodes),
        )
