from rlhub_offline.cql.cql import CQL
from rlhub_offline.cql.losses import (
    best_sampled_actions,
    continuous_conservative_penalty,
    discrete_conservative_penalty,
    double_dqn_targets,
)
from rlhub_offline.cql.policies import CQLPolicy, MlpPolicy

__all__ = ["CQL", "CQLPolicy", "MlpPolicy", "best_sampled_actions", "continuous_conservative_penalty",
           "discrete_conservative_penalty", "double_dqn_targets"]
