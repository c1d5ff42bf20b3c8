"""What GAIL and AIRL share: the generator's reward environment, the discriminator's inputs and the
adversarial loop (:mod:`.adversarial`)."""

from rlhub_imitation.common.adversarial import AdversarialImitation
from rlhub_imitation.common.discriminator import TransitionEncoder, TransitionTensors, mlp
from rlhub_imitation.common.reward_env import LearnedRewardVecEnv, Transitions

__all__ = ["AdversarialImitation", "LearnedRewardVecEnv", "TransitionEncoder", "TransitionTensors", "Transitions", "mlp"]
