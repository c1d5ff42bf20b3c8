"""Datasets in memory: a Minari dataset read, once, into the arrays every offline algorithm samples from."""

from __future__ import annotations

import difflib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlhub.datasets.hdf5 import read_episodes

#: Observation and action spaces the arrays of :class:`OfflineData` hold.
SUPPORTED_SPACES = (gym.spaces.Box, gym.spaces.Discrete)


class DatasetError(ValueError):
    """A dataset is unknown, empty, damaged, or does not fit the environment or algorithm."""


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: its arrays have no truth value
class OfflineData:
    """A dataset's transitions in memory, episodes contiguous and in order.

    Observations are float32 for a Box space and int64 for a Discrete one; actions likewise
    (``(N,)`` for Discrete). ``next_observations[i]`` follows ``observations[i]``; at a truncation
    it is the last observation of the episode (not a reset's).
    """

    dataset_id: str
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    episode_starts: np.ndarray
    observation_space: gym.Space
    action_space: gym.Space
    content_hash: str
    env_spec_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_transitions(self) -> int:
        return len(self.rewards)

    @property
    def n_episodes(self) -> int:
        return len(self.episode_starts)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``batch_size`` transitions drawn uniformly with replacement, keyed as the fields."""
        indices = rng.integers(0, self.n_transitions, size=batch_size)
        return {name: getattr(self, name)[indices] for name in TRANSITION_FIELDS}

    def episode_returns(self) -> np.ndarray:
        """The undiscounted return of each episode (float64)."""
        return np.add.reduceat(self.rewards.astype(np.float64), self.episode_starts)

    def episode_lengths(self) -> np.ndarray:
        return np.diff(np.append(self.episode_starts, self.n_transitions))


TRANSITION_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminations", "truncations")


def datasets_root() -> Path:
    """Where Minari keeps local datasets: ``$MINARI_DATASETS_PATH``, else ``~/.minari/datasets``."""
    root = os.environ.get("MINARI_DATASETS_PATH")
    return Path(root) if root else Path.home() / ".minari" / "datasets"


def local_dataset_ids() -> list[str]:
    """The ids of the datasets under :func:`datasets_root`."""
    root = datasets_root()
    if not root.is_dir():
        return []
    return sorted(str(path.parent.parent.relative_to(root)) for path in root.glob("**/data/metadata.json"))


def _data_folder(id_or_path: str | Path) -> Path:
    """The ``data`` folder of a dataset id or folder, or a DatasetError saying what exists."""
    path = Path(id_or_path).expanduser()
    if path.is_absolute() or path.exists():
        for candidate in (path, path / "data"):
            if (candidate / "metadata.json").is_file():
                return candidate
        if path.exists():
            raise DatasetError(f"{path} is not a Minari dataset: it has no metadata.json (nor data/metadata.json)")
        raise DatasetError(f"{path} does not exist")
    folder = datasets_root() / str(id_or_path) / "data"
    if (folder / "metadata.json").is_file():
        return folder
    local = local_dataset_ids()
    nearest = difflib.get_close_matches(str(id_or_path), local, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(nearest)}?" if nearest else ""
    listing = ", ".join(local[:20]) + (" ..." if len(local) > 20 else "") if local else "none"
    raise DatasetError(f"no dataset {str(id_or_path)!r} in {datasets_root()} (set by MINARI_DATASETS_PATH, else "
                       f"~/.minari/datasets).{hint} Local datasets: {listing}. Write one with `rlhub collect`, or "
                       "give the path of a dataset folder")


def load_dataset(id_or_path: str | Path) -> OfflineData:
    """Read a Minari dataset (an id under :func:`datasets_root`, or a dataset folder) into memory arrays.

    :raises DatasetError: the dataset is unknown, empty, damaged or of spaces rlhub cannot hold in arrays
    """
    from minari.dataset.minari_storage import MinariStorage

    folder = _data_folder(id_or_path)
    _check_size(folder)
    try:
        storage = MinariStorage.read(folder)
        observation_space, action_space = storage.observation_space, storage.action_space
        n_episodes = storage.total_episodes
    except Exception as error:  # minari raises many kinds for a damaged metadata.json
        raise DatasetError(f"{folder} is not a readable Minari dataset ({type(error).__name__}: {error})") from None
    for role, space in (("observation", observation_space), ("action", action_space)):
        if not isinstance(space, SUPPORTED_SPACES):
            raise DatasetError(f"{id_or_path}: its {role} space {space} is not supported; rlhub's offline algorithms "
                               "read Box and Discrete spaces")
    if n_episodes == 0:
        raise DatasetError(f"{id_or_path} is empty: it holds no episode")
    try:
        episodes = read_episodes(storage, folder, n_episodes)
    except Exception as error:  # h5py: OSError, KeyError for a truncated or damaged file
        raise DatasetError(f"{id_or_path}: its data cannot be read, the file is truncated or damaged "
                           f"({type(error).__name__}: {error})") from None
    metadata = dict(storage.metadata)
    env_spec = metadata.get("env_spec")
    env_spec_id = gym.envs.registration.EnvSpec.from_json(env_spec).id if isinstance(env_spec, str) else None
    return offline_data(str(id_or_path), episodes, observation_space, action_space, env_spec_id=env_spec_id,
                        metadata=metadata)


def offline_data(dataset_id: str, episodes: list[dict[str, Any]], observation_space: gym.Space,
                 action_space: gym.Space, *, env_spec_id: str | None = None,
                 metadata: dict[str, Any] | None = None) -> OfflineData:
    """Episodes (each a mapping of ``observations`` (one more than its steps), ``actions``,
    ``rewards``, ``terminations`` and ``truncations``) as one :class:`OfflineData`."""
    arrays = _concatenate(episodes, dataset_id, observation_space, action_space)
    return OfflineData(dataset_id=dataset_id, **arrays, observation_space=observation_space,
                       action_space=action_space, content_hash=_content_hash(arrays), env_spec_id=env_spec_id,
                       metadata=dict(metadata or {}))


def _check_size(folder: Path) -> None:
    """Refuse, before reading, a dataset larger than rlhub reads into memory, or a metadata file larger
    than any Minari writes (a dataset may come from anywhere)."""
    from rlhub.safe_loading.limits import limits

    caps = limits()
    caps.json_bytes.check((folder / "metadata.json").stat().st_size, str(folder / "metadata.json"))
    caps.dataset_bytes.check(sum(path.stat().st_size for path in folder.iterdir() if path.is_file()),
                             f"the dataset in {folder}")


def _concatenate(episodes: list[dict[str, Any]], where: str, observation_space: gym.Space,
                 action_space: gym.Space) -> dict[str, np.ndarray]:
    observations, next_observations, actions, rewards, terminations, truncations, lengths = [], [], [], [], [], [], []
    for episode in episodes:
        episode_obs = np.asarray(episode["observations"])
        length = len(episode["rewards"])
        if length == 0 or len(episode_obs) != length + 1 or not (
                len(episode["actions"]) == len(episode["terminations"]) == len(episode["truncations"]) == length):
            raise DatasetError(f"{where}: episode {episode.get('id')} is damaged (its {len(episode_obs)} observations, "
                               f"{len(episode['actions'])} actions and {length} rewards do not make transitions)")
        observations.append(episode_obs[:-1])
        next_observations.append(episode_obs[1:])
        actions.append(np.asarray(episode["actions"]))
        rewards.append(np.asarray(episode["rewards"]))
        terminations.append(np.asarray(episode["terminations"]))
        truncations.append(np.asarray(episode["truncations"]))
        lengths.append(length)
    obs_dtype = np.float32 if isinstance(observation_space, gym.spaces.Box) else np.int64
    act_dtype = np.float32 if isinstance(action_space, gym.spaces.Box) else np.int64
    act_shape = action_space.shape if isinstance(action_space, gym.spaces.Box) else ()
    try:
        return {
            "observations": np.concatenate(observations).astype(obs_dtype).reshape(-1, *observation_space.shape),
            "actions": np.concatenate(actions).astype(act_dtype).reshape(-1, *act_shape),
            "rewards": np.concatenate(rewards).astype(np.float32).reshape(-1),
            "next_observations": np.concatenate(next_observations).astype(obs_dtype).reshape(
                -1, *observation_space.shape),
            "terminations": np.concatenate(terminations).astype(bool).reshape(-1),
            "truncations": np.concatenate(truncations).astype(bool).reshape(-1),
            "episode_starts": np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        }
    except ValueError as error:
        raise DatasetError(f"{where}: its arrays do not fit its spaces ({error}); the dataset is damaged") from None


def _content_hash(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in (*TRANSITION_FIELDS, "episode_starts"):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def check_spaces(data: OfflineData, env: Any, env_id: str) -> None:
    """Raise a DatasetError unless ``env`` (a Gymnasium env or VecEnv) has the dataset's spaces."""
    problems = [f"{role} space {dataset_space} in the dataset but {env_space} in {env_id}"
                for role, dataset_space, env_space in (("observation", data.observation_space, env.observation_space),
                                                       ("action", data.action_space, env.action_space))
                if dataset_space != env_space]
    if problems:
        recorded = f" (it was collected on {data.env_spec_id})" if data.env_spec_id else ""
        raise DatasetError(f"dataset {data.dataset_id}{recorded} does not fit {env_id}: {'; '.join(problems)}. "
                           "Train on the environment the dataset was collected on")
