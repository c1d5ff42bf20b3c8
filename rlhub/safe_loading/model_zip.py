"""Stable-Baselines3 model zips read as data, and the agent rebuilt from them without unpickling.

A model zip holds a ``data`` JSON (plain values, and objects as base64 cloudpickles) and tensor files
(``policy.pth``, ...) written by ``torch.save``. The JSON's pickles go through the restricted reader
(:mod:`.pickles`); the tensor files through ``torch.load(..., weights_only=True)``, after their own
table of contents and pickle have been checked. Every member is read within the limits.
"""

from __future__ import annotations

import base64
import io
import pickle
from pathlib import Path
from typing import Any

from rlhub.safe_loading.archives import (
    ByteBudget,
    check_declared_sizes,
    open_zip,
    parse_json,
    read_member,
    tensor_file_pickles,
)
from rlhub.safe_loading.errors import (
    ResourceLimitError,
    UnsafeAgentError,
    describe_file,
    unsafe,
)
from rlhub.safe_loading.imports import config_class_bases, policy_bases
from rlhub.safe_loading.limits import limits
from rlhub.safe_loading.pickles import (
    NotData,
    PickleBudget,
    audit,
    materialize,
    restricted_loads,
    scan_tensor_pickle,
    summarize,
)

#: Tensor files SB3 stores variables (not state dicts) in.
_VARIABLE_FILES = ("pytorch_variables.pth", "tensors.pth")


def read_model_zip(path: Path, *, device: Any = "cpu", source: str = "") -> tuple[dict, dict, dict, Any]:
    """``(plain data, restricted-read objects, state dicts, pytorch variables)`` of an SB3 zip."""
    where = describe_file(path, source)
    caps = limits()
    with open_zip(path, where) as archive:
        names = archive.namelist()
        if "data" not in names:
            raise UnsafeAgentError(f"{where} has no 'data' entry: not a Stable-Baselines3 model")
        check_declared_sizes(archive, where, total=caps.zip_bytes)
        budget = ByteBudget(caps.zip_bytes, where)
        stored = parse_json(read_member(archive, "data", where, limit=caps.model_data_bytes, budget=budget),
                            f"the 'data' entry of {where}")
        if not isinstance(stored, dict):
            raise UnsafeAgentError(f"the 'data' entry of {where} is not a mapping: not a Stable-Baselines3 model")
        params: dict[str, Any] = {}
        pytorch_variables = None
        for name in names:
            if name.endswith(".pth"):
                tensors = _load_tensors(read_member(archive, name, where, limit=caps.file_bytes, budget=budget),
                                        f"{name} in {where}", device)
                if name in _VARIABLE_FILES:
                    pytorch_variables = tensors
                else:
                    params[name[: -len(".pth")]] = tensors
    plain, objects = _read_data(stored, where)
    return plain, objects, params, pytorch_variables


