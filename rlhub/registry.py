"""Algorithms by id: the typed face of the plugin manager."""

from __future__ import annotations

import dataclasses
import difflib
from functools import lru_cache
from pathlib import Path
from typing import Any

from rlhub import plugins
from rlhub.plugins import (
    PluginSkippedError,
    distribution_of,
    get_plugin_manager,
    plugin_selection,
    skipped_plugin_manager,
)
from rlhub.spec import AlgorithmSpec


class UnknownAlgorithmError(KeyError):
    """No installed plugin provides the requested algorithm id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateAlgorithmError(RuntimeError):
    """Two plugins claim the same algorithm id."""


class NoSamplerError(LookupError):
    """No installed plugin gives ``rlhub tune`` a search space for the algorithm."""

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0])


def _specs(manager: Any, impl: Any) -> list[AlgorithmSpec]:
    """The specs one ``rlhub_algorithms`` implementation returns, stamped with their plugin and distribution."""
    plugin_name = manager.get_name(impl.plugin) or impl.plugin_name
    distribution, version = distribution_of(plugin_name)
    return [dataclasses.replace(spec, plugin_name=plugin_name, distribution=distribution,
                                distribution_version=version) for spec in impl.function() or ()]


@lru_cache(maxsize=1)
def _algorithms() -> dict[str, AlgorithmSpec]:
    manager = get_plugin_manager()
    found: dict[str, AlgorithmSpec] = {}
    for impl in manager.hook.rlhub_algorithms.get_hookimpls():
        for spec in _specs(manager, impl):
            if spec.algo_id in found:
                other = found[spec.algo_id]
                raise DuplicateAlgorithmError(
                    f"algorithm id {spec.algo_id!r} is provided by two plugins: "
                    f"{other.plugin_name!r} ({other.distribution or 'unknown distribution'}) and "
                    f"{spec.plugin_name!r} ({spec.distribution or 'unknown distribution'}). "
                    "Uninstall one, or block it with RLHUB_BLOCK_PLUGINS=<name>."
                )
            found[spec.algo_id] = spec
    return dict(sorted(found.items()))


def list_algorithms() -> list[AlgorithmSpec]:
    """Every registered algorithm, sorted by id."""
    return list(_algorithms().values())


def get_algorithm(algo_id: str) -> AlgorithmSpec:
    """Return the spec of ``algo_id``; an unknown id raises an error naming the nearest ids, or the
    plugin ``RLHUB_PLUGINS`` / ``RLHUB_BLOCK_PLUGINS`` skips that provides it."""
    algorithms = _algorithms()
    key = algo_id.lower()
    if key in algorithms:
        return algorithms[key]
    selection = plugin_selection()
    provider = _skipped_provider(key)
    if provider:
        typos = "".join(f" Note: {note}." for note in selection.unknown_names())
        raise PluginSkippedError(f"{key} is provided by plugin {provider}, which {selection.skip_reason(provider)}. "
                                 f"To use {key}, {selection.remedy(provider)}.{typos}")
    notes = "".join(f" Note: {note}." for note in selection.notes())
    nearest = difflib.get_close_matches(key, algorithms, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(name) for name in nearest)}?" if nearest else ""
    raise UnknownAlgorithmError(
        f"Unknown algorithm {algo_id!r}.{hint} Available: {', '.join(algorithms) or 'none'}. "
        f"Plugins add more (see `rlhub plugins`).{notes}"
    )


def _skipped_provider(algo_id: str) -> str | None:
    """The skipped plugin that would provide ``algo_id``, if any."""
    manager = skipped_plugin_manager()
    for impl in manager.hook.rlhub_algorithms.get_hookimpls():
        try:
            if any(spec.algo_id == algo_id for spec in _specs(manager, impl)):
                return manager.get_name(impl.plugin)
        except Exception:  # it may be skipped because it is broken
            continue
    return None


def zoo_config_dirs() -> list[Path]:
    """rlhub's own zoo_configs directory, then each plugin's."""
    from importlib.resources import files

    dirs = [Path(str(files("rlhub_zoo_configs")))]
    for plugin_dirs in get_plugin_manager().hook.rlhub_zoo_config_dirs():
        dirs.extend(Path(directory) for directory in plugin_dirs or ())
    return dirs


@lru_cache(maxsize=1)
def class_aliases() -> dict[str, str]:
    """The short class names plugins give zoo configs (``rlhub_class_aliases``), first plugin first."""
    aliases: dict[str, str] = {}
    for plugin_aliases in reversed(get_plugin_manager().hook.rlhub_class_aliases()):
        aliases.update(plugin_aliases or {})
    return aliases


def training_callbacks(model: Any) -> list[Any]:
    """The callbacks plugins add to a training run of ``model`` (``rlhub_training_callbacks``)."""
    return [callback for callbacks in get_plugin_manager().hook.rlhub_training_callbacks(model=model)
            for callback in callbacks or ()]


@lru_cache(maxsize=1)
def _sampler_offers() -> dict[str, dict[str, str]]:
    """Algorithm id -> {plugin name: import path of a search space it offers} (``rlhub_hyperparameter_samplers``)."""
    manager = get_plugin_manager()
    offers: dict[str, dict[str, str]] = {}
    for impl in manager.hook.rlhub_hyperparameter_samplers.get_hookimpls():
        plugin_name = manager.get_name(impl.plugin) or impl.plugin_name
        for algo_id, path in (impl.function() or {}).items():
            offers.setdefault(algo_id, {})[plugin_name] = path
    return offers


def hyperparameter_samplers() -> dict[str, str]:
    """Algorithm id -> import path of its search space for ``rlhub tune``: the algorithm's own plugin's,
    else another plugin's (so a plugin can add a space for an algorithm whose plugin has none)."""
    chosen: dict[str, str] = {}
    for algo_id, offers in _sampler_offers().items():
        own = _algorithms().get(algo_id)
        chosen[algo_id] = offers.get(own.plugin_name) if own and own.plugin_name in offers else offers[min(offers)]
    return chosen


def hyperparameter_sampler(algo_id: str) -> Any:
    """The function that samples ``algo_id``'s hyperparameters from an ``optuna.Trial``."""
    import importlib

    spec = get_algorithm(algo_id)
    samplers = hyperparameter_samplers()
    path = samplers.get(spec.algo_id)
    if path is None:
        tunable = ", ".join(sorted(algo for algo in samplers if algo in _algorithms()))
        raise NoSamplerError(
            f"{spec.algo_id} has no search space for rlhub tune: no plugin returns one for it from the hook "
            f"rlhub_hyperparameter_samplers() (its plugin is {spec.plugin_name!r}). Implement that hook in a plugin "
            f"(see `rlhub plugins`), or tune one of: {tunable or 'none installed'}")
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def reset() -> None:
    """Forget the loaded plugins and the algorithms they registered; the next lookup loads them again
    (after a test changes RLHUB_PLUGINS or installs a plugin)."""
    plugins.reset()
    _algorithms.cache_clear()
    class_aliases.cache_clear()
    _sampler_offers.cache_clear()
