"""zoo_configs: loading and validating hyperparameter files in the RL Zoo's schema.

A file ``<algo_id>.yml`` maps environment ids (plus ``default`` and ``atari``) to sections::

    CartPole-v1:
      n_timesteps: !!float 1e5
      policy: MlpPolicy
      n_envs: 8
      learning_rate: lin_0.001
      policy_kwargs: "dict(net_arch=[64, 64], activation_fn=nn.Tanh)"

Strings never reach ``eval``: dotted paths are imported, ``lin_<x>`` becomes a linear schedule, and
the RL Zoo's ``dict(...)`` strings are read by a small parser that accepts literals, ``dict(...)``
calls and dotted names only.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: Keys of the RL Zoo's schema that are not constructor arguments of the algorithm.
ZOO_KEYS: dict[str, tuple[type, ...]] = {
    "n_timesteps": (int, float),
    "policy": (str,),
    "n_envs": (int,),
    "normalize": (bool, str, dict),
    "normalize_kwargs": (dict, str),
    "env_wrapper": (str, dict, list),
    "vec_env_wrapper": (str, dict, list),
    "frame_stack": (int,),
    "callback": (str, dict, list),
    "noise_type": (str,),
    "noise_std": (int, float),
    "env_kwargs": (dict, str),
    "monitor_kwargs": (dict, str),
    # a learned reward (rlhub.common.learned_reward) the algorithm learns from instead of the env's
    "reward_model": (str,),
}

#: Constructor arguments ``rlhub train`` sets from its own options, so a config may not: the option to use.
TRAIN_OPTIONS = {
    "seed": "--seed",
    "verbose": "-q/--quiet or -v/--verbose",
    "device": "--device",
    "tensorboard_log": "-tb/--tensorboard-log",
    "env_factory": "nothing: rlhub train gives it to algorithms that make their env elsewhere (remote workers)",
}

#: Policy constructor arguments every SB3 algorithm passes itself, so ``policy_kwargs`` may not.
_POLICY_ARGUMENTS = {"observation_space", "action_space", "lr_schedule"}

#: Hyperparameters whose string value is an import path.
CLASS_KEYS = {"replay_buffer_class", "activation_fn", "features_extractor_class", "optimizer_class",
               "net_arch_class", "action_noise_class"}

#: Short names the RL Zoo's files use without a module.
_ALIASES = {"nn": "torch.nn", "th": "torch", "optim": "torch.optim"}
_SHORT_NAMES = {
    "HerReplayBuffer": "stable_baselines3.HerReplayBuffer",
    "DictReplayBuffer": "stable_baselines3.common.buffers.DictReplayBuffer",
    "ReplayBuffer": "stable_baselines3.common.buffers.ReplayBuffer",
    "RMSpropTFLike": "stable_baselines3.common.sb2_compat.rmsprop_tf_like.RMSpropTFLike",
}

#: Turns an import path of a config into the object it names (see :func:`resolve_section`).
Importer = Callable[[str], Any]

_NOISE = {
    "normal": "stable_baselines3.common.noise.NormalActionNoise",
    "ornstein-uhlenbeck": "stable_baselines3.common.noise.OrnsteinUhlenbeckActionNoise",
}


class ConfigError(ValueError):
    """A zoo config file is missing, malformed or names something that does not exist."""


@dataclass(frozen=True)
class Origins:
    """Where the values of a section came from, for error messages: its file (``"a2c.yml, env
    CartPole-v1"``), or for the keys in ``options`` a command-line option (``{"n_envs": "--n-envs"}``)."""

    file: str
    options: Mapping[str, str] = field(default_factory=dict)

    def place(self, key: str) -> str:
        return f"key {key!r} from {self.options[key]}" if key in self.options else f"{self.file}, key {key!r}"

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.place(key)}: {message}")

    @contextmanager
    def blame(self, key: str) -> Iterator[None]:
        """Say where ``key`` came from in a ConfigError raised inside."""
        try:
            yield
        except ConfigError as error:
            raise self.error(key, str(error)) from None

    def __str__(self) -> str:
        given = ", ".join(f"{key} from {option}" for key, option in self.options.items())
        return f"{self.file} ({given})" if given else self.file


