"""What GAIL and AIRL share: the generator's reward environment (:mod:`.reward_env`) and the
adversarial loop (:mod:`.adversarial`). Reward networks and their inputs are rlhub's own
(:mod:`rlhub.common.learned_reward`), so a learned reward trains any algorithm."""

from rlhub_imitation.common.adversarial import AdversarialImitation
from rlhub_imitation.common.reward_env import LearnedRewardVecEnv

__all__ = ["AdversarialImitation", "LearnedRewardVecEnv"]
