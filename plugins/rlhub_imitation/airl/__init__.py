from rlhub_imitation.airl.airl import AIRL, ShapedReward

__all__ = ["AIRL", "ShapedReward"]
