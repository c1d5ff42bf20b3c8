"""The rolling context a Decision Transformer acts on: the last K (return-to-go, state, action) steps
of each environment's current episode.

It is the ``state`` that ``DecisionTransformerPolicy.predict`` returns and takes back, as SB3's
recurrent policies pass their LSTM states: a caller that plays several episodes passes it back with
``episode_start``, and the rows whose episode starts begin again from ``target_return``.
"""

from __future__ import annotations

import numpy as np
import torch as th


class RollingContext:
    """The last ``context_length`` steps of ``n_envs`` episodes, aligned to the left: row ``i``
    holds its ``lengths[i]`` steps in positions ``0 .. lengths[i] - 1`` (the rest is padding, which a
    causal transformer never attends to from a real token, as it comes after it).

    The return-to-go of a new step is the previous one less the reward the previous action earned.
    ``predict`` never sees rewards, so a caller that has them reports them with :meth:`record_rewards`
    after each ``env.step`` (rlhub's evaluation does); for a step whose reward was not reported the
    return-to-go falls by ``reward_estimate`` (the dataset's mean reward per step: exact for CartPole,
    an approximation elsewhere).

    :param n_envs: environments (rows)
    :param context_length: K, the steps kept per row
    :param observation_dim: size of a flattened observation
    :param action_shape: ``()`` for Discrete actions (stored as int64), ``(action_dim,)`` for Box
        actions (stored in [-1, 1], as the network consumes them)
    :param target_return: the return-to-go a new episode starts from (the environment's scale)
    :param reward_estimate: what the return-to-go falls by when a step's reward was not reported
    :param device: where the tensors live (the policy's device)
    """

    def __init__(self, n_envs: int, context_length: int, observation_dim: int, action_shape: tuple[int, ...],
                 target_return: float, reward_estimate: float, device: th.device | str = "cpu") -> None:
        self.n_envs = n_envs
        self.context_length = context_length
        self.target_return = float(target_return)
        self.reward_estimate = float(reward_estimate)
        self.device = th.device(device)
        discrete = len(action_shape) == 0
        self.observations = th.zeros((n_envs, context_length, observation_dim), device=self.device)
        self.actions = th.zeros((n_envs, context_length, *action_shape), device=self.device,
                                dtype=th.long if discrete else th.float32)
        self.returns_to_go = th.zeros((n_envs, context_length), device=self.device)
        self.timesteps = th.zeros((n_envs, context_length), dtype=th.long, device=self.device)
        #: steps held per row (0 .. K)
        self.lengths = th.zeros(n_envs, dtype=th.long, device=self.device)
        #: whether a row has played a step of its current episode (False: its next step is the first)
        self.started = np.zeros(n_envs, dtype=bool)
        #: the reward each row's last action earned, NaN while not reported
        self.pending_rewards = np.full(n_envs, np.nan)

    def record_rewards(self, rewards: np.ndarray) -> None:
        """Report the rewards (the environment's own scale, shape ``(n_envs,)``) the last actions earned."""
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        if rewards.shape != (self.n_envs,):
            raise ValueError(f"expected {self.n_envs} rewards (one per environment), got shape {rewards.shape}")
        self.pending_rewards = rewards.copy()

    def begin_step(self, observations: th.Tensor, episode_start: np.ndarray) -> th.Tensor:
        """Append a step holding ``observations`` (n_envs, observation_dim) to every row, resetting the rows
        where ``episode_start`` is True first; returns the positions (n_envs,) of the new steps, whose
        actions the caller predicts and then stores with :meth:`end_step`."""
        episode_start = np.asarray(episode_start, dtype=bool).reshape(-1) | ~self.started
        rewards = np.where(np.isnan(self.pending_rewards), self.reward_estimate, self.pending_rewards)
        previous = self.returns_to_go[th.arange(self.n_envs, device=self.device), (self.lengths - 1).clamp(min=0)]
        next_timestep = self.timesteps[th.arange(self.n_envs, device=self.device), (self.lengths - 1).clamp(min=0)] + 1
        starts = th.as_tensor(episode_start, device=self.device)
        returns_to_go = th.where(starts, th.full_like(previous, self.target_return),
                                 previous - th.as_tensor(rewards, dtype=th.float32, device=self.device))
        timesteps = th.where(starts, th.zeros_like(next_timestep), next_timestep)
        self.lengths[starts] = 0
        full = self.lengths == self.context_length
        if bool(full.any()):  # drop the oldest step of full rows
            for tensor in (self.observations, self.actions, self.returns_to_go, self.timesteps):
                tensor[full] = tensor[full].roll(-1, dims=1)
            self.lengths[full] -= 1
        rows = th.arange(self.n_envs, device=self.device)
        positions = self.lengths.clone()
        self.observations[rows, positions] = observations.reshape(self.n_envs, -1).float()
        self.actions[rows, positions] = 0  # unknown yet; the causal mask hides it from its own step's prediction
        self.returns_to_go[rows, positions] = returns_to_go
        self.timesteps[rows, positions] = timesteps
        self.lengths += 1
        self.started[:] = True
        self.pending_rewards = np.full(self.n_envs, np.nan)
        return positions

    def end_step(self, positions: th.Tensor, actions: th.Tensor) -> None:
        """Store the actions chosen at ``positions`` (from :meth:`begin_step`)."""
        self.actions[th.arange(self.n_envs, device=self.device), positions] = actions.to(self.actions.dtype)

    def current_returns_to_go(self) -> np.ndarray:
        """The return-to-go each row's latest step was conditioned on (the environment's scale)."""
        last = (self.lengths - 1).clamp(min=0)
        return self.returns_to_go[th.arange(self.n_envs, device=self.device), last].cpu().numpy()

    def __repr__(self) -> str:
        return (f"RollingContext(n_envs={self.n_envs}, context_length={self.context_length}, "
                f"lengths={self.lengths.tolist()})")
