"""Curiosity-driven exploration by self-supervised prediction (Pathak et al. 2017)."""

from __future__ import annotations

from typing import Any

import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from torch import nn

from rlhub.common.learned_reward import Transitions
from rlhub_curiosity.common.curiosity import CuriosityAlgorithm
from rlhub_curiosity.common.networks import encoder, mlp


class CuriosityNetworks(nn.Module):
    """A feature encoder phi, an inverse model (phi(s), phi(s')) -> a that trains it, and a forward
    model (phi(s), a) -> phi(s') whose error is the curiosity."""

    def __init__(self, observation_space: spaces.Space[Any], action_space: spaces.Space[Any], net_arch: list[int],
                 features_dim: int) -> None:
        super().__init__()
        self.discrete = isinstance(action_space, spaces.Discrete)
        self.action_dim = int(action_space.n) if self.discrete else int(action_space.shape[0])
        if not self.discrete:
            self.register_buffer("action_low", th.as_tensor(action_space.low, dtype=th.float32))
            self.register_buffer("action_high", th.as_tensor(action_space.high, dtype=th.float32))
        hidden = net_arch[-1] if net_arch else features_dim
        self.encoder = encoder(observation_space, net_arch, features_dim)
        self.inverse = mlp([2 * features_dim, hidden, self.action_dim])
        self.forward_model = mlp([features_dim + self.action_dim, hidden, features_dim])

    def encode_actions(self, actions: th.Tensor) -> th.Tensor:
        """One-hot Discrete actions; Box actions scaled from their bounds to [-1, 1]."""
        if self.discrete:
            return F.one_hot(actions.long(), self.action_dim).float()
        scaled = 2 * (actions - self.action_low) / (self.action_high - self.action_low) - 1
        return scaled.clamp(-1, 1)

    def predicted_features(self, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
        return self.forward_model(th.cat([features, self.encode_actions(actions)], dim=1))


class ICM(CuriosityAlgorithm):
    """
    Intrinsic curiosity module (Pathak et al. 2017): an encoder phi learns, through an inverse model
    that predicts a from (phi(s), phi(s')), features of what the agent's actions can change; a forward
    model predicts phi(s') from (phi(s), a), and the intrinsic reward is its error,
    ``eta / 2 * ||phi_hat(s') - phi(s')||^2``. The module minimises ``(1 - beta) * L_inverse + beta *
    L_forward``, and both losses train the encoder, as in the authors' code: the inverse loss alone
    lets the features grow without bound (their scale sharpens its guesses), and with them the forward
    error, so the reward never falls (on MiniGrid's DoorKey the forward loss rose from 0.6 to about 100
    with the encoder detached from it; 0.1 to 0.3 without). Discrete actions: cross-entropy inverse
    loss; Box actions: squared error in [-1, 1].

    Paper: https://arxiv.org/abs/1705.05363
    Code: https://github.com/pathak22/noreward-rl (the paper's), https://github.com/RLE-Foundation/rllte

    Parameters: :class:`~rlhub_curiosity.common.curiosity.CuriosityAlgorithm`, and
    :param beta: Weight of the forward loss against the inverse loss (0.2 in the paper)
    :param eta: Scale of the intrinsic reward (it matters only with ``normalize_intrinsic=False``)
    """

    curiosity: CuriosityNetworks

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: GymEnv | str | None,
        base: str = "ppo",
        base_kwargs: dict[str, Any] | None = None,
        learning_rate: float | Schedule = 1e-4,
        intrinsic_coef: float = 1.0,
        extrinsic_coef: float | None = None,
        intrinsic_gamma: float = 0.99,
        normalize_intrinsic: bool = True,
        n_epochs: int = 4,
        batch_size: int = 256,
        net_arch: list[int] | None = None,
        features_dim: int = 64,
        normalization_steps: int = 1024,
        beta: float = 0.2,
        eta: float = 1.0,
        policy_kwargs: dict[str, Any] | None = None,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if not 0 <= beta <= 1:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        self.beta, self.eta = beta, eta
        super().__init__(policy, env, base=base, base_kwargs=base_kwargs, learning_rate=learning_rate,
                         intrinsic_coef=intrinsic_coef, extrinsic_coef=extrinsic_coef, intrinsic_gamma=intrinsic_gamma,
                         normalize_intrinsic=normalize_intrinsic, n_epochs=n_epochs, batch_size=batch_size,
                         net_arch=net_arch, features_dim=features_dim, normalization_steps=normalization_steps,
                         policy_kwargs=policy_kwargs, tensorboard_log=tensorboard_log, verbose=verbose, seed=seed,
                         device=device, _init_setup_model=_init_setup_model)

    def _build_module(self) -> CuriosityNetworks:
        return CuriosityNetworks(self.observation_space, self.action_space, self.net_arch, self.features_dim)

    def intrinsic_rewards(self, batch: Transitions) -> th.Tensor:
        features = self.curiosity.encoder(self.normalize(batch.observations))
        next_features = self.curiosity.encoder(self.normalize(batch.next_observations))
        predicted = self.curiosity.predicted_features(features, batch.actions)
        return self.eta / 2 * (predicted - next_features).pow(2).sum(dim=1)

    def module_losses(self, batch: Transitions) -> dict[str, th.Tensor]:
        network = self.curiosity
        features = network.encoder(self.normalize(batch.observations))
        next_features = network.encoder(self.normalize(batch.next_observations))
        guessed = network.inverse(th.cat([features, next_features], dim=1))
        if network.discrete:
            inverse_loss = F.cross_entropy(guessed, batch.actions.long())
        else:
            inverse_loss = F.mse_loss(th.tanh(guessed), network.encode_actions(batch.actions))
        predicted = network.predicted_features(features, batch.actions)
        forward_loss = 0.5 * (predicted - next_features).pow(2).sum(dim=1).mean()
        loss = (1 - self.beta) * inverse_loss + self.beta * forward_loss
        return {"loss": loss, "inverse_loss": inverse_loss.detach(), "forward_loss": forward_loss.detach()}
