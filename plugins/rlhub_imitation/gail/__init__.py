from rlhub_imitation.gail.gail import GAIL

__all__ = ["GAIL"]
