"""PPO with the adaptive KL penalty of Schulman et al. (2017), section 4."""

from rlhub_trust_region.ppo_kl.ppo_kl import PPOKL

__all__ = ["PPOKL"]
