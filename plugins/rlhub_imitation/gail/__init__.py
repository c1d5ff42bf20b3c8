from rlhub_imitation.gail.gail import GAIL, REWARDS, GAILDiscriminator

__all__ = ["GAIL", "GAILDiscriminator", "REWARDS"]
