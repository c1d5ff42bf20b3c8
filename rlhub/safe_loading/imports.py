"""What a downloaded file may make rlhub import: classes of an explicit list of modules, nothing else.

Importing a module runs it, and some modules act on import (``torch.utils.model_dump.__main__``
parses the command line and exits). A path from a downloaded config or pickle is therefore checked
before anything is imported: every part must be a public name (no ``_`` prefix, so never a
``__main__``), the module it is imported from must be on the allow-list, and the object it names
must be a class (or function) defined in an allow-listed module.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import types
from functools import cache
from typing import Any

from rlhub.safe_loading.errors import unsafe

#: Modules a downloaded file may name classes of: ``pkg.*`` is ``pkg`` and every module below it.
ALLOWED_MODULES = (
    "stable_baselines3.*", "sb3_contrib.*", "gymnasium.wrappers.*", "gymnasium.spaces.*",
    "torch.nn", "torch.nn.modules.*", "torch.optim.*",
    "minigrid.wrappers",  # a MiniGrid agent's observation wrappers (ImgObsWrapper, FlatObsWrapper)
)
#: Allowed only when installed (finding out does not import it).
OPTIONAL_MODULES = {"rl_zoo3.wrappers": "rl_zoo3"}

#: Packages whose classes a pickle may construct when unpickled for real (see ``pickles.audit``).
TRUSTED_PACKAGES = frozenset({"stable_baselines3", "sb3_contrib", "gymnasium", "gym", "torch", "numpy", "rlhub",
                              "rl_zoo3", "collections"})


def plugin_packages() -> frozenset[str]:
    """The top-level package of each registered algorithm (``"pkg.module:Class"`` gives ``pkg``)."""
    from rlhub import registry

    return frozenset(spec.class_path.split(":")[0].split(".")[0] for spec in registry.list_algorithms())


def trusted_packages() -> frozenset[str]:
    """Packages whose classes unpickling may construct, judged by ``audit``."""
    return TRUSTED_PACKAGES | plugin_packages()


def allowed_modules() -> tuple[str, ...]:
    """The allow-list: :data:`ALLOWED_MODULES`, installed :data:`OPTIONAL_MODULES`, each plugin's package."""
    optional = tuple(module for module, package in OPTIONAL_MODULES.items() if _installed(package))
    plugins = sorted(f"{package}.*" for package in plugin_packages())
    return tuple(dict.fromkeys((*ALLOWED_MODULES, *optional, *plugins)))  # the sb3 plugin's packages are listed


def is_allowed_module(module: str) -> bool:
    """Whether ``module`` is on the allow-list."""
    for pattern in allowed_modules():
        base = pattern.removesuffix(".*")
        if module == base or (pattern.endswith(".*") and module.startswith(f"{base}.")):
            return True
    return False


def is_public_path(path: str) -> bool:
    """Whether every part of a dotted path is a public identifier (never ``_x``, so never ``__main__``)."""
    return all(part.isidentifier() and not part.startswith("_") for part in path.split("."))


def import_refusal(path: str) -> str | None:
    """Why the full dotted ``path`` may not be imported for a downloaded file, without importing
    anything; None if it may be tried."""
    if not is_public_path(path):
        return f"names {path!r}: a downloaded file may name only public names (no part starting with '_')"
    if _module_prefix(path) is None:
        return (f"names {path!r}, outside the packages a downloaded config may use "
                f"({', '.join(allowed_modules())})")
    return None


