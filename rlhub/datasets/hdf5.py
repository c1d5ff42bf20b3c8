"""Minari's HDF5 layout, read and written through h5py's low-level calls.

Minari's own reader and writer pay per HDF5 object (a group, five datasets and three attributes
an episode) through h5py's high-level, resizable datasets; for the short episodes of classic
control that made writing several times slower than playing. The layout is Minari's exactly, so
``minari.load_dataset`` reads what is written here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: The Minari storage format rlhub writes: one file, and the faster of Minari's two formats here.
DATA_FORMAT = "hdf5"


def read_episodes(storage: Any, folder: Path, n_episodes: int) -> list[dict[str, Any]]:
    """Every episode's arrays. HDF5 files without JPEG-encoded images are read through h5py's
    low-level calls (twice as fast as Minari's reader, whose cost is per HDF5 object, five an
    episode); anything else through Minari."""
    from minari.dataset.minari_storage import is_image_space

    encoded = storage.jpeg_encoding and (is_image_space(storage.observation_space)
                                         or is_image_space(storage.action_space))
    if storage.metadata.get("data_format") != "hdf5" or encoded:
        return list(storage.get_episodes(range(n_episodes)))
    import h5py

    keys = ("observations", "actions", "rewards", "terminations", "truncations")
    episodes = []
    with h5py.File(folder / "main_data.hdf5", "r") as file:
        for index in range(n_episodes):
            group = h5py.h5g.open(file.id, f"episode_{index}".encode())
            episode: dict[str, Any] = {"id": index}
            for key in keys:
                dataset = h5py.h5d.open(group, key.encode())
                array = np.empty(dataset.shape, dataset.dtype)
                dataset.read(h5py.h5s.ALL, h5py.h5s.ALL, array)
                episode[key] = array
            episodes.append(episode)
    return episodes


def write_episodes(storage: Any, episodes: list[Any]) -> None:
    """Append ``episodes`` (Minari ``EpisodeBuffer``s of arrays, ids following the storage's) to a
    Minari HDF5 storage, in Minari's layout (a group ``episode_<id>`` with attributes ``id``, ``seed``,
    ``total_steps`` and one dataset per field).

    What Minari's own writer does, through h5py's low-level calls: its cost is per HDF5 object
    (a group, five datasets and three attributes an episode), and the high-level calls (chunked,
    resizable datasets) cost three times as much, which made writing short episodes several times
    slower than playing them.
    """
    import h5py

    first = storage.total_episodes
    with h5py.File(Path(storage.data_path) / "main_data.hdf5", "a", track_order=True) as file:
        for offset, episode in enumerate(episodes):
            group = file.create_group(f"episode_{first + offset}")
            attributes = {"id": first + offset, "total_steps": len(episode.rewards)}
            if episode.seed is not None:
                attributes["seed"] = episode.seed
            for name, value in attributes.items():
                _write_array(group.id, name, np.asarray(value, dtype=np.int64), h5py.h5a)
            for name in ("observations", "actions", "rewards", "terminations", "truncations"):
                _write_array(group.id, name, np.ascontiguousarray(getattr(episode, name)), h5py.h5d)
    storage.update_metadata({"total_episodes": first + len(episodes),
                             "total_steps": storage.total_steps + sum(len(episode.rewards) for episode in episodes),
                             "dataset_size": storage.get_size()})


def _write_array(group_id: Any, name: str, array: np.ndarray, kind: Any) -> None:
    """One dataset (``kind`` h5py.h5d) or attribute (h5py.h5a) holding ``array``, written whole."""
    import h5py

    space = h5py.h5s.create_simple(array.shape) if array.shape else h5py.h5s.create(h5py.h5s.SCALAR)
    if kind is h5py.h5a:
        kind.create(group_id, name.encode(), h5py.h5t.py_create(array.dtype), space).write(array)
    else:
        kind.create(group_id, name.encode(), h5py.h5t.py_create(array.dtype), space).write(h5py.h5s.ALL,
                                                                                          h5py.h5s.ALL, array)
