"""The DQN family's one implementation (:class:`RainbowDQN`), its policies and C51's projection."""

from rlhub_dqn_family.rainbow.distributional import project_distribution
from rlhub_dqn_family.rainbow.policies import CnnPolicy, MlpPolicy, NoisyLinear, RainbowPolicy, RainbowQNetwork
from rlhub_dqn_family.rainbow.rainbow import RainbowDQN

__all__ = ["CnnPolicy", "MlpPolicy", "NoisyLinear", "RainbowDQN", "RainbowPolicy", "RainbowQNetwork",
           "project_distribution"]
