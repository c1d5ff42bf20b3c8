"""Algorithms by id: the typed face of the plugin manager."""

from __future__ import annotations

import dataclasses
import difflib
from functools import lru_cache
from pathlib import Path

from rlhub.plugins import distribution_of, get_plugin_manager
from rlhub.spec import AlgorithmSpec


class UnknownAlgorithmError(KeyError):
    """No installed plugin provides the requested algorithm id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateAlgorithmError(RuntimeError):
    """Two plugins claim the same algorithm id."""


@lru_cache(maxsize=1)
def _algorithms() -> dict[str, AlgorithmSpec]:
    manager = get_plugin_manager()
    found: dict[str, AlgorithmSpec] = {}
    for impl in manager.hook.rlhub_algorithms.get_hookimpls():
        plugin_name = manager.get_name(impl.plugin) or impl.plugin_name
        distribution, version = distribution_of(plugin_name)
        for spec in impl.function() or ():
            spec = dataclasses.replace(
                spec, plugin_name=plugin_name, distribution=distribution, distribution_version=version
            )
            if spec.algo_id in found:
                other = found[spec.algo_id]
                raise DuplicateAlgorithmError(
                    f"algorithm id {spec.algo_id!r} is provided by two plugins: "
                    f"{other.plugin_name!r} ({other.distribution or 'unknown distribution'}) and "
                    f"{plugin_name!r} ({distribution or 'unknown distribution'}). "
                    "Uninstall one, or block it with RLHUB_BLOCK_PLUGINS=<name>."
                )
            found[spec.algo_id] = spec
    return dict(sorted(found.items()))


def list_algorithms() -> list[AlgorithmSpec]:
    """Every registered algorithm, sorted by id."""
    return list(_algorithms().values())


def get_algorithm(algo_id: str) -> AlgorithmSpec:
    """Return the spec of ``algo_id``; an unknown id raises an error naming the nearest ids."""
    algorithms = _algorithms()
    key = algo_id.lower()
    if key in algorithms:
        return algorithms[key]
    nearest = difflib.get_close_matches(key, algorithms, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(name) for name in nearest)}?" if nearest else ""
    raise UnknownAlgorithmError(
        f"Unknown algorithm {algo_id!r}.{hint} Available: {', '.join(algorithms) or 'none'}. "
        "Plugins add more (see `rlhub plugins`)."
    )


def zoo_config_dirs() -> list[Path]:
    """rlhub's own zoo_configs directory, then each plugin's."""
    from importlib.resources import files

    dirs = [Path(str(files("rlhub_zoo_configs")))]
    for plugin_dirs in get_plugin_manager().hook.rlhub_zoo_config_dirs():
        dirs.extend(Path(directory) for directory in plugin_dirs or ())
    return dirs


def reset() -> None:
    """Forget cached algorithms (tests)."""
    _algorithms.cache_clear()
