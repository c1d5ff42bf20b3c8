"""Loading a downloaded agent as data: nothing from the files is imported, called or unpickled.

Stable-Baselines3 stores an agent as a zip whose ``data`` JSON holds cloudpickled objects (spaces,
schedules, the policy class, ...), and VecNormalize statistics as a pickle. Unpickling either runs
whatever code the author put in it. Without ``trust_remote_code`` rlhub instead:

- reads pickles with a restricted reader that builds numpy arrays and plain containers only; every
  class or function a pickle names becomes an inert placeholder that is never imported or called.
  A pickle that would call anything but the constructors SB3 files need (numpy, cloudpickle's
  function rebuilding, SB3/Gymnasium classes) is refused with :class:`UnsafeAgentError`;
- rebuilds the agent as SB3's ``load`` does, but takes the spaces from the environment, the policy
  class and ``policy_kwargs`` from installed classes (looked up by name, only in trusted packages),
  schedules and other objects from the run's config (or the constructor's defaults), and loads
  tensors with ``torch.load(..., weights_only=True)``;
- rebuilds VecNormalize from the statistics (arrays and numbers) in ``vec_normalize.pkl``;
- reads config files with a YAML safe loader (the RL Zoo's ``OrderedDict`` tag included) and lets
  them name only classes of trusted packages, of the kinds a config may name.
"""

from __future__ import annotations

import ast
import base64
import collections
import importlib
import io
import json
import pickle
import sys
import zipfile
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

#: Packages whose classes a downloaded file may name (plus each registered plugin's package).
TRUSTED_PACKAGES = frozenset({"stable_baselines3", "sb3_contrib", "gymnasium", "gym", "torch", "numpy", "rlhub",
                              "rl_zoo3", "collections"})

OPT_IN = ("If you trust its author, load it with --trust-remote-code (Python: trust_remote_code=True): "
          "that unpickles it as Stable-Baselines3 does and runs any code it holds.")


class UnsafeAgentError(RuntimeError):
    """A downloaded agent needs code or objects rlhub does not load without ``trust_remote_code``."""


def unsafe(what: str, reason: str) -> UnsafeAgentError:
    return UnsafeAgentError(f"{what} {reason}. rlhub did not unpickle it, so none of it ran. {OPT_IN}")


@lru_cache(maxsize=1)
def trusted_packages() -> frozenset[str]:
    from rlhub import registry

    plugins = {spec.class_path.split(":")[0].split(".")[0] for spec in registry.list_algorithms()}
    return TRUSTED_PACKAGES | plugins


# ---------------------------------------------------------------------------------------------
# The restricted pickle reader


