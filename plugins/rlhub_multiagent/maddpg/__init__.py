from rlhub_multiagent.maddpg.maddpg import MADDPG

__all__ = ["MADDPG"]
