"""What the offline family shares: the dataset as tensors and the gradient-step loop (:mod:`.offline_algorithm`)."""

from rlhub_offline.common.offline_algorithm import (
    OfflineAlgorithm,
    TransitionBatch,
    TransitionTensors,
    load_offline_data,
    same_space,
)

__all__ = ["OfflineAlgorithm", "TransitionBatch", "TransitionTensors", "load_offline_data", "same_space"]
