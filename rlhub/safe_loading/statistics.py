"""VecNormalize statistics (``vec_normalize.pkl``) read as numbers, and applied to an environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rlhub.safe_loading.archives import read_file_bounded
from rlhub.safe_loading.errors import (
    ResourceLimitError,
    UnsafeAgentError,
    describe_file,
    unsafe,
)
from rlhub.safe_loading.limits import limits
from rlhub.safe_loading.pickles import (
    NotData,
    Placeholder,
    audit,
    materialize,
    restricted_loads,
    summarize,
)

#: VecNormalize's settings: (name, the types its value may have).
_SETTINGS = {"norm_obs": (bool,), "norm_reward": (bool,), "clip_obs": (int, float), "clip_reward": (int, float),
             "gamma": (int, float), "epsilon": (int, float), "norm_obs_keys": (list, type(None))}


def read_vec_normalize(path: Path, *, source: str = "") -> dict[str, Any]:
    """The statistics and settings saved in a ``vec_normalize.pkl``, read without unpickling it."""
    where = describe_file(path, source)
    data = read_file_bounded(path, limits().file_bytes, where)
    try:
        loaded = restricted_loads(data, where=where)
    except ResourceLimitError:
        raise
    except Exception as error:  # noqa: BLE001  # malformed or hostile: report, never fall back to pickle
        raise unsafe(where, f"cannot be read as data ({type(error).__name__}: {str(error)[:200]})") from None
    found = audit(loaded)
    if found:
        raise unsafe(where, f"would {summarize(found)} when unpickled")
    if not (isinstance(loaded, Placeholder) and type(loaded).ref_name == "VecNormalize"
            and isinstance(loaded.state, dict)):
        kind = type(loaded).describe() if isinstance(loaded, Placeholder) else type(loaded).__name__
        raise unsafe(where, f"holds a {kind}, not VecNormalize statistics")
    state = loaded.state

    settings = _settings(state, where)
    obs_rms = state.get("obs_rms")
    if isinstance(obs_rms, dict):
        settings["obs_rms_by_key"] = {key: _statistics(value, f"observation[{key}]", where)
                                      for key, value in obs_rms.items()}
    elif obs_rms is not None:
        settings["obs_rms"] = _statistics(obs_rms, "observation", where)
    ret_rms = state.get("ret_rms")
    settings["ret_rms"] = _statistics(ret_rms, "return", where) if ret_rms is not None else None
    return settings


def _settings(state: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        settings = materialize({key: state[key] for key in _SETTINGS if key in state}, where=where)
    except NotData:
        raise unsafe(where, "has settings that are not plain values") from None
    for key, value in settings.items():
        if not isinstance(value, _SETTINGS[key]) or (isinstance(value, bool) and bool not in _SETTINGS[key]):
            raise unsafe(where, f"has a {type(value).__name__} as its {key} setting")
    if not all(isinstance(key, str) for key in settings.get("norm_obs_keys") or ()):
        raise unsafe(where, "has norm_obs_keys that are not names")
    return settings


def _statistics(value: Any, name: str, where: str) -> dict[str, Any]:
    """A RunningMeanStd's mean, var and count, as float64 arrays and a number."""
    state = value.state if isinstance(value, Placeholder) else None
    if isinstance(value, Placeholder) and type(value).ref_name == "RunningMeanStd" and isinstance(state, dict):
        try:
            found = materialize({key: state[key] for key in ("mean", "var", "count")}, where=where)
            mean = np.asarray(found["mean"], dtype=np.float64)
            var = np.asarray(found["var"], dtype=np.float64)
            count = float(found["count"])
        except (KeyError, NotData, TypeError, ValueError, OverflowError):
            pass
        else:
            if mean.shape == var.shape:
                return {"mean": mean, "var": var, "count": count}
    raise unsafe(where, f"has no readable {name} statistics")


def _running(values: dict[str, Any], expected_shape: Any) -> Any:
    from stable_baselines3.common.running_mean_std import RunningMeanStd

    rms = RunningMeanStd(shape=np.shape(values["mean"]))
    rms.mean = np.asarray(values["mean"], dtype=np.float64)
    rms.var = np.asarray(values["var"], dtype=np.float64)
    rms.count = float(values["count"])
    if expected_shape is not None and rms.mean.shape != tuple(expected_shape):
        raise UnsafeAgentError(f"the VecNormalize statistics have shape {rms.mean.shape}, "
                               f"the environment's observations {tuple(expected_shape)}")
    return rms


def _set_statistics(wrapped: Any, env: Any, stats: dict[str, Any]) -> None:
    if wrapped.norm_obs and "obs_rms_by_key" in stats:
        wrapped.obs_rms = {key: _running(values, env.observation_space[key].shape)
                           for key, values in stats["obs_rms_by_key"].items()}
    elif wrapped.norm_obs and "obs_rms" in stats:
        wrapped.obs_rms = _running(stats["obs_rms"], env.observation_space.shape)
    if stats.get("ret_rms") is not None:
        wrapped.ret_rms = _running(stats["ret_rms"], None)


def wrap_vec_normalize(env: Any, stats: dict[str, Any]) -> Any:
    """``VecNormalize`` around ``env`` with the saved statistics, frozen (as for evaluation)."""
    from stable_baselines3.common.vec_env import VecNormalize

    kwargs = {key: stats[key] for key in ("norm_obs", "clip_obs", "clip_reward", "gamma", "epsilon", "norm_obs_keys")
              if key in stats}
    wrapped = VecNormalize(env, training=False, norm_reward=False, **kwargs)
    _set_statistics(wrapped, env, stats)
    return wrapped


def restore_statistics(env: Any, stats: dict[str, Any]) -> None:
    """Put saved statistics and settings into the ``VecNormalize`` of ``env`` (to continue training),
    as ``VecNormalize.load`` would; whether it is training stays as it is."""
    from stable_baselines3.common.vec_env import unwrap_vec_normalize

    normalizer = unwrap_vec_normalize(env)
    if normalizer is None:
        raise ValueError("the environment has no VecNormalize to restore statistics into")
    for key in ("norm_obs", "norm_reward", "clip_obs", "clip_reward", "gamma", "epsilon", "norm_obs_keys"):
        if key in stats:
            setattr(normalizer, key, stats[key])
    _set_statistics(normalizer, normalizer.venv, stats)