class Placeholder:
    """An object a pickle names or builds; subclasses stand for one ``module.name`` each.

    Unpickling "calls" it (REDUCE) or "builds" it (NEWOBJ + BUILD); both only record arguments.
    """

    module_name = ""
    ref_name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Placeholder:
        self = object.__new__(cls)
        object.__setattr__(self, "record", {"args": args, "kwargs": kwargs, "called": False, "state": None,
                                            "items": [], "entries": {}, "callee": None})
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.record["called"] = True  # pickle's NEWOBJ never calls __init__; REDUCE (a call) does

    def __setstate__(self, state: Any) -> None:
        self.record["state"] = state

    def __call__(self, *args: Any, **kwargs: Any) -> Placeholder:
        result = _placeholder_class("<result>", f"{self.describe()}(...)")(*args, **kwargs)
        result.record["callee"] = self
        return result

    def append(self, item: Any) -> None:
        self.record["items"].append(item)

    def extend(self, items: Any) -> None:
        self.record["items"].extend(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.record["entries"][key] = value

    @classmethod
    def describe(cls) -> str:
        return f"{cls.module_name}.{cls.ref_name}"


@cache
def _placeholder_class(module: str, name: str) -> type[Placeholder]:
    return type(f"Placeholder[{module}.{name}]", (Placeholder,), {"module_name": module, "ref_name": name})


class _NdarrayType:
    """Stands for ``numpy.ndarray`` in a pickle: only ``_reconstruct`` may use it (no allocation)."""

    def __init__(self, *args: Any) -> None:
        raise pickle.UnpicklingError("numpy.ndarray is not called when unpickling an array")


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    # numpy pickles an array as _reconstruct(ndarray, (0,), b"b") and then sets its state: an empty
    # placeholder is all it ever asks for (a larger shape would only allocate memory).
    if subtype is not _NdarrayType or tuple(shape) != (0,):
        raise pickle.UnpicklingError("only plain numpy arrays can be read")
    return np.ndarray.__new__(np.ndarray, (0,), np.dtype(dtype) if isinstance(dtype, str) else "b")


def _copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    if isinstance(cls, type) and issubclass(cls, Placeholder):
        if base is object:
            return cls.__new__(cls)
        if isinstance(base, type) and issubclass(base, Placeholder):
            return base(state)  # a real unpickler would call base.__init__: recorded as a call
    raise pickle.UnpicklingError("copyreg._reconstructor of a real class")


def _newobj(cls: Any, *args: Any) -> Any:
    if isinstance(cls, type) and issubclass(cls, Placeholder):
        return cls.__new__(cls, *args)
    if cls in (collections.OrderedDict, dict, list, set):
        return cls.__new__(cls)
    raise pickle.UnpicklingError(f"cannot build {cls!r}")


def _safe_globals() -> dict[tuple[str, str], Any]:
    """The only real callables a downloaded pickle reaches: they build arrays and containers."""
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray  # numpy 2 / 1
    numeric = np._core.numeric if hasattr(np, "_core") else np.core.numeric
    found: dict[tuple[str, str], Any] = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        found[(module, "_reconstruct")] = _reconstruct
        found[(module, "scalar")] = multiarray.scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        found[(module, "_frombuffer")] = numeric._frombuffer
    found.update({
        ("numpy", "ndarray"): _NdarrayType,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "deque"): collections.deque,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "complex"): complex,
        ("builtins", "slice"): slice,
        ("builtins", "bytearray"): bytearray,
        ("builtins", "object"): object,
        ("__builtin__", "set"): set,
        ("_codecs", "encode"): _latin1_encode,
        ("copyreg", "_reconstructor"): _copyreg_reconstructor,
        ("copy_reg", "_reconstructor"): _copyreg_reconstructor,
        ("copyreg", "__newobj__"): _newobj,
    })
    return found


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    if encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise pickle.UnpicklingError(f"unexpected encoding {encoding!r}")
    return text.encode(encoding)


class _RestrictedUnpickler(pickle.Unpickler):
    safe_globals: dict[tuple[str, str], Any] = {}

    def find_class(self, module: str, name: str) -> Any:
        safe = self.safe_globals.get((module, name))
        return safe if safe is not None else _placeholder_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not supported")


def restricted_loads(data: bytes) -> Any:
    """Read a pickle without importing or calling anything it names (see :class:`Placeholder`)."""
    if not _RestrictedUnpickler.safe_globals:
        _RestrictedUnpickler.safe_globals = _safe_globals()
    return _RestrictedUnpickler(io.BytesIO(data)).load()


# What unpickling a legitimate SB3 file calls besides the real helpers above.
_ALLOWED_CALLS = {
    "builtins.getattr", "torch.device", "torch.Size", "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter", "torch.storage._load_from_bytes",
    "torch._tensor._rebuild_from_type_v2", "enum.Enum",
}
_CLOUDPICKLE_MODULES = ("cloudpickle.cloudpickle", "cloudpickle.cloudpickle_fast", "cloudpickle")
_IMPORTING_HELPERS = ("subimport", "dynamic_subimport")