def safe_import(path: str, *, where: str = "A downloaded config") -> Any:
    """The class (or function) a downloaded config names, imported only from an allow-listed module.

    The importer of ``rlhub.config.resolve_section`` for downloaded configs. Short names and
    aliases (``nn.ReLU``, ``HerReplayBuffer``) are expanded as for local configs.
    """
    from rlhub.config import ConfigError, expand_import_path

    full_path = expand_import_path(path)
    refusal = import_refusal(full_path)
    if refusal is not None:
        raise unsafe(where, refusal)
    parts = full_path.split(".")
    for split in range(len(parts) - 1, 0, -1):  # the longest allowed module the path starts with
        module = ".".join(parts[:split])
        if not is_allowed_module(module):
            continue  # never imported
        try:
            target = _import_attribute(module, parts[split:])
        except _OutsideTheAllowList as error:
            raise unsafe(where, f"names {full_path!r}, which goes through the module {error}, outside the packages "
                         "a downloaded config may use") from None
        if target is not None:
            reason = _not_importable(target, full_path)
            if reason:
                raise unsafe(where, reason)
            return target
    raise ConfigError(f"cannot import {full_path!r}: check the spelling and that its package is installed")


def resolve_class(module: str, name: str, bases: tuple[type, ...]) -> type | None:
    """The installed class ``module.name`` a pickle names, if it is allow-listed and subclasses ``bases``."""
    if not bases or not is_public_path(module) or not is_public_path(name) or not is_allowed_module(module):
        return None
    try:
        target = _import_attribute(module, name.split("."))
    except _OutsideTheAllowList:
        return None
    if _not_importable(target, f"{module}.{name}") is not None:
        return None
    return target if isinstance(target, type) and issubclass(target, bases) else None


def is_safe_env_module(module: str) -> bool:
    """Whether a downloaded ``module:EnvId`` may import ``module``: a public module of an installed
    third-party package. The standard library is refused (``antigravity`` acts on import), and so
    is any private part (``pkg.__main__``)."""
    top = module.split(".")[0]
    if not is_public_path(module) or top in sys.stdlib_module_names:
        return False
    return _installed(top)


def _module_prefix(path: str) -> str | None:
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        if is_allowed_module(".".join(parts[:split])):
            return ".".join(parts[:split])
    return None


class _OutsideTheAllowList(Exception):
    """An attribute path leads through a module that is not allow-listed (its name is the message)."""


def _import_attribute(module: str, attributes: list[str]) -> Any:
    """``module.attr1.attr2...`` (the caller has checked ``module`` is allowed), None if missing.

    Never looks up an attribute of a module off the allow-list: a module's ``__getattr__`` may
    import more (``torch.onnx``, lazily).
    """
    try:
        target: Any = importlib.import_module(module)
        for attribute in attributes:
            if isinstance(target, types.ModuleType) and not is_allowed_module(target.__name__):
                raise _OutsideTheAllowList(target.__name__)
            target = getattr(target, attribute)
    except (ImportError, AttributeError):
        return None
    return target


def _not_importable(target: Any, path: str) -> str | None:
    """Why ``target`` is not something a downloaded file may name; None if it is."""
    if not (isinstance(target, type) or inspect.isfunction(target)):
        return f"names {path!r}, a {type(target).__name__}, where only classes may be named"
    defined_in = getattr(target, "__module__", None)
    if not isinstance(defined_in, str) or not is_allowed_module(defined_in):
        return f"names {path!r}, defined in {defined_in}, outside the packages a downloaded config may use"
    return None


@cache
def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None  # a top-level name: found, not imported
    except (ImportError, ValueError):
        return False


def policy_bases() -> tuple[type, ...]:
    """Classes a pickled ``policy_class`` may resolve to."""
    from stable_baselines3.common.policies import BasePolicy

    return (BasePolicy,)


def config_class_bases() -> tuple[type, ...]:
    """Kinds of classes a config or ``policy_kwargs`` may name."""
    import gymnasium as gym
    import torch
    from stable_baselines3.common.buffers import BaseBuffer
    from stable_baselines3.common.noise import ActionNoise
    from stable_baselines3.common.policies import BasePolicy
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from stable_baselines3.common.vec_env import VecEnvWrapper

    return (torch.nn.Module, torch.optim.Optimizer, BasePolicy, BaseFeaturesExtractor, BaseBuffer, ActionNoise,
            gym.Wrapper, VecEnvWrapper)
