"""Environment creation: the one factory used by train, enjoy, evaluation and the benchmark."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from rlhub.config import ConfigError, did_you_mean, keyword_names, unknown_keyword

#: Packages that register environments on import, tried when an id is not registered yet,
#: with the extra that installs them.
_ENV_PACKAGES = (
    ("BulletEnv", "pybullet_envs_gymnasium", "rlhub (pybullet_envs_gymnasium is a core dependency)"),
    ("ALE/", "ale_py", "rlhub[atari]"),
    ("NoFrameskip", "ale_py", "rlhub[atari]"),
    ("Panda", "panda_gym", "rlhub[panda]"),
)

#: Entry-point modules whose import fails without an optional dependency, with the extra to install.
_ENTRY_POINT_EXTRAS = (
    ("gymnasium.envs.box2d", "rlhub[box2d]"),
    ("gymnasium.envs.mujoco", "gymnasium[mujoco]"),
    ("ale_py", "rlhub[atari]"),
)

#: Keyword arguments ``gym.make`` takes itself, besides the environment's own.
_MAKE_KEYWORDS = frozenset(inspect.signature(gym.make).parameters) - {"id", "kwargs"}


class UnknownEnvironmentError(gym.error.Error):
    """The environment id is not registered by Gymnasium or any installed package."""


class MissingDependencyError(ImportError):
    """The environment needs an optional dependency that is not installed."""


def ensure_registered(env_id: str) -> str:
    """Make ``env_id`` known to Gymnasium and return the id to pass to ``gym.make``.

    ``"module:EnvId"`` imports ``module`` first (for packages that register on import); plugin
    environments are registered through the ``rlhub_register_envs`` hook. A PettingZoo env
    (``"mpe2:simple_spread_v3"``, :mod:`rlhub.parallel_envs`) is returned as it is.
    """
    from rlhub.parallel_envs import is_multi_agent
    from rlhub.plugins import get_plugin_manager

    _register_plugin_envs(get_plugin_manager())
    if is_multi_agent(env_id):  # a PettingZoo module: rlhub.parallel_envs makes it, Gymnasium never sees it
        return env_id
    if ":" in env_id:
        module, _, env_id = env_id.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise MissingDependencyError(f"cannot import {module!r} to register {env_id!r}: {error}") from error
    if env_id not in gym.registry:
        for marker, package, extra in _ENV_PACKAGES:
            if marker in env_id:
                try:
                    importlib.import_module(package)
                except ImportError:
                    raise MissingDependencyError(f"{env_id} needs {package}: pip install '{extra}'") from None
    if env_id not in gym.registry:
        # Some ids carry no marker (ale_py's Pong-v4): import every installed package, as the RL Zoo does.
        for package in dict.fromkeys(package for _, package, _ in _ENV_PACKAGES):
            if importlib.util.find_spec(package) is not None:
                importlib.import_module(package)
    if env_id not in gym.registry:
        raise UnknownEnvironmentError(
            f"Unknown environment {env_id!r}.{did_you_mean(env_id, gym.registry, n=3)} For an environment a package "
            "registers on import, write 'package:EnvId'; for a PettingZoo env, 'package:env_name' (a module with "
            "parallel_env(), e.g. mpe2:simple_spread_v3)."
        )
    return env_id


def is_atari(env_id: str) -> bool:
    """Whether ``env_id`` is an Atari game, decided as the RL Zoo does (its entry point is ale_py's
    ``AtariEnv``); by its name when it is not registered (ale_py not imported or not installed)."""
    bare_id = env_id.split(":", 1)[-1]
    spec = gym.registry.get(bare_id)
    if spec is not None:
        return "AtariEnv" in str(spec.entry_point)
    return "NoFrameskip" in bare_id or bare_id.startswith("ALE/")


def is_minigrid(env_id: str) -> bool:
    """Whether ``env_id`` is a MiniGrid environment (its entry point is in ``minigrid``), by its name
    when it is not registered."""
    bare_id = env_id.split(":", 1)[-1]
    spec = gym.registry.get(bare_id)
    if spec is not None and isinstance(spec.entry_point, str):
        return spec.entry_point.startswith("minigrid.")
    return bare_id.startswith(("MiniGrid-", "BabyAI-"))


def plays_stochastically(env_id: str) -> bool:
    """Whether agents on ``env_id`` are evaluated and played with sampled actions unless told otherwise,
    as the RL Zoo does: Atari games and MiniGrid, where an agent's most likely action can repeat for ever
    (a MiniGrid policy turning in front of a wall, an Atari agent waiting for a serve that never comes)."""
    return is_atari(env_id) or is_minigrid(env_id)


def check_env_kwargs(env_id: str, env_kwargs: Mapping[str, Any], origin: str) -> None:
    """Refuse a keyword argument the environment does not take, before any env is built.

    :param origin: where ``env_kwargs`` came from (``"--env-kwargs"``), for the message
    """
    from rlhub import parallel_envs

    if not env_kwargs:
        return
    gym_id = ensure_registered(env_id)
    accepted = parallel_envs.env_keywords(gym_id) if parallel_envs.is_multi_agent(gym_id) else _env_keywords(gym_id)
    refusal = unknown_keyword(env_kwargs, accepted, gym_id)
    if refusal:
        raise ConfigError(f"{origin}: {refusal}")


def _env_keywords(gym_id: str) -> set[str] | None:
    """What ``gym.make(gym_id, **kwargs)`` takes: its constructor's arguments (None: any), its
    registration's defaults and ``gym.make``'s own."""
    spec = gym.spec(gym_id)
    try:
        creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    except gym.error.DependencyNotInstalled as error:
        raise _missing_dependency(gym_id, error) from error
    accepted = keyword_names(creator)
    return None if accepted is None else accepted | set(spec.kwargs) | _MAKE_KEYWORDS


_plugin_envs_registered_by: set[int] = set()


def _register_plugin_envs(manager: Any) -> None:
    if id(manager) not in _plugin_envs_registered_by:
        manager.hook.rlhub_register_envs()
        _plugin_envs_registered_by.add(id(manager))


def make_single_env(env_id: str, env_kwargs: dict[str, Any] | None = None, **make_kwargs: Any) -> gym.Env:
    """``gym.make`` with rlhub's id handling and a clear error for missing optional dependencies; a
    PettingZoo env as an :class:`rlhub.parallel_envs.AgentDictEnv`."""
    from rlhub import parallel_envs

    env_id = ensure_registered(env_id)
    if parallel_envs.is_multi_agent(env_id):
        unused = set(make_kwargs) - {"render_mode"}
        if unused:
            raise ConfigError(f"{env_id} is a PettingZoo env: {', '.join(sorted(unused))} cannot be passed to it")
        return parallel_envs.make_agent_dict_env(env_id, env_kwargs, render_mode=make_kwargs.get("render_mode"))
    try:
        return gym.make(env_id, **(env_kwargs or {}), **make_kwargs)
    except gym.error.DependencyNotInstalled as error:
        raise _missing_dependency(env_id, error) from error


def _missing_dependency(env_id: str, error: Exception) -> MissingDependencyError:
    entry_point = str(gym.registry[env_id].entry_point)
    extra = next((extra for module, extra in _ENTRY_POINT_EXTRAS if entry_point.startswith(module)), None)
    advice = f"pip install '{extra}'" if extra else "install the package it names"
    return MissingDependencyError(f"{env_id} needs an optional dependency ({error}). Fix: {advice}")


def _time_limit_inside_monitor(wrapper: Callable | None) -> tuple[Callable | None, int | None]:
    """Take gymnasium's ``TimeLimit`` out of a config's wrapper chain, to be applied by ``gym.make``.

    The config's wrappers go around the ``Monitor`` (as in the RL Zoo), so Monitor would never see an
    episode that an outer ``TimeLimit`` ends: no episode statistics, and evaluation, which counts
    Monitor's episodes, would wait forever. ``gym.make(max_episode_steps=...)`` puts it inside.
    """
    entries = getattr(wrapper, "wrappers", None)
    if not entries:
        return wrapper, None
    limits = [kwargs.get("max_episode_steps") for cls, kwargs in entries if cls is gym.wrappers.TimeLimit]
    if not limits or None in limits:
        return wrapper, None
    rest = [(cls, kwargs) for cls, kwargs in entries if cls is not gym.wrappers.TimeLimit]
    return (type(wrapper)(rest) if rest else None), min(limits)


def make_vec_env(
    env_id: str,
    *,
    n_envs: int = 1,
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    vec_env: str = "dummy",
    wrapper: Callable | None = None,
    vec_env_wrapper: Callable | None = None,
    frame_stack: int | None = None,
    normalize: dict[str, Any] | None = None,
    vec_normalize_path: str | Path | None = None,
    training: bool = True,
    monitor_dir: str | Path | None = None,
    monitor_kwargs: dict[str, Any] | None = None,
    render_mode: str | None = None,
    start_index: int = 0,
) -> Any:
    """Build a vectorised, monitored environment as the run's config describes it.

    :param normalize: ``VecNormalize`` keyword arguments, or None for no normalisation
    :param vec_normalize_path: saved ``VecNormalize`` statistics to load (enjoy, evaluation)
    :param training: False freezes normalisation statistics and reports raw rewards
    :param monitor_kwargs: keyword arguments of SB3's ``Monitor`` (``info_keywords``, ...)
    :param start_index: the first env's rank: its monitor file's number and seed offset (envs built
        elsewhere, e.g. by remote workers, write beside the others instead of over them)
    """
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import (
        DummyVecEnv,
        SubprocVecEnv,
        VecFrameStack,
        VecNormalize,
    )

    from rlhub import parallel_envs

    if vec_env not in ("dummy", "subproc"):
        raise ValueError(f"vec_env must be 'dummy' or 'subproc', got {vec_env!r}")
    gym_id = ensure_registered(env_id)
    make_kwargs: dict[str, Any] = {"render_mode": render_mode} if render_mode else {}
    multi_agent = parallel_envs.is_multi_agent(gym_id)
    env_maker: Any = gym_id
    if multi_agent:  # SB3 vectorises the joint env; Monitor also writes each agent's return
        env_maker = partial(parallel_envs.make_agent_dict_env, gym_id, env_kwargs, render_mode)
        probe = env_maker()  # also surfaces an error in this process rather than in a worker
        agents = probe.agents
        probe.close()
        info_keywords = (*(monitor_kwargs or {}).get("info_keywords", ()),
                         *(parallel_envs.AgentDictEnv.return_key(agent) for agent in agents))
        monitor_kwargs = {**(monitor_kwargs or {}), "info_keywords": info_keywords}
        env_kwargs, make_kwargs = {}, {}
    wrapper, max_episode_steps = _time_limit_inside_monitor(wrapper)
    if max_episode_steps is not None and multi_agent:
        raise ConfigError(f"{env_id}: a TimeLimit wrapper cannot end a PettingZoo env's episodes; set its own length "
                          "in env_kwargs (max_cycles for the MPE games)")
    if max_episode_steps is not None:
        make_kwargs["max_episode_steps"] = max_episode_steps
    subproc = vec_env == "subproc" and n_envs > 1
    if subproc and not multi_agent:  # a worker's import error would be hard to read: surface it in this process
        make_single_env(gym_id, env_kwargs, **make_kwargs).close()
        # A fresh subprocess has only gymnasium's own ids: it registers the plugins' envs too.
        env_maker = partial(make_single_env, gym_id)
    try:
        env = sb3_make_vec_env(
            env_maker,
            n_envs=n_envs,
            seed=seed,
            env_kwargs={**(env_kwargs or {}), **make_kwargs},
            monitor_dir=str(monitor_dir) if monitor_dir is not None else None,
            monitor_kwargs=monitor_kwargs,
            wrapper_class=wrapper,
            vec_env_cls=SubprocVecEnv if subproc else DummyVecEnv,
            start_index=start_index,
        )
    except gym.error.DependencyNotInstalled as error:
        raise _missing_dependency(gym_id, error) from error
    if multi_agent:
        env = parallel_envs.AgentDictVecEnv(env)
    if vec_env_wrapper is not None:
        env = vec_env_wrapper(env)
    if frame_stack:
        env = VecFrameStack(env, frame_stack)
    if vec_normalize_path is not None and Path(vec_normalize_path).is_file():
        env = VecNormalize.load(str(vec_normalize_path), env)
        env.training = training
        if not training:
            env.norm_reward = False
    elif normalize is not None:
        env = VecNormalize(env, training=training, **normalize)
        if not training:
            env.norm_reward = False
    return env
