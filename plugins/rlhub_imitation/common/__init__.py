"""What GAIL and AIRL share: the adversarial loop (:mod:`.adversarial`). Reward networks, their inputs
and the generator's reward environment are rlhub's own (:mod:`rlhub.common.learned_reward`), so a
learned reward trains any algorithm."""

from rlhub_imitation.common.adversarial import AdversarialImitation

__all__ = ["AdversarialImitation"]
