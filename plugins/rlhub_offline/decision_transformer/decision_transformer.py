"""Decision Transformer (Chen et al. 2021): offline RL as sequence modelling, acting by return-to-go conditioning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import update_learning_rate

from rlhub_offline.common import OfflineAlgorithm
from rlhub_offline.decision_transformer.policies import DecisionTransformerPolicy

if TYPE_CHECKING:
    from rlhub.datasets import OfflineData


@dataclass(frozen=True)
class WindowBatch:
    """A minibatch of windows of ``K`` consecutive steps of one episode each, on the device, padded on the
    right (``valid`` is False there).

    :param observations: (B, K, observation_dim) float32, raw
    :param actions: (B, K) int64 (Discrete) or (B, K, action_dim) float32 in [-1, 1] (Box)
    :param returns_to_go: (B, K) float32, the undiscounted sum of the episode's rewards from each step on
    :param timesteps: (B, K) int64, each step's index in its episode
    :param valid: (B, K) bool
    """

    observations: th.Tensor
    actions: th.Tensor
    returns_to_go: th.Tensor
    timesteps: th.Tensor
    valid: th.Tensor


def returns_to_go(rewards: np.ndarray, episode_starts: np.ndarray) -> np.ndarray:
    """``R_t = sum_{t' >= t} r_t'`` within each episode (undiscounted, as the paper), for contiguous episodes
    starting at ``episode_starts``: (N,) float64."""
    rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
    reversed_cumsum = np.zeros(len(rewards) + 1)
    reversed_cumsum[:-1] = np.cumsum(rewards[::-1])[::-1]  # sum from t to the end of the data
    ends = np.append(np.asarray(episode_starts, dtype=np.int64)[1:], len(rewards))
    episode_lengths = ends - np.asarray(episode_starts, dtype=np.int64)
    return reversed_cumsum[:-1] - np.repeat(reversed_cumsum[ends], episode_lengths)


class EpisodeWindows:
    """The dataset as one packed matrix (observation, action, return-to-go, timestep per step) on the device,
    and the end of each step's episode, so a minibatch of windows is one gather.

    A window starts at a step drawn uniformly among all steps: the authors' draw (an episode with
    probability proportional to its length, then a start uniform in it) is the same distribution. It
    holds up to ``K`` steps, fewer near the end of its episode.

    :param data: the dataset (contiguous episodes from ``episode_starts``)
    :param actions: the actions as the network learns them (Box: rescaled to [-1, 1])
    :param context_length: K
    :param device: where the tensors live
    """

    def __init__(self, data: OfflineData, actions: np.ndarray, context_length: int, device: th.device | str) -> None:
        count = len(data.observations)
        starts = episode_starts_of(data)
        ends = np.append(starts[1:], count)
        lengths = ends - starts
        self.discrete_actions = isinstance(data.action_space, spaces.Discrete)
        observations = data.observations.reshape(count, -1).astype(np.float32)
        action_columns = np.asarray(actions).reshape(count, -1).astype(np.float32)
        timesteps = np.arange(count) - np.repeat(starts, lengths)
        columns = [observations, action_columns, returns_to_go(data.rewards, starts)[:, None].astype(np.float32),
                   timesteps[:, None].astype(np.float32)]
        self.packed = th.as_tensor(np.concatenate(columns, axis=1), device=device)
        self.episode_ends = th.as_tensor(np.repeat(ends, lengths), device=device)
        self.size = count
        self.context_length = context_length
        self.offsets = th.arange(context_length, device=device)
        observation_size, action_size = observations.shape[1], action_columns.shape[1]
        self._observations = slice(0, observation_size)
        self._actions = slice(observation_size, observation_size + action_size)
        self._return_to_go = observation_size + action_size
        self._timestep = observation_size + action_size + 1

    def sample(self, batch_size: int, generator: th.Generator) -> WindowBatch:
        """``batch_size`` windows, their first steps drawn uniformly with replacement."""
        first = th.randint(0, self.size, (batch_size,), generator=generator, device=self.packed.device)
        return self.windows(first)

    def windows(self, first: th.Tensor) -> WindowBatch:
        """The windows starting at steps ``first`` (B,)."""
        indices = first.unsqueeze(1) + self.offsets
        valid = indices < self.episode_ends[first].unsqueeze(1)
        rows = self.packed[indices.clamp(max=self.size - 1)] * valid.unsqueeze(-1)
        actions = rows[..., self._actions]
        return WindowBatch(
            rows[..., self._observations],
            actions.squeeze(-1).long() if self.discrete_actions else actions,
            rows[..., self._return_to_go],
            rows[..., self._timestep].long(),
            valid,
        )


def episode_starts_of(data: OfflineData) -> np.ndarray:
    """The dataset's episode starts, beginning at 0."""
    starts = np.asarray(data.episode_starts, dtype=np.int64).reshape(-1)
    if len(starts) == 0 or starts[0] != 0:
        starts = np.concatenate([[0], starts])
    return starts


