"""Generative adversarial imitation learning (Ho & Ermon 2016)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch as th
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from rlhub.common.learned_reward import RewardModel, Transitions
from rlhub_imitation.common.adversarial import AdversarialImitation

if TYPE_CHECKING:
    from rlhub.datasets import OfflineData


class GAIL(AdversarialImitation):
    """
    Generative adversarial imitation learning (Ho & Ermon 2016): the discriminator D(s, a) learns by
    binary cross-entropy to tell demonstrations (label 1) from the generator's transitions; the
    generator, any on-policy algorithm, maximises a reward that grows with D. The environment's own
    reward is only logged (``rollout/ep_rew_mean``, ``imitation/true_ep_return``).

    Paper: https://arxiv.org/abs/1606.03476
    Code: https://github.com/HumanCompatibleAI/imitation (algorithms/adversarial/gail.py)

    :param state_only: Discriminate (s, s') instead of (s, a): imitation from observations alone
    (the other parameters: :class:`~rlhub_imitation.common.adversarial.AdversarialImitation`)
    """

    discriminator: RewardModel  # D(s, a) (or D(s, s')) as a logit

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
        self.state_only = state_only
        super().__init__(policy, env, dataset, generator=generator, generator_kwargs=generator_kwargs, reward=reward,
                         learning_rate=learning_rate, n_disc_updates=n_disc_updates, disc_batch_size=disc_batch_size,
                         disc_net_arch=disc_net_arch, gradient_penalty=gradient_penalty,
                         normalize_reward=normalize_reward, bc_epochs=bc_epochs, policy_kwargs=policy_kwargs,
                         tensorboard_log=tensorboard_log, verbose=verbose, seed=seed, device=device,
                         _init_setup_model=_init_setup_model)

    def _build_discriminator(self) -> RewardModel:
        return RewardModel(self.observation_space, self.action_space,
                           "state_next_state" if self.state_only else "state_action", self.disc_net_arch,
                           *self._observation_statistics(), output=self.reward)

    def discriminator_logits(self, batch: Transitions) -> th.Tensor:
        return self.discriminator(batch)

