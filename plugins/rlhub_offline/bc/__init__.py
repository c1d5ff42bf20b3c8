from rlhub_offline.bc.bc import BC, behaviour_cloning_loss, pretrain
from rlhub_offline.bc.policies import MlpPolicy

__all__ = ["BC", "MlpPolicy", "behaviour_cloning_loss", "pretrain"]