def decision_transformer_loss(predictions: th.Tensor, actions: th.Tensor, valid: th.Tensor,
                              discrete: bool, action_loss: str = "mse") -> tuple[th.Tensor, dict[str, th.Tensor]]:
    """The paper's loss on the real (not padded) steps of a window batch: the cross-entropy of the dataset's
    actions under the predicted logits (Discrete), or the mean squared error between the predicted and
    the dataset's actions, both in [-1, 1] (Box); with ``action_loss="l1"``, the mean absolute error.

    Why L1: it fits the median action, and the median commutes with clipping, so on data played with
    Gaussian noise clipped to the bounds it fits the noise-free action even where that lies on a bound
    (the mean falls inside: 2 - 0.6 * 0.4 = 1.76 for Pendulum's full torque under noise 0.3).

    :param predictions: (B, K, n) logits or (B, K, action_dim) actions
    :param actions: (B, K) int64 or (B, K, action_dim)
    :param valid: (B, K) bool
    :param discrete: whether the predictions are logits
    :param action_loss: "mse" or "l1" (Box actions)
    :return: the loss and detached statistics (``action_error``: the error rate, or the loss)
    """
    weights = valid.float() / valid.sum().clamp(min=1)  # a mean over real steps, without a host sync
    if discrete:
        losses = F.cross_entropy(predictions.flatten(0, 1), actions.flatten(), reduction="none").view_as(weights)
        loss = (losses * weights).sum()
        error = ((predictions.argmax(dim=-1) != actions).float() * weights).sum()
    else:
        errors = predictions - actions
        errors = errors.square() if action_loss == "mse" else errors.abs()
        loss = (errors.mean(dim=-1) * weights).sum()
        error = loss
    return loss, {"action_error": error.detach()}