def audit(obj: Any) -> list[str]:
    """What unpickling ``obj``'s pickle for real would call, beyond what SB3 files need."""
    problems: list[str] = []
    seen: set[int] = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Placeholder):
            record = item.record
            if record["callee"] is not None:
                callee = record["callee"]
                if not _builds_code_object(callee):
                    problems.append(f"call the result of {callee.describe()}")
            elif record["called"] and not _allowed_call(type(item), record["args"]):
                problems.append(f"call {type(item).describe()}{_preview(record['args'])}")
            stack.extend([*record["args"], *record["kwargs"].values(), record["state"], *record["items"],
                          *record["entries"].keys(), *record["entries"].values()])
        elif isinstance(item, dict):
            stack.extend([*item.keys(), *item.values()])
        elif isinstance(item, (list, tuple, set, frozenset, collections.deque)):
            stack.extend(item)
        elif isinstance(item, np.ndarray) and item.dtype.hasobject:
            stack.extend(item.ravel().tolist())
    return sorted(set(problems))


def _builds_code_object(callee: Placeholder) -> bool:
    # cloudpickle rebuilds functions with _builtin_type("CodeType")(...): building, not running, code
    return type(callee).module_name in _CLOUDPICKLE_MODULES and type(callee).ref_name == "_builtin_type"


def _allowed_call(placeholder: type[Placeholder], args: tuple) -> bool:
    module, name = placeholder.module_name, placeholder.ref_name
    if f"{module}.{name}" in _ALLOWED_CALLS or module.startswith("numpy.random"):
        return True
    if module in _CLOUDPICKLE_MODULES:
        if name in _IMPORTING_HELPERS:
            return bool(args) and isinstance(args[0], str) and args[0].split(".")[0] in trusted_packages()
        return True
    # Constructing a class (by convention capitalised) of an installed, trusted package: an Enum
    # member lookup, a NamedTuple, a space. Functions of those packages (torch.load, ...) are refused.
    return module.split(".")[0] in trusted_packages() and name[:1].isupper()


def _preview(args: tuple) -> str:
    text = repr(tuple(arg for arg in args if isinstance(arg, (str, int, float, bytes))))
    return f"{text[:60]}..." if len(text) > 60 else text


class NotData(ValueError):
    """The value holds objects (placeholders), not plain data."""


def materialize(value: Any, *, classes: tuple[type, ...] = ()) -> Any:
    """``value`` as plain Python/numpy data; a placeholder for a class is replaced by the installed
    class when it is a subclass of one of ``classes`` in a trusted package, else :class:`NotData`."""
    if isinstance(value, type) and issubclass(value, Placeholder):
        resolved = resolve_class(value.module_name, value.ref_name, classes)
        if resolved is None:
            raise NotData(value.describe())
        return resolved
    if isinstance(value, Placeholder):
        raise NotData(type(value).describe())
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise NotData("an array of Python objects")
        return value
    if isinstance(value, collections.OrderedDict):
        return collections.OrderedDict((materialize(k, classes=classes), materialize(v, classes=classes))
                                       for k, v in value.items())
    if isinstance(value, dict):
        return {materialize(k, classes=classes): materialize(v, classes=classes) for k, v in value.items()}
    if isinstance(value, collections.deque):
        return collections.deque((materialize(v, classes=classes) for v in value), maxlen=value.maxlen)
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(materialize(v, classes=classes) for v in value)
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.generic, np.dtype, slice)):
        return value
    raise NotData(type(value).__name__)


def resolve_class(module: str, name: str, bases: tuple[type, ...]) -> type | None:
    """The installed class ``module.name`` if it lives in a trusted package and subclasses ``bases``."""
    if not bases or module.split(".")[0] not in trusted_packages():
        return None
    try:
        target: Any = importlib.import_module(module)
        for part in name.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        return None
    return target if isinstance(target, type) and issubclass(target, bases) else None


# ---------------------------------------------------------------------------------------------
# SB3 model zips


def _policy_bases() -> tuple[type, ...]:
    from stable_baselines3.common.policies import BasePolicy

    return (BasePolicy,)


def _config_class_bases() -> tuple[type, ...]:
    """Classes a config or ``policy_kwargs`` may name."""
    import gymnasium as gym
    import torch
    from stable_baselines3.common.buffers import BaseBuffer
    from stable_baselines3.common.noise import ActionNoise
    from stable_baselines3.common.policies import BasePolicy
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from stable_baselines3.common.vec_env import VecEnvWrapper

    return (torch.nn.Module, torch.optim.Optimizer, BasePolicy, BaseFeaturesExtractor, BaseBuffer, ActionNoise,
            gym.Wrapper, VecEnvWrapper)


