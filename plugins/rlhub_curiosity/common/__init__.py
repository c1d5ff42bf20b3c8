"""What RND and ICM share: the loop around the base algorithm (:mod:`.curiosity`), its environment
with the intrinsic reward (:mod:`.intrinsic_env`), the networks (:mod:`.networks`) and the PPO that
keeps the two reward streams apart (:mod:`.two_stream_ppo`)."""

from rlhub_curiosity.common.curiosity import CuriosityAlgorithm
from rlhub_curiosity.common.intrinsic_env import IntrinsicRewardVecEnv
from rlhub_curiosity.common.two_stream_ppo import TwoStreamPPO

__all__ = ["CuriosityAlgorithm", "IntrinsicRewardVecEnv", "TwoStreamPPO"]
