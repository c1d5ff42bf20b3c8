"""ACER (Wang et al. 2016): actor-critic with experience replay, Retrace and an efficient trust region."""

from rlhub_policy_gradient.acer.acer import ACER
from rlhub_policy_gradient.acer.buffers import SegmentReplayBuffer, Segments
from rlhub_policy_gradient.acer.losses import (
    retrace_targets,
    stochastic_dueling_q,
    truncated_importance_weights,
    trust_region_step,
    value_targets,
)
from rlhub_policy_gradient.acer.policies import ACERCnnPolicy, ACERPolicy, CnnPolicy, MlpPolicy

__all__ = [
    "ACER", "ACERCnnPolicy", "ACERPolicy", "CnnPolicy", "MlpPolicy", "SegmentReplayBuffer", "Segments",
    "retrace_targets", "stochastic_dueling_q", "truncated_importance_weights", "trust_region_step", "value_targets",
]
