"""Exploration by random network distillation (Burda et al. 2018)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from torch import nn

from rlhub.common.learned_reward import Transitions
from rlhub_curiosity.common.curiosity import CuriosityAlgorithm
from rlhub_curiosity.common.networks import encoder


class DistillationNetworks(nn.Module):
    """A fixed, randomly initialised target network and a predictor trained to match it; the predictor
    is one layer deeper, as in the paper, so that it can fit the target on states it has seen."""

    def __init__(self, observation_space: spaces.Space[Any], net_arch: list[int], features_dim: int) -> None:
        super().__init__()
        self.target = encoder(observation_space, net_arch, features_dim)
        self.target.requires_grad_(False)
        self.predictor = nn.Sequential(encoder(observation_space, net_arch, features_dim), nn.ReLU(),
                                       nn.Linear(features_dim, features_dim))

    def errors(self, observations: th.Tensor) -> th.Tensor:
        """(B,) the squared distance of the predictor's embedding from the target's."""
        return (self.predictor(observations) - self.target(observations)).pow(2).sum(dim=1) / 2


class RND(CuriosityAlgorithm):
    """
    Random network distillation (Burda et al. 2018): the intrinsic reward of reaching s' is the error
    of a predictor trained to match a fixed random network's embedding of s', high on states seldom
    seen. Observations are standardised and clipped for both networks; the intrinsic reward is
    divided by the running spread of the (non-episodic) intrinsic return. With PPO as the base, the
    two rewards keep separate value heads and discounts (extrinsic gamma 0.999, episodic; intrinsic
    0.99, not), their advantages weighted 2 and 1, as in the paper
    (:class:`~rlhub_curiosity.common.two_stream_ppo.TwoStreamPPO`).

    Paper: https://arxiv.org/abs/1810.12894
    Code: https://github.com/openai/random-network-distillation (the paper's),
    https://github.com/vwxyzjn/cleanrl (ppo_rnd_envpool.py)

    Parameters: :class:`~rlhub_curiosity.common.curiosity.CuriosityAlgorithm`, and
    :param update_proportion: The fraction of each minibatch the predictor trains on (0.25 in the
        paper's and CleanRL's runs, which had 128 envs: it keeps the predictor from fitting too fast
        when there are many; with few, 1.0)
    """

    two_streams_with_ppo: ClassVar[bool] = True
    default_extrinsic_coef: ClassVar[float] = 2.0
    curiosity: DistillationNetworks

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
        update_proportion: float = 0.25,
        policy_kwargs: dict[str, Any] | None = None,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if not 0 < update_proportion <= 1:
            raise ValueError(f"update_proportion must be in (0, 1], got {update_proportion}")
        self.update_proportion = update_proportion
        super().__init__(policy, env, base=base, base_kwargs=base_kwargs, learning_rate=learning_rate,
                         intrinsic_coef=intrinsic_coef, extrinsic_coef=extrinsic_coef, intrinsic_gamma=intrinsic_gamma,
                         normalize_intrinsic=normalize_intrinsic, n_epochs=n_epochs, batch_size=batch_size,
                         net_arch=net_arch, features_dim=features_dim, normalization_steps=normalization_steps,
                         policy_kwargs=policy_kwargs, tensorboard_log=tensorboard_log, verbose=verbose, seed=seed,
                         device=device, _init_setup_model=_init_setup_model)

    def _build_module(self) -> DistillationNetworks:
        return DistillationNetworks(self.observation_space, self.net_arch, self.features_dim)

    def intrinsic_rewards(self, batch: Transitions) -> th.Tensor:
        return self.curiosity.errors(self.normalize(batch.next_observations))

    def module_losses(self, batch: Transitions) -> dict[str, th.Tensor]:
        errors = self.curiosity.errors(self.normalize(batch.next_observations)) / self.features_dim  # the mean squared error
        kept = (th.rand(len(errors), device=errors.device) < self.update_proportion).float()
        loss = (errors * kept).sum() / kept.sum().clamp(min=1.0)
        return {"loss": loss, "predictor_loss": loss.detach()}
