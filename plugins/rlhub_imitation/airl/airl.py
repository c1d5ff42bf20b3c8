"""Adversarial inverse reinforcement learning (Fu et al. 2018)."""

from __future__ import annotations

from typing import ClassVar

import torch as th
from torch import nn

from rlhub.common.learned_reward import RewardModel, Transitions, mlp
from rlhub_imitation.common.adversarial import AdversarialImitation


class ShapedReward(nn.Module):
    """AIRL's ``f(s, a, s') = g(s, a) + gamma * h(s') - h(s)`` (no ``h(s')`` after a termination): the
    reward ``g`` (a :class:`RewardModel`, exported alone) and the potential ``h`` that shapes it."""

    def __init__(self, reward: RewardModel, net_arch: list[int]) -> None:
        super().__init__()
        self.reward = reward
        self.potential = mlp(reward.encoder.observation_size, net_arch)

    def forward(self, batch: Transitions, gamma: float) -> th.Tensor:
        encoder = self.reward.encoder
        potential = self.potential(encoder.observations(batch.observations)).squeeze(1)
        next_potential = self.potential(encoder.observations(batch.next_observations)).squeeze(1)
        return self.reward(batch) + gamma * (1.0 - batch.terminations) * next_potential - potential


class AIRL(AdversarialImitation):
    """
    Adversarial inverse reinforcement learning (Fu et al. 2018): the discriminator is
    ``D = exp(f) / (exp(f) + pi(a|s))`` with ``f = g(s, a) + gamma h(s') - h(s)``, so its logit is
    ``f - log pi(a|s)`` and the generator's reward ``log D - log(1 - D)`` is that logit (the paper's;
    ``reward`` may choose GAIL's, which also pays for surviving, for tasks that end on failure). At the optimum
    ``g`` recovers the expert's reward (up to shaping; with ``state_only`` a reward of the state alone,
    the paper's disentangled one), which :meth:`learned_reward_model` hands out: ``rlhub train`` saves
    it as ``reward_model.pt`` in the run folder, and ``-params reward_model:PATH`` trains any algorithm on it.

    Paper: https://arxiv.org/abs/1710.11248
    Code: https://github.com/HumanCompatibleAI/imitation (algorithms/adversarial/airl.py)

    Parameters: :class:`~rlhub_imitation.common.adversarial.AdversarialImitation` (``state_only``: g(s);
    the shaping uses the generator's ``gamma``).
    """

    discriminator: ShapedReward
    default_reward: ClassVar[str] = "log(D)-log(1-D)"  # the paper's: the logit
    default_normalize_reward: ClassVar[bool] = False

    def _build_discriminator(self) -> ShapedReward:
        if not hasattr(self.generator.policy, "get_distribution"):
            raise ValueError(f"AIRL needs the generator's log pi(a|s): {self.generator_id}'s policy "
                             f"{type(self.generator.policy).__name__} has no get_distribution")
        # exported with the generator's reward form: -log(1-D) keeps paying for surviving in the task it learned
        reward = RewardModel(self.observation_space, self.action_space, "state" if self.state_only else "state_action",
                             self.disc_net_arch, *self._observation_statistics(), output=self.reward)
        return ShapedReward(reward, self.disc_net_arch)

    def discriminator_logits(self, batch: Transitions) -> th.Tensor:
        with th.no_grad():
            log_pi = self.generator.policy.get_distribution(batch.observations).log_prob(batch.actions)
        return self.discriminator(batch, self.generator.gamma) - log_pi

    def learned_reward_model(self) -> RewardModel:
        """``g``: the reward learned, without the shaping, to train another agent on."""
        return self.discriminator.reward
