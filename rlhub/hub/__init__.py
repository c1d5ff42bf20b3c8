"""The Hugging Face Hub: package, push, pull and load agents, and their model cards.

A packaged agent is what the RL Zoo and huggingface_sb3 push, plus rlhub's manifest::

    {algo}-{env}.zip      the model (SB3 zip)            config.yml        the run's hyperparameters
    rlhub.json            the manifest                   env_kwargs.yml    gym.make keyword arguments
    vec_normalize.pkl     VecNormalize statistics        results.json      mean/std return, episodes, date
    replay.mp4            a recorded replay              README.md         model card (model-index metrics)
    args.yml, train_eval_metrics.zip                     what the RL Zoo's load_from_hub expects

Repos pushed by the RL Zoo or huggingface_sb3 load too: the algorithm comes from the model file's
name (``{algo}-{env}.zip``) or the card, the hyperparameters from ``config.yml``.

A downloaded agent is data: unless ``trust_remote_code`` is set, nothing from it is unpickled
(see :mod:`rlhub.safe_loading`), and nothing it says chooses a path outside the log folder.

Modules: :mod:`~rlhub.hub.files` (what a repo holds), :mod:`~rlhub.hub.packaging`,
:mod:`~rlhub.hub.model_card`, :mod:`~rlhub.hub.client` (endpoint, retries), :mod:`~rlhub.hub.push`,
:mod:`~rlhub.hub.repo_kinds` (which tool made a repo), :mod:`~rlhub.hub.pull` (download and load).
"""

from rlhub.hub.client import RETRY_ATTEMPTS, HubError
from rlhub.hub.files import model_name
from rlhub.hub.model_card import model_card
from rlhub.hub.packaging import PackageResult, package
from rlhub.hub.pull import download, load, load_agent, pull, write_run_folder
from rlhub.hub.push import PushResult, push
from rlhub.hub.repo_kinds import RepoAgent, describe

__all__ = ["RETRY_ATTEMPTS", "HubError", "PackageResult", "PushResult", "RepoAgent", "describe", "download", "load",
           "load_agent", "model_card", "model_name", "package", "pull", "push", "write_run_folder"]
