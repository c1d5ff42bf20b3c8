"""Generative adversarial imitation learning (Ho & Ermon 2016)."""

from __future__ import annotations

import torch as th

from rlhub.common.learned_reward import RewardModel, Transitions
from rlhub_imitation.common.adversarial import AdversarialImitation


class GAIL(AdversarialImitation):
    """
    Generative adversarial imitation learning (Ho & Ermon 2016): the discriminator D(s, a) learns by
    binary cross-entropy to tell demonstrations (label 1) from the generator's transitions; the
    generator, any on-policy algorithm, maximises a reward that grows with D. The environment's own
    reward is only logged (``rollout/ep_rew_mean``, ``imitation/true_ep_return``).

    Paper: https://arxiv.org/abs/1606.03476
    Code: https://github.com/HumanCompatibleAI/imitation (algorithms/adversarial/gail.py)

    Parameters: :class:`~rlhub_imitation.common.adversarial.AdversarialImitation` (``state_only``:
    D(s, s'), imitation from observations alone).
    """

    discriminator: RewardModel  # D(s, a) (or D(s, s')) as a logit

    def _build_discriminator(self) -> RewardModel:
        return RewardModel(self.observation_space, self.action_space,
                           "state_next_state" if self.state_only else "state_action", self.disc_net_arch,
                           *self._observation_statistics(), output=self.reward)

    def discriminator_logits(self, batch: Transitions) -> th.Tensor:
        return self.discriminator(batch)