@dataclass
class ZooConfig:
    """One resolved section of a zoo config file.

    :param hyperparams: constructor arguments for the algorithm, with schedules, classes and
        ``policy_kwargs`` resolved
    :param raw: the section as written (after command-line overrides), for ``config.yml``
    :param env_kwargs: the section's ``env_kwargs`` (``rlhub train`` merges ``--env-kwargs`` over them)
    :param monitor_kwargs: keyword arguments of the ``Monitor`` wrapper
    :param reward_model: a reward model file the algorithm learns from instead of the env's reward
    """

    algo_id: str
    env_id: str
    source: Path | None
    section: str
    raw: dict[str, Any]
    n_timesteps: int
    policy: str | type
    n_envs: int = 1
    normalize: dict[str, Any] | None = None
    env_wrapper: Callable | None = None
    vec_env_wrapper: Callable | None = None
    frame_stack: int | None = None
    callbacks: list[Any] = field(default_factory=list)
    noise: tuple[str, float] | None = None
    hyperparams: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    monitor_kwargs: dict[str, Any] = field(default_factory=dict)
    reward_model: str | None = None
    origins: Origins = field(default_factory=lambda: Origins("<overrides>"))

    def to_yaml(self) -> str:
        """The section as a zoo config file of its own, usable again with ``--conf-file``."""
        return yaml.safe_dump({self.env_id: self.raw}, sort_keys=False)


# --------------------------------------------------------------------------------------------
# Finding and reading the section


def find_config_file(algo_id: str, search_dirs: list[Path]) -> Path:
    for directory in search_dirs:
        candidate = Path(directory) / f"{algo_id}.yml"
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"No hyperparameter file {algo_id}.yml in {', '.join(str(d) for d in search_dirs)}. "
        "Pass one with --conf-file, or ship one through the plugin's rlhub_zoo_config_dirs hook."
    )


def read_section(path: Path, env_id: str) -> tuple[str, dict[str, Any]]:
    """Return ``(section name, section)`` for ``env_id``: its own, else ``atari``, else ``default``."""
    try:
        document = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise ConfigError(f"{path} must map environment ids to hyperparameters, not hold a {type(document).__name__}")
    from rlhub.envs import is_atari

    candidates = [env_id, env_id.split(":", 1)[-1]]
    if is_atari(env_id):
        candidates.append("atari")
    candidates.append("default")
    for name in candidates:
        if name in document:
            section = document[name] or {}
            if not isinstance(section, dict):
                raise ConfigError(f"{path}, env {name}: the section must be a mapping of hyperparameters")
            return name, dict(section)
    raise ConfigError(
        f"{path} has no section for {env_id!r} and no 'default'. Sections: {', '.join(map(str, document))}."
    )


def load_zoo_config(
    algo_id: str,
    env_id: str,
    algo_class: type,
    *,
    conf_file: str | Path | None = None,
    search_dirs: list[Path] | None = None,
    overrides: dict[str, Any] | None = None,
    origins: Mapping[str, str] | None = None,
) -> ZooConfig:
    """Find, read, override and validate the hyperparameters of ``algo_id`` on ``env_id``.

    :param origins: where an override came from (``{"n_envs": "--n-envs"}``), for error messages
    """
    if conf_file is not None:
        path: Path | None = Path(conf_file)
        if not path.is_file():
            raise ConfigError(f"Config file {conf_file} does not exist.")
    else:
        if search_dirs is None:
            from rlhub.registry import zoo_config_dirs

            search_dirs = zoo_config_dirs()
        path = find_config_file(algo_id, search_dirs)
    section_name, raw = read_section(path, env_id)
    raw.update(overrides or {})
    return resolve_section(algo_id, env_id, algo_class, raw, source=path, section=section_name, origins=origins)


# --------------------------------------------------------------------------------------------
# Validation and resolution