def _read_data(stored: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``data`` entry split into plain values and restricted-read objects (one budget for all)."""
    plain: dict[str, Any] = {}
    objects: dict[str, Any] = {}
    problems = []
    budget = PickleBudget(f"The model file {where}")
    for key, item in stored.items():
        if not (isinstance(item, dict) and ":serialized:" in item):
            plain[key] = item
            continue
        try:
            loaded = restricted_loads(base64.b64decode(item[":serialized:"]), budget=budget)
        except ResourceLimitError:
            raise
        except Exception as error:  # noqa: BLE001  # malformed or hostile: report, never fall back to pickle
            problems.append(f"'{key[:100]}' cannot be read as data ({type(error).__name__}: {str(error)[:200]})")
            continue
        found = audit(loaded)
        if found:
            problems.append(f"'{key[:100]}' would {summarize(found)} when unpickled")
        objects[key] = loaded
    if problems:
        raise unsafe(f"The model file {where}", "is not plain data: " + summarize(problems))
    return plain, objects


def _load_tensors(data: bytes, where: str, device: Any) -> Any:
    """A tensor file of the zip, checked (table of contents, pickle) before ``torch.load`` sees it."""
    import torch

    for tensor_pickle in tensor_file_pickles(data, where):
        scan_tensor_pickle(tensor_pickle, where)
    try:
        tensors = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        first_line = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise unsafe(where, f"holds more than tensors ({first_line[:200]})") from None
    except Exception as error:  # noqa: BLE001  # truncated or not a torch file
        raise UnsafeAgentError(f"{where} cannot be read as tensors ({str(error)[:200]})") from None
    _check_tensor_sizes(tensors, where)
    return tensors


def _check_tensor_sizes(loaded: Any, where: str) -> None:
    """Each tensor within the array limit: a view can claim more elements than its storage holds."""
    import torch

    cap = limits().array_bytes
    seen: set[int] = set()
    stack = [loaded]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, torch.Tensor):
            cap.check(item.numel() * item.element_size(), where)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def load_model(algo_class: type, path: Path, env: Any, *, config: Any = None, device: Any = "auto",
               source: str = "", overrides: dict[str, Any] | None = None) -> Any:
    """Rebuild the agent of an SB3 zip without unpickling anything from it (see :mod:`rlhub.safe_loading`).

    :param config: the run's :class:`~rlhub.config.ZooConfig`, for the policy, ``policy_kwargs``,
        schedules and other objects the zip pickles
    :param overrides: attributes to set after loading, as the keyword arguments of SB3's
        ``load(path, env, **kwargs)`` (``policy_kwargs`` among them is ignored: the weights fix it)
    """
    from stable_baselines3.common.save_util import recursive_setattr
    from stable_baselines3.common.utils import get_device

    device = get_device(device)
    plain, objects, params, pytorch_variables = read_model_zip(path, device=device, source=source)
    hyperparams = dict(config.hyperparams) if config is not None else {}
    where = describe_file(path, source)

    policy: Any = None
    if "policy_class" in objects:
        try:
            policy = materialize(objects["policy_class"], classes=policy_bases(), where=where)
        except NotData:
            policy = None
    if policy is None:
        policy = config.policy if config is not None else "MlpPolicy"

    policy_kwargs = _policy_kwargs(plain, objects, hyperparams, where)
    _check_architecture(policy_kwargs, params, where)
    # The algorithm's own networks (a discriminator's ``disc_net_arch``, a curiosity module's
    # ``features_dim``) are held to the same bound; a ``*_dim`` may also feed a layer of its own width.
    settings = {**hyperparams, **plain}  # the zip's values, else the config's, as the constructor gets them
    own = {key: value for key, value in settings.items() if key.endswith("net_arch")}
    own.update({key: [value, value] for key, value in settings.items() if key.endswith("_dim")})
    _check_architecture(own, params, where, what="the algorithm's network settings")
    hyperparams.pop("policy_kwargs", None)
    hyperparams.pop("dataset", None)  # an offline agent acts without its dataset (rlhub.datasets)

    updates = dict(plain)
    for key, loaded in objects.items():
        if key in ("policy_class", "policy_kwargs", "observation_space", "action_space"):
            continue  # taken from installed classes and the environment above
        try:
            updates[key] = materialize(loaded, where=f"'{key}' in {where}")
        except NotData:
            pass  # an object (schedule, buffer class, ...): the constructor builds it from the config
    # As SB3's load: construct, then take the saved attributes; the config supplies only what the
    # zip holds as objects (schedules, classes, noise), so the constructor sees the run's values.
    from_config = {key: value for key, value in hyperparams.items() if key not in updates}
    updates.update(policy_kwargs=policy_kwargs, n_envs=env.num_envs, _last_obs=None)
    for key in ("observation_space", "action_space", "policy_class", "device", "env"):
        updates.pop(key, None)
    updates.update({key: value for key, value in (overrides or {}).items() if key != "policy_kwargs"})
    _check_rollout_size(updates, env, where)
    try:
        model = algo_class(policy=policy, env=env, device=device, _init_setup_model=False, **from_config)
        model.__dict__.update(updates)
        model._setup_model()
    # The saved values are the file's to choose (a buffer size of 10 ** 12, a string for a number),
    # and SB3 answers them with any kind of error.
    except Exception as error:  # noqa: BLE001
        raise UnsafeAgentError(f"the settings in {where} do not build a {algo_class.__name__} "
                               f"({type(error).__name__}: {str(error)[:200]})") from None
    try:
        model.set_parameters(params, exact_match=True, device=device)
    except Exception as error:  # noqa: BLE001  # shapes, names or types that do not fit
        raise UnsafeAgentError(
            f"the weights in {where} do not fit a {algo_class.__name__} built for {env.observation_space} / "
            f"{env.action_space} with policy_kwargs {policy_kwargs}: {str(error)[:500]}"
        ) from None
    for name, value in (pytorch_variables or {}).items():
        if value is None:
            continue
        try:  # as SB3's load; a variable the algorithm does not have is a damaged or foreign file
            recursive_setattr(model, f"{name}.data", value.data)
        except (AttributeError, TypeError, RuntimeError) as error:
            raise UnsafeAgentError(f"the variable {name!r} in {where} does not fit a {algo_class.__name__}: "
                                   f"{str(error)[:200]}") from None
    if getattr(model, "use_sde", False):
        model.policy.reset_noise()
    return model


def _policy_kwargs(plain: dict[str, Any], objects: dict[str, Any], hyperparams: dict[str, Any],
                   where: str) -> dict[str, Any]:
    """The zip's ``policy_kwargs`` (classes resolved from installed, allow-listed packages), else the config's."""
    if "policy_kwargs" in plain:
        policy_kwargs = plain["policy_kwargs"]
    elif "policy_kwargs" in objects:
        try:
            policy_kwargs = materialize(objects["policy_kwargs"], classes=config_class_bases(),
                                        where=f"'policy_kwargs' in {where}")
        except NotData as error:
            if "policy_kwargs" not in hyperparams:
                raise unsafe(f"policy_kwargs in {where}", f"names {error}, which is not an installed class of a "
                             "trusted package, and no config.yml gives policy_kwargs") from None
            policy_kwargs = hyperparams["policy_kwargs"]
    else:
        policy_kwargs = hyperparams.get("policy_kwargs") or {}
    policy_kwargs = policy_kwargs or {}
    if not isinstance(policy_kwargs, dict):
        raise unsafe(f"policy_kwargs in {where}", "is not a mapping")
    policy_kwargs = {key: value for key, value in policy_kwargs.items() if key != "device"}
    net_arch = policy_kwargs.get("net_arch")
    if isinstance(net_arch, list) and net_arch and isinstance(net_arch[0], dict):  # SB3 < 1.8, as SB3's load
        policy_kwargs["net_arch"] = net_arch[0]
    return policy_kwargs


def _check_architecture(policy_kwargs: dict[str, Any], params: dict[str, Any], where: str,
                        what: str = "policy_kwargs") -> None:
    """Refuse ``policy_kwargs`` that describe a network larger than the weights the zip holds.

    SB3 builds and initialises the network before the saved weights are compared with it, so a
    hostile ``net_arch: [20000, 20000]`` would cost gigabytes first. Every layer width, and every
    product of adjacent widths (a hidden-to-hidden weight matrix), is at most the number of saved
    values in a legitimate zip: each unit and each weight of the network is saved.
    """
    saved = sum(int(tensor.numel()) for state in params.values() if isinstance(state, dict)
                for tensor in state.values() if hasattr(tensor, "numel"))

    def widths(value: Any) -> list[list[int]]:
        if isinstance(value, dict):
            return [layer for item in value.values() for layer in widths(item)]
        if isinstance(value, (list, tuple)):
            ints = [item for item in value if isinstance(item, int) and not isinstance(item, bool)]
            return [ints] + [layer for item in value if isinstance(item, (list, tuple, dict)) for layer in widths(item)]
        if isinstance(value, int) and not isinstance(value, bool):
            return [[value]]
        return []

    for layers in widths(policy_kwargs):
        sizes = [*layers, *(a * b for a, b in zip(layers, layers[1:]))]
        if sizes and max(sizes) > max(saved, 1):
            raise unsafe(f"{what} in {where}", f"describe a network larger than the {saved:,} values its "
                         f"weights hold ({max(sizes):,} in one layer): the zip is damaged or hostile")


def _check_rollout_size(updates: dict[str, Any], env: Any, where: str) -> None:
    """Refuse an ``n_steps`` whose rollout buffer would be over the array cap: ``_setup_model``
    allocates it (observations, actions and four per-step values) before anything else is checked."""
    import numpy as np

    # A composite algorithm (GAIL's generator) keeps its inner algorithm's settings in a dict of its own.
    inner = [value.get("n_steps") for value in updates.values() if isinstance(value, dict)]
    spaces = [env.action_space, *getattr(env.observation_space, "spaces", {"": env.observation_space}).values()]
    per_step = sum(int(np.prod(space.shape or (1,))) for space in spaces) + 4
    for n_steps in [updates.get("n_steps"), *inner]:
        if isinstance(n_steps, int) and not isinstance(n_steps, bool):
            limits().array_bytes.check(n_steps * env.num_envs * per_step * 4, f"the rollout buffer n_steps in {where} "
                                       "asks for; it")

