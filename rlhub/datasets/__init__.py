"""Offline datasets: Minari datasets written by ``rlhub collect`` and read, once, into memory arrays.

Every offline (and imitation) algorithm gets its data from :func:`load_dataset` as an
:class:`OfflineData`; :func:`collect` and :func:`collect_with_agent` write the datasets, in
Minari's HDF5 format (:mod:`rlhub.datasets.hdf5`).
"""

from rlhub.datasets.collect import (
    AgentCollectResult,
    CollectResult,
    Policy,
    agent_policy,
    check_new_dataset_id,
    collect,
    collect_with_agent,
    perturbed,
    play,
    play_to_memory,
    random_policy,
)
from rlhub.datasets.data import (
    SUPPORTED_SPACES,
    TRANSITION_FIELDS,
    DatasetError,
    OfflineData,
    check_spaces,
    datasets_root,
    load_dataset,
    local_dataset_ids,
    offline_data,
)
from rlhub.datasets.hdf5 import DATA_FORMAT, read_episodes, write_episodes

__all__ = ["AgentCollectResult", "CollectResult", "DATA_FORMAT", "DatasetError", "OfflineData", "Policy",
           "SUPPORTED_SPACES", "TRANSITION_FIELDS", "agent_policy", "check_new_dataset_id", "check_spaces", "collect",
           "collect_with_agent", "datasets_root", "load_dataset", "local_dataset_ids", "offline_data", "perturbed", "play",
           "play_to_memory", "random_policy",
           "read_episodes", "write_episodes"]