def resolve_section(
    algo_id: str,
    env_id: str,
    algo_class: type,
    raw: dict[str, Any],
    *,
    source: Path | None,
    section: str,
    importer: Importer | None = None,
    origins: Mapping[str, str] | None = None,
) -> ZooConfig:
    """Validate a section and resolve its schedules, classes and expressions.

    :param importer: turns an import path into the object it names; :func:`resolve_dotted` (the
        default) imports anything, which is right for the user's own files only. A downloaded config
        is resolved with ``rlhub.safe_loading``'s allow-listed importer.
    :param origins: the command-line option each overridden key came from, for error messages
    """
    importer = importer or resolve_dotted
    where = Origins(f"{source or '<overrides>'}, env {section}", dict(origins or {}))
    parameters = constructor_parameters(algo_class)
    _check_keys(algo_id, raw, parameters, where)

    hyperparams: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in ZOO_KEYS:
            with where.blame(key):
                hyperparams[key] = _resolve_hyperparameter(key, value, parameters[key], importer)

    resolved: dict[str, Any] = {}
    for key, resolve in _ZOO_RESOLVERS.items():
        with where.blame(key):
            resolved[key] = resolve(raw.get(key), importer)
    normalize = resolved["normalize"]
    if normalize is not None:
        normalize.update(resolved["normalize_kwargs"])
        if "gamma" in hyperparams:
            # As the RL Zoo: rewards are scaled by the spread of returns discounted as the algorithm discounts.
            normalize["gamma"] = hyperparams["gamma"]
    with where.blame("policy"):
        policy = raw.get("policy", "MlpPolicy")
        if "." in policy:
            policy = importer(policy)
        policy_class = _policy_class(algo_id, algo_class, policy)
    accepted = keyword_names(policy_class)
    if accepted is not None:
        accepted -= _POLICY_ARGUMENTS  # the algorithm passes these itself
    refusal = unknown_keyword(hyperparams.get("policy_kwargs", {}), accepted, policy_class.__name__)
    if refusal:
        raise where.error("policy_kwargs", refusal)

    n_timesteps = raw.get("n_timesteps", 0)
    if n_timesteps <= 0 or int(n_timesteps) != n_timesteps:
        raise where.error("n_timesteps", f"must be a positive whole number, got {n_timesteps!r}")
    if raw.get("n_envs", 1) < 1:
        raise where.error("n_envs", "must be at least 1")
    if "noise_type" in raw and raw["noise_type"] not in _NOISE:
        raise where.error("noise_type", f"must be one of {', '.join(_NOISE)}")
    noise = (raw["noise_type"], float(raw.get("noise_std", 0.1))) if "noise_type" in raw else None
    return ZooConfig(
        algo_id=algo_id,
        env_id=env_id,
        source=source,
        section=section,
        raw=raw,
        n_timesteps=int(n_timesteps),
        policy=policy,
        n_envs=int(raw.get("n_envs", 1)),
        normalize=normalize,
        env_wrapper=resolved["env_wrapper"],
        vec_env_wrapper=resolved["vec_env_wrapper"],
        frame_stack=raw.get("frame_stack"),
        callbacks=resolved["callback"],
        noise=noise,
        hyperparams=hyperparams,
        env_kwargs=resolved["env_kwargs"],
        monitor_kwargs=resolved["monitor_kwargs"],
        reward_model=raw.get("reward_model"),
        origins=where,
    )


def _check_keys(algo_id: str, raw: dict[str, Any], parameters: dict[str, inspect.Parameter], where: Origins) -> None:
    """Every key is one of the RL Zoo's, of its type, or a constructor argument a config may set."""
    settable = sorted(name for name in parameters if name not in TRAIN_OPTIONS)
    for key, value in raw.items():
        if key in ZOO_KEYS:
            if not isinstance(value, ZOO_KEYS[key]) or isinstance(value, bool) and bool not in ZOO_KEYS[key]:
                expected = " or ".join(t.__name__ for t in ZOO_KEYS[key])
                raise where.error(key, f"expected {expected}, got {type(value).__name__} {value!r}")
        elif key in TRAIN_OPTIONS:
            # train passes these itself: the algorithm would get them twice
            raise where.error(key, f"rlhub train sets it, not the config: use {TRAIN_OPTIONS[key]} instead")
        elif key not in parameters:
            nearest = did_you_mean(key, [*ZOO_KEYS, *settable])
            raise where.error(key, f"unknown hyperparameter for {algo_id}.{nearest} Known: {', '.join(settable)}.")


def _policy_class(algo_id: str, algo_class: type, policy: str | type) -> type:
    """The class a config's ``policy`` names: one of the algorithm's policy names, or an imported class."""
    if not isinstance(policy, str):
        return policy
    aliases = algo_class.policy_aliases
    if policy not in aliases:
        raise ConfigError(f"{algo_id} has no policy {policy!r}.{did_you_mean(policy, list(aliases))} Available: "
                          f"{', '.join(aliases) or 'none'}, or the import path of a policy class.")
    return aliases[policy]


def constructor_parameters(algo_class: type) -> dict[str, inspect.Parameter]:
    """The arguments a config may set for ``algo_class`` (all but ``policy``, ``env`` and ``*args``)."""
    signature = inspect.signature(algo_class.__init__)
    return {
        name: parameter
        for name, parameter in signature.parameters.items()
        if name not in {"self", "policy", "env", "_init_setup_model"}
        and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }


def did_you_mean(key: str, names: Iterable[str], n: int = 2) -> str:
    """`` Did you mean 'x'?`` for the names closest to ``key``, or nothing if none is close."""
    nearest = difflib.get_close_matches(key, list(names), n=n, cutoff=0.6)
    return f" Did you mean {' or '.join(map(repr, nearest))}?" if nearest else ""


def keyword_names(function: Callable) -> set[str] | None:
    """The keyword arguments ``function`` (a class: its constructor) takes; None if any (``**kwargs``)."""
    parameters = inspect.signature(function).parameters.values()
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return None
    return {parameter.name for parameter in parameters
            if parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def unknown_keyword(given: Iterable[str], accepted: set[str] | None, taker: str) -> str | None:
    """Why a keyword argument of ``given`` is refused by ``taker`` (``accepted`` None: it takes any),
    naming the nearest and all it takes, or None. Python's TypeError would come later and say neither."""
    unknown = [key for key in given if key not in accepted] if accepted is not None else []
    if not unknown:
        return None
    return (f"{taker} takes no argument {unknown[0]!r}.{did_you_mean(unknown[0], accepted)} "
            f"It takes: {', '.join(sorted(accepted))}.")


def _resolve_hyperparameter(key: str, value: Any, parameter: inspect.Parameter, importer: Importer) -> Any:
    if isinstance(value, str) and value.startswith("lin_"):
        from stable_baselines3.common.utils import LinearSchedule

        try:
            start = float(value[len("lin_"):])
        except ValueError:
            raise ConfigError(f"a linear schedule reads 'lin_<number>', got {value!r}") from None
        return LinearSchedule(start, 0.0, 1.0)
    if key.endswith("_kwargs"):
        return _resolve_kwargs(value, importer)
    if key in CLASS_KEYS and isinstance(value, str):
        return importer(value)
    if key == "train_freq" and isinstance(value, list):
        return tuple(value)
    return _check_type(value, parameter.default, parameter.annotation)


def _resolve_kwargs(value: Any, importer: Importer) -> dict[str, Any]:
    """A mapping of keyword arguments, written as one or as an RL Zoo ``dict(...)`` string; None is empty."""
    value = parse_expression(value, importer) if isinstance(value, str) else value
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"expected a mapping, got {value!r}")
    return {name: _resolve_nested(name, item, importer) for name, item in value.items()}


def _resolve_nested(key: str, value: Any, importer: Importer) -> Any:
    if key in CLASS_KEYS and isinstance(value, str):
        return importer(value)
    if isinstance(value, dict) and key.endswith("_kwargs"):
        return {name: _resolve_nested(name, item, importer) for name, item in value.items()}
    return value


def _check_type(value: Any, default: Any, annotation: Any = None) -> Any:
    """Check (and coerce) a number or flag against the constructor's default, the one piece of
    type information every algorithm has. Other defaults (None, strings, objects) are not checked:
    SB3 takes e.g. ``ent_coef: "auto"`` or a float. An int default of a float-annotated argument
    (ARS's ``alive_bonus_offset: float = 0``) takes floats."""
    if default is inspect.Parameter.empty or default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # YAML's !!float 1e6 for a buffer size
            return int(value)
        if isinstance(value, float) and "float" in str(annotation):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    else:
        return value
    raise ConfigError(f"expected {type(default).__name__} (like the default {default!r}), got {value!r}")


def _resolve_normalize(value: Any, importer: Importer) -> dict[str, Any] | None:
    """``VecNormalize`` keyword arguments, or None for no normalisation."""
    if isinstance(value, str):
        value = parse_expression(value, importer)
    if value is False or value is None:
        return None
    if not isinstance(value, (bool, dict)):
        raise ConfigError(f"expected true, false or a mapping of VecNormalize arguments, got {value!r}")
    return dict(value) if isinstance(value, dict) else {}


