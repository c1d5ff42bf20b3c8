"""The plugin manager: every plugin, built-in or third-party, arrives through an entry point of
group ``rlhub``.

Environment variables:

``RLHUB_PLUGINS``
    comma-separated entry point names to load; all others are skipped (an allow-list).
    Set it to an empty string to load no plugin at all.
``RLHUB_BLOCK_PLUGINS``
    comma-separated entry point names never to load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points

import pluggy

from rlhub import hookspecs

ENTRY_POINT_GROUP = "rlhub"

# entry point name -> (distribution, version), filled as plugins load
_distributions: dict[str, tuple[str, str]] = {}


class PluginLoadError(RuntimeError):
    """A plugin's module could not be imported."""


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin, for ``rlhub plugins``."""

    name: str
    module: str
    distribution: str
    version: str
    hooks: tuple[str, ...]


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


@lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, loading plugins once, on first use."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    allowed = _names_from_env("RLHUB_PLUGINS")
    for name in _names_from_env("RLHUB_BLOCK_PLUGINS") or ():
        manager.set_blocked(name)
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and entry_point.name not in allowed:
            continue
        if manager.is_blocked(entry_point.name) or manager.get_plugin(entry_point.name) is not None:
            continue
        try:
            plugin = entry_point.load()
        except Exception as error:  # a broken third-party plugin must say which one it is
            dist = entry_point.dist.name if entry_point.dist else "unknown distribution"
            raise PluginLoadError(
                f"plugin {entry_point.name!r} ({entry_point.value}, from {dist}) failed to load: {error!r}. "
                f"Fix or uninstall it, or skip it with RLHUB_BLOCK_PLUGINS={entry_point.name}"
            ) from error
        manager.register(plugin, name=entry_point.name)
        dist = entry_point.dist
        _distributions[entry_point.name] = (dist.name, dist.version) if dist else ("", "")
    # A hook implementation whose name matches no spec (a typo) is an error, not silence.
    manager.check_pending()
    return manager


def distribution_of(plugin_name: str) -> tuple[str, str]:
    """Return ``(distribution name, version)`` of a loaded plugin."""
    get_plugin_manager()
    return _distributions.get(plugin_name, ("", ""))


def list_plugins() -> list[PluginInfo]:
    """Describe every loaded plugin: name, module, distribution, version and hooks."""
    manager = get_plugin_manager()
    infos = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None:  # blocked
            continue
        distribution, version = distribution_of(name)
        hooks = tuple(sorted(caller.name for caller in manager.get_hookcallers(plugin) or ()))
        infos.append(PluginInfo(name, getattr(plugin, "__name__", repr(plugin)), distribution, version, hooks))
    return sorted(infos, key=lambda info: info.name)


def reset() -> None:
    """Forget the loaded plugins; the next :func:`get_plugin_manager` loads them again (tests)."""
    get_plugin_manager.cache_clear()
    _distributions.clear()
    from rlhub import registry

    registry.reset()