def read_model_zip(path: Path, *, device: Any = "cpu", source: str = "") -> tuple[dict, dict, dict, Any]:
    """``(plain data, restricted-read objects, state dicts, pytorch variables)`` of an SB3 zip."""
    import torch

    where = f"{Path(path).name}{f' from {source}' if source else ''}"
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise UnsafeAgentError(f"{where} is not a zip file: not a Stable-Baselines3 model") from None
    with archive:
        names = archive.namelist()
        if "data" not in names:
            raise UnsafeAgentError(f"{where} has no 'data' entry: not a Stable-Baselines3 model")
        try:
            stored = json.loads(archive.read("data"))
        except json.JSONDecodeError as error:
            raise UnsafeAgentError(f"the 'data' entry of {where} is not valid JSON ({error})") from None
        params: dict[str, Any] = {}
        pytorch_variables = None
        for name in names:
            if not name.endswith(".pth"):
                continue
            try:
                tensors = torch.load(io.BytesIO(archive.read(name)), map_location=device, weights_only=True)
            except pickle.UnpicklingError as error:
                first_line = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
                raise unsafe(f"{name} in {where}", f"holds more than tensors ({first_line})") from None
            except Exception as error:  # truncated or not a torch file
                raise UnsafeAgentError(f"{name} in {where} cannot be read as tensors ({error})") from None
            if name in ("pytorch_variables.pth", "tensors.pth"):
                pytorch_variables = tensors
            else:
                params[name[: -len(".pth")]] = tensors
    plain: dict[str, Any] = {}
    objects: dict[str, Any] = {}
    problems = []
    for key, item in stored.items():
        if not (isinstance(item, dict) and ":serialized:" in item):
            plain[key] = item
            continue
        try:
            loaded = restricted_loads(base64.b64decode(item[":serialized:"]))
        except Exception as error:  # a malformed or hostile pickle: report, never fall back to pickle
            problems.append(f"'{key}' cannot be read as data ({type(error).__name__}: {error})")
            continue
        found = audit(loaded)
        if found:
            problems.append(f"'{key}' would {', '.join(found)} when unpickled")
        objects[key] = loaded
    if problems:
        raise unsafe(f"The model file {where}", "is not plain data: " + "; ".join(problems))
    return plain, objects, params, pytorch_variables


def load_model(algo_class: type, path: Path, env: Any, *, config: Any = None, device: Any = "auto",
               source: str = "") -> Any:
    """Rebuild the agent of an SB3 zip without unpickling anything from it (see the module docstring).

    :param config: the run's :class:`~rlhub.config.ZooConfig`, for the policy, ``policy_kwargs``,
        schedules and other objects the zip pickles
    """
    from stable_baselines3.common.save_util import recursive_setattr
    from stable_baselines3.common.utils import get_device

    device = get_device(device)
    plain, objects, params, pytorch_variables = read_model_zip(path, device=device, source=source)
    hyperparams = dict(config.hyperparams) if config is not None else {}
    where = f"{Path(path).name}{f' from {source}' if source else ''}"

    policy: Any = None
    if "policy_class" in objects:
        try:
            policy = materialize(objects["policy_class"], classes=_policy_bases())
        except NotData:
            policy = None
    if policy is None:
        policy = config.policy if config is not None else "MlpPolicy"

    if "policy_kwargs" in plain:
        policy_kwargs = plain["policy_kwargs"]
    elif "policy_kwargs" in objects:
        try:
            policy_kwargs = materialize(objects["policy_kwargs"], classes=_config_class_bases())
        except NotData as error:
            if "policy_kwargs" not in hyperparams:
                raise unsafe(f"policy_kwargs in {where}", f"names {error}, which is not an installed class of a "
                             "trusted package, and no config.yml gives policy_kwargs") from None
            policy_kwargs = hyperparams["policy_kwargs"]
    else:
        policy_kwargs = hyperparams.get("policy_kwargs") or {}
    policy_kwargs = {key: value for key, value in dict(policy_kwargs or {}).items() if key != "device"}
    net_arch = policy_kwargs.get("net_arch")
    if isinstance(net_arch, list) and net_arch and isinstance(net_arch[0], dict):  # SB3 < 1.8, as SB3's load
        policy_kwargs["net_arch"] = net_arch[0]
    hyperparams.pop("policy_kwargs", None)

    updates = dict(plain)
    for key, loaded in objects.items():
        if key in ("policy_class", "policy_kwargs", "observation_space", "action_space"):
            continue  # taken from installed classes and the environment above
        try:
            updates[key] = materialize(loaded)
        except NotData:
            pass  # an object (schedule, buffer class, ...): the constructor builds it from the config
    # As SB3's load: construct, then take the saved attributes; the config supplies only what the
    # zip holds as objects (schedules, classes, noise), so the constructor sees the run's values.
    from_config = {key: value for key, value in hyperparams.items() if key not in updates}
    model = algo_class(policy=policy, env=env, device=device, _init_setup_model=False, **from_config)
    updates.update(policy_kwargs=policy_kwargs, n_envs=env.num_envs, _last_obs=None)
    for key in ("observation_space", "action_space", "policy_class", "device", "env"):
        updates.pop(key, None)
    model.__dict__.update(updates)
    model._setup_model()
    try:
        model.set_parameters(params, exact_match=True, device=device)
    except (RuntimeError, ValueError, KeyError) as error:
        raise UnsafeAgentError(
            f"the weights in {where} do not fit a {algo_class.__name__} built for {env.observation_space} / "
            f"{env.action_space} with policy_kwargs {policy_kwargs}: {error}"
        ) from None
    for name, value in (pytorch_variables or {}).items():
        if value is not None:
            recursive_setattr(model, f"{name}.data", value.data)
    if getattr(model, "use_sde", False):
        model.policy.reset_noise()
    return model


# ---------------------------------------------------------------------------------------------
# VecNormalize statistics


def read_vec_normalize(path: Path, *, source: str = "") -> dict[str, Any]:
    """The statistics and settings saved in a ``vec_normalize.pkl``, read without unpickling it."""
    where = f"{Path(path).name}{f' from {source}' if source else ''}"
    try:
        loaded = restricted_loads(Path(path).read_bytes())
    except Exception as error:
        raise unsafe(where, f"cannot be read as data ({type(error).__name__}: {error})") from None
    found = audit(loaded)
    if found:
        raise unsafe(where, f"would {', '.join(found)} when unpickled")
    if not (isinstance(loaded, Placeholder) and type(loaded).ref_name == "VecNormalize"
            and isinstance(loaded.record["state"], dict)):
        kind = type(loaded).describe() if isinstance(loaded, Placeholder) else type(loaded).__name__
        raise unsafe(where, f"holds a {kind}, not VecNormalize statistics")
    state = loaded.record["state"]

    def statistics(value: Any, name: str) -> dict[str, Any]:
        inner = value.record["state"] if isinstance(value, Placeholder) else None
        if isinstance(value, Placeholder) and type(value).ref_name == "RunningMeanStd" and isinstance(inner, dict):
            try:
                return {key: materialize(inner[key]) for key in ("mean", "var", "count")}
            except (KeyError, NotData):
                pass
        raise unsafe(where, f"has no readable {name} statistics")

    obs_rms = state.get("obs_rms")
    settings = {key: state[key] for key in ("norm_obs", "norm_reward", "clip_obs", "clip_reward", "gamma", "epsilon",
                                            "norm_obs_keys") if key in state}
    try:
        settings = materialize(settings)
    except NotData:
        raise unsafe(where, "has settings that are not plain values") from None
    if isinstance(obs_rms, dict):
        settings["obs_rms_by_key"] = {key: statistics(value, f"observation[{key}]") for key, value in obs_rms.items()}
    elif obs_rms is not None:
        settings["obs_rms"] = statistics(obs_rms, "observation")
    settings["ret_rms"] = statistics(state["ret_rms"], "return") if state.get("ret_rms") is not None else None
    return settings


def wrap_vec_normalize(env: Any, stats: dict[str, Any]) -> Any:
    """``VecNormalize`` around ``env`` with the saved statistics, frozen (as for evaluation)."""
    from stable_baselines3.common.running_mean_std import RunningMeanStd
    from stable_baselines3.common.vec_env import VecNormalize

    kwargs = {key: stats[key] for key in ("norm_obs", "clip_obs", "clip_reward", "gamma", "epsilon", "norm_obs_keys")
              if key in stats}
    wrapped = VecNormalize(env, training=False, norm_reward=False, **kwargs)

    def running(values: dict[str, Any], expected_shape: Any) -> RunningMeanStd:
        rms = RunningMeanStd(shape=np.shape(values["mean"]))
        rms.mean = np.asarray(values["mean"], dtype=np.float64)
        rms.var = np.asarray(values["var"], dtype=np.float64)
        rms.count = float(values["count"])
        if expected_shape is not None and rms.mean.shape != tuple(expected_shape):
            raise UnsafeAgentError(f"the VecNormalize statistics have shape {rms.mean.shape}, "
                                   f"the environment's observations {tuple(expected_shape)}")
        return rms

    if wrapped.norm_obs and "obs_rms_by_key" in stats:
        wrapped.obs_rms = {key: running(values, env.observation_space[key].shape)
                           for key, values in stats["obs_rms_by_key"].items()}
    elif wrapped.norm_obs and "obs_rms" in stats:
        wrapped.obs_rms = running(stats["obs_rms"], env.observation_space.shape)
    if stats.get("ret_rms") is not None:
        wrapped.ret_rms = running(stats["ret_rms"], None)
    return wrapped


# ---------------------------------------------------------------------------------------------
# Config files


class _ZooYamlLoader(yaml.SafeLoader):
    """YAML's safe loader plus the two Python tags the RL Zoo's ``config.yml`` uses (as data)."""


def _ordered_dict(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    (pairs,) = loader.construct_sequence(node, deep=True)
    return {key: value for key, value in pairs}


_ZooYamlLoader.add_constructor("tag:yaml.org,2002:python/object/apply:collections.OrderedDict", _ordered_dict)
_ZooYamlLoader.add_constructor("tag:yaml.org,2002:python/tuple",
                               lambda loader, node: tuple(loader.construct_sequence(node, deep=True)))


def read_yaml(path: Path, *, trust_remote_code: bool = False) -> Any:
    """A YAML file as data; with ``trust_remote_code`` any Python tag, as the RL Zoo reads it."""
    text = Path(path).read_text()
    try:
        return yaml.load(text, Loader=yaml.UnsafeLoader if trust_remote_code else _ZooYamlLoader)
    except yaml.constructor.ConstructorError as error:
        raise unsafe(f"{Path(path).name}", f"uses a Python tag rlhub reads only as code ({error.problem})") from None
    except yaml.YAMLError as error:
        from rlhub.config import ConfigError

        raise ConfigError(f"{path} is not valid YAML: {error}") from None


#: Keys of a config section that name classes to import (besides the keys rlhub.config resolves).
_PATH_KEYS = ("policy", "env_wrapper", "vec_env_wrapper")
_RECORDING = ("Record", "Video", "Monitor")  # wrappers that write files where the config says


def check_config_section(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """A downloaded config section with what playing needs, naming only trusted classes.

    Callbacks are dropped (enjoy never trains); every import path must be in a trusted package.
    """
    from rlhub.config import _ALIASES, _CLASS_KEYS, _SHORT_NAMES, _entries

    section = {key: value for key, value in raw.items() if key != "callback"}
    paths: list[tuple[str, str]] = []

    def collect_expression(key: str, value: Any) -> None:
        if isinstance(value, str):
            try:
                tree = ast.parse(value.strip(), mode="eval")
            except SyntaxError:
                return  # rlhub.config reports it
            paths.extend((key, ast.unparse(node)) for node in ast.walk(tree)
                         if isinstance(node, (ast.Name, ast.Attribute)) and not isinstance(node.ctx, ast.Del)
                         and not (isinstance(node, ast.Name) and node.id in ("dict", "True", "False", "None")))
        elif isinstance(value, dict):
            for name, item in value.items():
                if name in _CLASS_KEYS and isinstance(item, str):
                    paths.append((f"{key}.{name}", item))
                elif isinstance(item, (dict, str)) and (name.endswith("_kwargs") or name in _CLASS_KEYS):
                    collect_expression(f"{key}.{name}", item)

    for key, value in section.items():
        if key == "policy" and isinstance(value, str) and "." in value:
            paths.append((key, value))
        elif key in ("env_wrapper", "vec_env_wrapper"):
            paths.extend((key, path) for path, _ in _entries(value))
        elif key in _CLASS_KEYS and isinstance(value, str):
            paths.append((key, value))
        elif key.endswith("_kwargs") or key == "normalize":
            collect_expression(key, value)
    for key, path in paths:
        # Attribute chains inside expressions yield every prefix (nn, nn.ReLU): check the top level.
        path = _SHORT_NAMES.get(path, path)
        head = path.replace(":", ".").split(".")[0]
        top = _ALIASES.get(head, head).split(".")[0]
        if top not in trusted_packages():
            raise unsafe(f"{where}, key {key!r}", f"names {path!r}, outside the packages a downloaded config may "
                         f"use ({', '.join(sorted(trusted_packages()))})")
        if key in ("env_wrapper", "vec_env_wrapper") and any(word in path for word in _RECORDING):
            raise unsafe(f"{where}, key {key!r}", f"names {path!r}, a wrapper that writes files")
    return section


def check_resolved_config(config: Any, where: str) -> None:
    """Every class a resolved downloaded config names is of a kind configs may name."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import VecEnvWrapper

    from rlhub.config import WrapperChain

    bases = _config_class_bases()
    for chain, base in ((config.env_wrapper, gym.Wrapper), (config.vec_env_wrapper, VecEnvWrapper)):
        if isinstance(chain, WrapperChain):
            for wrapper, _ in chain.wrappers:
                if not (isinstance(wrapper, type) and issubclass(wrapper, base)):
                    raise unsafe(f"{where}", f"names {wrapper!r} as a wrapper, which is not a {base.__name__}")
    if not isinstance(config.policy, str) and not issubclass(config.policy, _policy_bases()):
        raise unsafe(f"{where}", f"names {config.policy!r} as the policy, which is not an SB3 policy class")
    stack: list[Any] = list(config.hyperparams.values())
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
        elif isinstance(value, type):
            if not issubclass(value, bases):
                raise unsafe(f"{where}", f"names {value!r}, which is not a class a config may name")
        elif callable(value) and type(value).__module__.split(".")[0] not in ("stable_baselines3", "rlhub"):
            raise unsafe(f"{where}", f"holds the callable {value!r}")


def is_safe_env_module(module: str) -> bool:
    """Whether a downloaded ``module:EnvId`` may import ``module``: an installed third-party package.

    The standard library is refused (modules like ``antigravity`` act on import).
    """
    import importlib.util

    top = module.split(".")[0]
    if top in sys.stdlib_module_names:
        return False
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def config_section(document: Any, env_id: str) -> tuple[str, dict[str, Any]]:
    """``(section name, section)`` of a config: rlhub's ``{env_id: section}`` or the RL Zoo's flat one."""
    if not isinstance(document, dict):
        from rlhub.config import ConfigError

        raise ConfigError(f"a config file must hold a mapping of hyperparameters, not {type(document).__name__}")
    for key in (env_id, env_id.split(":", 1)[-1], "default"):
        if isinstance(document.get(key), dict):
            return key, dict(document[key])
    return env_id, dict(document)


def load_config(path: Path, algo_id: str, env_id: str, algo_class: type) -> Any:
    """A downloaded config as a :class:`~rlhub.config.ZooConfig`, read and checked as data."""
    from rlhub.config import resolve_section

    name, section = config_section(read_yaml(path), env_id)
    where = f"{Path(path).name}, env {name}"
    section = check_config_section(section, where)
    config = resolve_section(algo_id, env_id, algo_class, section, source=Path(path), section=name)
    check_resolved_config(config, where)
    return config
