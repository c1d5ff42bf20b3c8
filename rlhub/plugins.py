"""The plugin manager: every plugin, built-in or third-party, arrives through an entry point of
group ``rlhub``.

Environment variables:

``RLHUB_PLUGINS``
    comma-separated entry point names to load; all others are skipped (an allow-list).
    Set it to an empty string to load no plugin at all.
``RLHUB_BLOCK_PLUGINS``
    comma-separated entry point names never to load.

``rlhub plugins`` and ``rlhub algos`` note what they skip and any name no entry point has; asking
for an algorithm of a skipped plugin names the plugin and the variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points

import pluggy

from rlhub import hookspecs

ENTRY_POINT_GROUP = "rlhub"

# entry point name -> (distribution, version), filled as plugins load
_distributions: dict[str, tuple[str, str]] = {}


class PluginLoadError(RuntimeError):
    """A plugin's module could not be imported."""


class PluginSkippedError(PluginLoadError):
    """What the user asked for comes from a plugin ``RLHUB_PLUGINS`` or ``RLHUB_BLOCK_PLUGINS`` skipped."""


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


@dataclass(frozen=True)
class PluginSelection:
    """What ``RLHUB_PLUGINS`` (allow-list) and ``RLHUB_BLOCK_PLUGINS`` make of the installed entry points."""

    installed: tuple[EntryPoint, ...]
    allowed: frozenset[str] | None
    blocked: frozenset[str]

    @property
    def names(self) -> list[str]:
        """The installed entry point names, sorted."""
        return sorted({entry_point.name for entry_point in self.installed})

    def skip_reason(self, name: str) -> str | None:
        """Why plugin ``name`` is not loaded, as a clause ("RLHUB_BLOCK_PLUGINS blocks"); None if it is."""
        if name in self.blocked:
            return "RLHUB_BLOCK_PLUGINS blocks"
        if self.allowed is not None and name not in self.allowed:
            return f"RLHUB_PLUGINS={','.join(sorted(self.allowed))!r} leaves out"
        return None

    def remedy(self, name: str) -> str:
        """How to load the skipped plugin ``name``."""
        if name in self.blocked:
            return f"take {name} out of RLHUB_BLOCK_PLUGINS"
        return f"add {name} to RLHUB_PLUGINS (or unset it)"

    def unknown_names(self) -> list[str]:
        """One sentence per name in the variables that no installed entry point has (a typo)."""
        return [f"{variable} names {name!r}, but no plugin entry point {name!r} exists; installed plugins: "
                f"{', '.join(self.names) or 'none'}"
                for variable, names in (("RLHUB_PLUGINS", self.allowed or ()), ("RLHUB_BLOCK_PLUGINS", self.blocked))
                for name in sorted(set(names) - set(self.names))]

    def notes(self) -> list[str]:
        """What the variables did: one line per reason plugins are skipped, then :meth:`unknown_names`."""
        skipped: dict[str, list[str]] = {}
        for name in self.names:
            if reason := self.skip_reason(name):
                skipped.setdefault(reason, []).append(name)
        return [f"{reason}: {', '.join(names)}" for reason, names in skipped.items()] + self.unknown_names()


@lru_cache(maxsize=1)
def plugin_selection() -> PluginSelection:
    """The installed entry points of group ``rlhub`` and the environment variables' verdict on them."""
    allowed = _names_from_env("RLHUB_PLUGINS")
    return PluginSelection(tuple(entry_points(group=ENTRY_POINT_GROUP)),
                           None if allowed is None else frozenset(allowed),
                           frozenset(_names_from_env("RLHUB_BLOCK_PLUGINS") or ()))


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    return manager


@lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, loading plugins once, on first use."""
    manager = _new_manager()
    selection = plugin_selection()
    for entry_point in selection.installed:
        if selection.skip_reason(entry_point.name) or manager.get_plugin(entry_point.name) is not None:
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


@lru_cache(maxsize=1)
def skipped_plugin_manager() -> pluggy.PluginManager:
    """The plugins ``RLHUB_PLUGINS`` / ``RLHUB_BLOCK_PLUGINS`` skip, loaded aside only to tell the user
    which of them provides what they asked for; nothing of theirs runs otherwise."""
    manager = _new_manager()
    selection = plugin_selection()
    for entry_point in selection.installed:
        if selection.skip_reason(entry_point.name) and manager.get_plugin(entry_point.name) is None:
            try:
                manager.register(entry_point.load(), name=entry_point.name)
            except Exception:  # it may be skipped because it is broken: it then provides nothing
                continue
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
        distribution, version = distribution_of(name)
        hooks = tuple(sorted(caller.name for caller in manager.get_hookcallers(plugin) or ()))
        infos.append(PluginInfo(name, getattr(plugin, "__name__", repr(plugin)), distribution, version, hooks))
    return sorted(infos, key=lambda info: info.name)


def reset() -> None:
    """Forget the loaded plugins; the next :func:`get_plugin_manager` loads them again. What was built
    from them is forgotten by :func:`rlhub.registry.reset`, which calls this (the registry depends on
    the plugins, never the reverse)."""
    for cached in (plugin_selection, get_plugin_manager, skipped_plugin_manager):
        cached.cache_clear()
    _distributions.clear()