class DecisionTransformer(OfflineAlgorithm):
    """
    Decision Transformer (Chen et al. 2021): a causal transformer trained to predict the dataset's
    actions from windows of (return-to-go, state, action) steps; it acts by conditioning on the
    return it is asked to reach.

    Paper: https://arxiv.org/abs/2106.01345
    Code: https://github.com/kzl/decision-transformer (gym/), https://github.com/takuseno/d3rlpy

    Training (``learn`` counts gradient steps): each step draws ``batch_size`` windows of up to
    ``context_length`` consecutive steps of one episode (their first step uniform over the dataset,
    which weights episodes by length as the authors do), and minimises the cross-entropy (Discrete)
    or the MSE of the ``tanh`` outputs against the actions rescaled to [-1, 1] (Box) on the real steps;
    AdamW, a linear warm-up over ``warmup_steps``, gradients clipped to ``max_grad_norm``. Short windows
    are padded on the right rather than the left: the network has no position embedding but the
    episode's timestep, so under the causal mask this is the same computation as the authors' left
    padding with a key mask, and attention needs the causal mask alone.

    Acting: ``predict(obs, state, episode_start)`` keeps a rolling context (the last ``context_length``
    steps) per environment in the ``state`` it returns, to be passed back as SB3's recurrent policies'
    states are (rlhub's evaluation and SB3's ``evaluate_policy`` do); a row restarts from
    ``target_return`` where ``episode_start`` is True. Each new step's return-to-go is the previous one
    less the reward received: ``predict`` does not see rewards, so the context offers
    ``state.record_rewards(rewards)``, which ``rlhub.evaluation.evaluate`` (``enjoy``, ``push-to-hub``,
    the benchmark) calls after every step with the environment's own rewards; where nobody reports them
    (SB3's ``evaluate_policy``, so train's ``EvalCallback``; a hand-written loop) the return-to-go falls
    by the dataset's mean reward per step, exact for constant rewards (CartPole), an approximation
    otherwise.
    ``set_target_return`` changes the return asked of the episodes that start afterwards.
    The observation mean and standard deviation and that mean reward are buffers of the policy, saved
    with its weights: a loaded agent plays without its dataset.

    :param policy: The policy model to use (MlpPolicy: the transformer)
    :param env: The environment to evaluate on (if registered in Gym, can be str), or None
    :param dataset: The dataset, or its id or path for ``rlhub.datasets.load_dataset`` (not saved)
    :param learning_rate: The learning rate after warm-up, it can be a function of the current progress
        remaining (from 1 to 0)
    :param batch_size: Windows per gradient step
    :param context_length: K, the steps the transformer sees
    :param max_episode_length: Size of the timestep embedding (later timesteps share its last row)
    :param target_return: The return an episode is conditioned on at the start (environment's scale);
        None: the best episode return in the dataset
    :param return_scale: Returns-to-go are divided by it before the network sees them
    :param warmup_steps: Gradient steps over which the learning rate rises linearly to its value
    :param max_grad_norm: The maximum value for the gradient clipping
    :param action_loss: Box actions: "mse" (the paper's, the mean action) or "l1" (the median action)
    :param stats_window_size: Window size for the rollout logging (unused offline)
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation (embed_dim,
        n_layers, n_heads, dropout, activation, optimizer_class, optimizer_kwargs)
    :param verbose: the verbosity level: 0 no output, 1 info, 2 debug
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": DecisionTransformerPolicy}
    policy: DecisionTransformerPolicy

    def __init__(
        self,
        policy: str | type[DecisionTransformerPolicy],
        env: GymEnv | str | None,
        dataset: str | OfflineData | None = None,
        learning_rate: float | Schedule = 1e-4,
        batch_size: int = 64,
        context_length: int = 20,
        max_episode_length: int = 1000,
        target_return: float | None = None,
        return_scale: float = 1000.0,
        warmup_steps: int = 10_000,
        max_grad_norm: float = 0.25,
        action_loss: str = "mse",
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy, env, dataset, learning_rate=learning_rate, batch_size=batch_size, policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size, tensorboard_log=tensorboard_log, verbose=verbose, seed=seed,
            device=device, supported_action_spaces=(spaces.Discrete, spaces.Box),
        )
        for name, value in (("context_length", context_length), ("max_episode_length", max_episode_length)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if return_scale <= 0:
            raise ValueError(f"return_scale must be positive, got {return_scale}")
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be at least 1, got {warmup_steps}")
        if max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be positive, got {max_grad_norm}")
        if action_loss not in ("mse", "l1"):
            raise ValueError(f"action_loss must be 'mse' or 'l1', got {action_loss!r}")
        self.context_length = context_length
        self.max_episode_length = max_episode_length
        self.target_return = target_return
        self.return_scale = return_scale
        self.warmup_steps = warmup_steps
        self.max_grad_norm = max_grad_norm
        self.action_loss = action_loss
        #: whether the policy's normalisation statistics come from a dataset (they are kept once set)
        self.statistics_set = False
        self.windows: EpisodeWindows | None = None
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        if self.offline_data is not None and not self.statistics_set:
            self._set_target_return(self.offline_data)
        self.policy = self.policy_class(
            self.observation_space, self.action_space, self.lr_schedule, context_length=self.context_length,
            max_episode_length=self.max_episode_length, target_return=self._target_return_or_default(),
            return_scale=self.return_scale, **self.policy_kwargs,
        ).to(self.device)
        if self.offline_data is not None and not self.statistics_set:
            self._set_statistics(self.offline_data)

    def set_target_return(self, target_return: float) -> None:
        """Condition the episodes ``predict`` starts from now on on ``target_return`` (environment's scale)."""
        self.target_return = float(target_return)
        self.policy.target_return = self.target_return

    def _target_return_or_default(self) -> float:
        return float(self.target_return) if self.target_return is not None else self.return_scale

    def _set_target_return(self, data: OfflineData) -> None:
        if self.target_return is None:
            self.target_return = float(np.max(np.add.reduceat(np.asarray(data.rewards, np.float64),
                                                              episode_starts_of(data))))
            if hasattr(self, "policy"):
                self.policy.target_return = self.target_return

    def _set_statistics(self, data: OfflineData) -> None:
        """Normalise observations with the dataset's mean and standard deviation (as the authors), from now on."""
        observations = data.observations.reshape(len(data.observations), -1).astype(np.float64)
        self.policy.set_statistics(observations.mean(axis=0), observations.std(axis=0) + 1e-6,
                                   float(np.mean(data.rewards)))
        self.statistics_set = True

    def _learned_actions(self, data: OfflineData) -> np.ndarray:
        if isinstance(self.action_space, spaces.Box):
            return np.clip(self.policy.scale_action(np.asarray(data.actions, dtype=np.float32)), -1.0, 1.0)
        return data.actions

    def set_dataset(self, dataset: str | OfflineData) -> None:
        super().set_dataset(dataset)
        self.windows = None

    def _prepare_data(self) -> None:
        data = self._require_data()
        if not self.statistics_set:
            self._set_target_return(data)
            self._set_statistics(data)
        if self.windows is None:
            self.windows = EpisodeWindows(data, self._learned_actions(data), self.context_length, self.device)

    def _sample_batch(self) -> WindowBatch:
        assert self.windows is not None
        return self.windows.sample(self.batch_size, self.minibatch_generator)

    def _scheduled_optimizers(self) -> list[th.optim.Optimizer]:
        return [self.policy.optimizer]

    def _update_learning_rate(self, optimizers: list[th.optim.Optimizer] | th.optim.Optimizer) -> None:
        """The schedule's learning rate times the warm-up factor ``min((n + 1) / warmup_steps, 1)``."""
        learning_rate = self.lr_schedule(self._current_progress_remaining)
        learning_rate *= min((self._n_updates + 1) / self.warmup_steps, 1.0)
        self.logger.record("train/learning_rate", learning_rate)
        for optimizer in optimizers if isinstance(optimizers, list) else [optimizers]:
            update_learning_rate(optimizer, learning_rate)

    def train_step(self, batch: WindowBatch) -> dict[str, th.Tensor]:
        predictions = self.policy(batch.observations, batch.actions, batch.returns_to_go, batch.timesteps)
        loss, stats = decision_transformer_loss(predictions, batch.actions, batch.valid, self.policy.discrete_actions,
                                                self.action_loss)
        self.policy.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        stats["loss"] = loss.detach()
        return stats

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "windows"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []
