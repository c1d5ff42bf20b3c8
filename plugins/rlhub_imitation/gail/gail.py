"""Generative adversarial imitation learning (Ho & Ermon 2016)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch as th
import torch.nn.functional as F
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from torch import nn

from rlhub_imitation.common.adversarial import AdversarialImitation
from rlhub_imitation.common.discriminator import TransitionEncoder, TransitionTensors, mlp

if TYPE_CHECKING:
    from rlhub.datasets import OfflineData

#: The generator's reward as a function of the discriminator's logit ``l = log D - log(1 - D)``.
REWARDS = {
    "-log(1-D)": lambda logits: F.softplus(logits),  # Ho & Ermon's choice as most code runs it: always > 0
    "log(D)": lambda logits: -F.softplus(-logits),  # always < 0: ends episodes early where it can
    "log(D)-log(1-D)": lambda logits: logits,  # AIRL's form, sign-neutral
}


class GAILDiscriminator(nn.Module):
    """D(s, a) (or D(s, s') with ``state_only``) as a logit: an MLP over the encoded transition."""

    def __init__(self, encoder: TransitionEncoder, net_arch: list[int], state_only: bool) -> None:
        super().__init__()
        self.encoder, self.state_only = encoder, state_only
        second = encoder.observation_size if state_only else encoder.action_size
        self.net = mlp(encoder.observation_size + second, net_arch)

    def forward(self, batch: TransitionTensors) -> th.Tensor:
        second = (self.encoder.observations(batch.next_observations) if self.state_only
                  else self.encoder.actions(batch.actions))
        return self.net(th.cat([self.encoder.observations(batch.observations), second], dim=1)).squeeze(1)


class GAIL(AdversarialImitation):
    """
    Generative adversarial imitation learning (Ho & Ermon 2016): the discriminator D(s, a) learns by
    binary cross-entropy to tell demonstrations (label 1) from the generator's transitions; the
    generator, any on-policy algorithm, maximises a reward that grows with D. The environment's own
    reward is only logged (``rollout/ep_rew_mean``, ``imitation/true_ep_return``).

    Paper: https://arxiv.org/abs/1606.03476
    Code: https://github.com/HumanCompatibleAI/imitation (algorithms/adversarial/gail.py)

    :param reward: The generator's reward from D: "-log(1-D)" (default), "log(D)" or "log(D)-log(1-D)"
    :param state_only: Discriminate (s, s') instead of (s, a): imitation from observations alone
    (the other parameters: :class:`~rlhub_imitation.common.adversarial.AdversarialImitation`)
    """

    discriminator: GAILDiscriminator

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: GymEnv | str | None,
        dataset: str | OfflineData | None = None,
        generator: str = "ppo",
        generator_kwargs: dict[str, Any] | None = None,
        learning_rate: float | Schedule = 3e-4,
        n_disc_updates: int = 4,
        disc_batch_size: int = 256,
        disc_net_arch: list[int] | None = None,
        gradient_penalty: float = 0.0,
        normalize_reward: bool = True,
        bc_epochs: int = 0,
        reward: str = "-log(1-D)",
        state_only: bool = False,
        policy_kwargs: dict[str, Any] | None = None,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(map(repr, REWARDS))}, got {reward!r}")
        self.reward = reward
        self.state_only = state_only
        super().__init__(policy, env, dataset, generator=generator, generator_kwargs=generator_kwargs,
                         learning_rate=learning_rate, n_disc_updates=n_disc_updates, disc_batch_size=disc_batch_size,
                         disc_net_arch=disc_net_arch, gradient_penalty=gradient_penalty,
                         normalize_reward=normalize_reward, bc_epochs=bc_epochs, policy_kwargs=policy_kwargs,
                         tensorboard_log=tensorboard_log, verbose=verbose, seed=seed, device=device,
                         _init_setup_model=_init_setup_model)

    def _build_discriminator(self) -> GAILDiscriminator:
        encoder = TransitionEncoder(self.observation_space, self.action_space, *self._observation_statistics())
        return GAILDiscriminator(encoder, self.disc_net_arch, self.state_only)

    def discriminator_logits(self, batch: TransitionTensors) -> th.Tensor:
        return self.discriminator(batch)

    def learned_reward(self, batch: TransitionTensors) -> th.Tensor:
        return REWARDS[self.reward](self.discriminator(batch))
