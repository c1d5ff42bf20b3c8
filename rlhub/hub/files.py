"""What a Hub repo of an agent holds: the file names rlhub, the RL Zoo and huggingface_sb3 use."""

from __future__ import annotations

from rlhub.run_folder import env_name

MODEL_CARD_NAME = "README.md"
RESULTS_NAME = "results.json"
REPLAY_NAME = "replay.mp4"
ENV_KWARGS_NAME = "env_kwargs.yml"
ZOO_ARGS_NAME = "args.yml"
METRICS_NAME = "train_eval_metrics.zip"
#: Written into run folders made from a download: where it came from (provenance only; trust is
#: decided by the signature, see :mod:`rlhub.trust`).
HUB_SOURCE_NAME = "hub_source.json"
#: What a download fetches (the replay video and unpacked model folders are not needed to play).
DOWNLOAD_PATTERNS = ["*.zip", "*.yml", "*.yaml", "*.json", "*.pkl", MODEL_CARD_NAME]


def model_name(algo_id: str, env_id: str) -> str:
    """``{algo}-{env}``: the model file's stem, as the RL Zoo and huggingface_sb3 name it."""
    return f"{algo_id}-{env_name(env_id)}"