def import_entries(value: Any) -> list[tuple[str, dict[str, Any]]]:
    """``"a.B"``, ``{"a.B": {..}}`` or a list of those, as ``[(path, kwargs)]``."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    entries = []
    for item in items:
        if isinstance(item, str):
            entries.append((item, {}))
        elif isinstance(item, dict):
            for path, kwargs in item.items():
                if not isinstance(path, str) or not isinstance(kwargs, (dict, type(None))):
                    raise ConfigError(f"expected {{import path: keyword arguments}}, got {{{path!r}: {kwargs!r}}}")
                entries.append((path, dict(kwargs or {})))
        else:
            raise ConfigError(f"expected an import path or {{path: kwargs}}, got {item!r}")
    return entries


def _resolve_wrappers(value: Any, importer: Importer) -> WrapperChain | None:
    entries = [(importer(path), kwargs) for path, kwargs in import_entries(value)]
    return WrapperChain(entries) if entries else None


def _resolve_callbacks(value: Any, importer: Importer) -> list[tuple[Callable, dict[str, Any]]]:
    return [(importer(path), kwargs) for path, kwargs in import_entries(value)]


#: How each RL Zoo key that is not a constructor argument is resolved (see :func:`resolve_section`).
_ZOO_RESOLVERS: dict[str, Callable[[Any, Importer], Any]] = {
    "normalize": _resolve_normalize,
    "normalize_kwargs": _resolve_kwargs,
    "env_wrapper": _resolve_wrappers,
    "vec_env_wrapper": _resolve_wrappers,
    "callback": _resolve_callbacks,
    "env_kwargs": _resolve_kwargs,
    "monitor_kwargs": _resolve_kwargs,
}


class WrapperChain:
    """Applies wrappers in order; a module-level class so that subprocess envs can pickle it."""

    def __init__(self, wrappers: list[tuple[Callable, dict[str, Any]]]) -> None:
        self.wrappers = wrappers

    def __call__(self, env: Any) -> Any:
        for wrapper, kwargs in self.wrappers:
            env = wrapper(env, **kwargs)
        return env


def make_action_noise(noise: tuple[str, float] | None, action_space: Any) -> Any:
    """The RL Zoo's ``noise_type`` / ``noise_std`` as an SB3 action noise object."""
    if noise is None:
        return None
    import numpy as np

    noise_class = resolve_dotted(_NOISE[noise[0]])
    n_actions = action_space.shape[0]
    return noise_class(mean=np.zeros(n_actions), sigma=noise[1] * np.ones(n_actions))


# --------------------------------------------------------------------------------------------
# Dotted paths and the RL Zoo's expression strings


def expand_import_path(path: str) -> str:
    """``path`` as a full dotted path: the RL Zoo's short names and aliases (``nn.ReLU``,
    ``HerReplayBuffer``) and plugins' short names (``rlhub_class_aliases``) expanded, ``module:Name``
    written ``module.Name``."""
    if path in _SHORT_NAMES:
        path = _SHORT_NAMES[path]
    elif "." not in path and ":" not in path:
        from rlhub.registry import class_aliases

        path = class_aliases().get(path, path)
    head, _, rest = path.replace(":", ".").partition(".")
    return f"{_ALIASES[head]}.{rest}" if head in _ALIASES and rest else path.replace(":", ".")


def resolve_dotted(path: str) -> Any:
    """Import ``"package.module.Name"`` (or ``"package.module:Name"``, ``"nn.ReLU"``).

    Imports whatever the path names: for the user's own config files only (a downloaded config goes
    through ``rlhub.safe_loading``'s allow-listed importer).
    """
    path = expand_import_path(path)
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:]:
                target = getattr(target, attribute)
        except AttributeError:
            break
        return target
    raise ConfigError(f"cannot import {path!r}: check the spelling and that its package is installed")


def parse_expression(text: str, importer: Importer | None = None) -> Any:
    """Read an RL Zoo expression string such as ``"dict(net_arch=[64, 64], activation_fn=nn.Tanh)"``.

    Written by hand because the RL Zoo ``eval``s these strings and no library reads this mix of
    Python literals, ``dict()`` calls and import paths safely; ``ast.literal_eval`` rejects calls
    and names. Import paths go through ``importer`` (default :func:`resolve_dotted`).
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ConfigError(f"cannot parse {text!r}: {error.msg}") from None
    return _evaluate(tree.body, text, importer or resolve_dotted)


def _evaluate(node: ast.AST, text: str, importer: Importer) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _evaluate(node.operand, text, importer)
        if isinstance(operand, (int, float)):
            return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_evaluate(element, text, importer) for element in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict) and all(key is not None for key in node.keys):
        return {_evaluate(key, text, importer): _evaluate(value, text, importer)
                for key, value in zip(node.keys, node.values)}
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args
            and all(keyword.arg for keyword in node.keywords)):
        return {keyword.arg: _evaluate(keyword.value, text, importer) for keyword in node.keywords}
    if isinstance(node, (ast.Name, ast.Attribute)):
        return importer(ast.unparse(node))
    raise ConfigError(
        f"{ast.unparse(node)!r} in {text!r} is not allowed: use literals, dict(...) and import paths only"
    )
