"""Decision Transformer (Chen et al. 2021): offline RL as return-conditioned sequence modelling."""

from rlhub_offline.decision_transformer.context import RollingContext
from rlhub_offline.decision_transformer.decision_transformer import (
    DecisionTransformer,
    EpisodeWindows,
    WindowBatch,
    decision_transformer_loss,
    returns_to_go,
)
from rlhub_offline.decision_transformer.policies import DecisionTransformerPolicy

MlpPolicy = DecisionTransformerPolicy

__all__ = [
    "DecisionTransformer", "DecisionTransformerPolicy", "EpisodeWindows", "MlpPolicy", "RollingContext", "WindowBatch",
    "decision_transformer_loss", "returns_to_go",
]
