"""REINFORCE (Williams 1992): Monte-Carlo policy gradient on complete episodes."""

from rlhub_policy_gradient.reinforce.buffers import EpisodeBatch, EpisodeBuffer, reward_to_go
from rlhub_policy_gradient.reinforce.policies import CnnPolicy, MlpPolicy
from rlhub_policy_gradient.reinforce.reinforce import REINFORCE

__all__ = ["REINFORCE", "CnnPolicy", "EpisodeBatch", "EpisodeBuffer", "MlpPolicy", "reward_to_go"]
