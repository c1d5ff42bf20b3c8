"""Run folders (``logs/<algo_id>/<env>_<n>/``) and the ``rlhub.json`` manifest they hold.

The manifest names everything needed to rebuild an agent, so enjoy, push-to-hub and the Hub loader
never have to guess which class made it.
"""

from __future__ import annotations

import base64
import errno
import json
import math
import os
import re
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

MANIFEST_NAME = "rlhub.json"
CONFIG_NAME = "config.yml"
VEC_NORMALIZE_NAME = "vec_normalize.pkl"
BEST_MODEL_NAME = "best_model.zip"
BEST_VEC_NORMALIZE_NAME = "best_vec_normalize.pkl"
CHECKPOINT_PREFIX = "rl_model"
REPLAY_BUFFER_NAME = "replay_buffer.pkl"
#: the reward an algorithm learned (AIRL), as rlhub.common.learned_reward writes it
REWARD_MODEL_NAME = "reward_model.pt"
MANIFEST_FORMAT = 1
MANIFEST_MAX_BYTES = 1 << 20  # a manifest is a few hundred bytes; a larger one is not rlhub's


class RunFolderError(FileNotFoundError):
    """A run folder, or a file expected in it, is missing or malformed."""


#: A name that is one path component and nothing else: no separators, no "..", no leading dot.
_FILE_NAME = re.compile(r"[A-Za-z0-9][\w.\-]{0,199}")
_ALGO_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CHECKPOINT_ZIP = re.compile(rf"{CHECKPOINT_PREFIX}_(\d+)_steps\.zip")
#: What a manifest's file fields may name (a downloaded manifest must not point anywhere else).
_FILE_SUFFIXES = {"model_file": (".zip",), "vec_normalize_file": (".pkl",), "config_file": (".yml", ".yaml")}


def env_name(env_id: str) -> str:
    """The environment id as a file name, as the RL Zoo and huggingface_sb3 write it."""
    return env_id.split(":", 1)[-1].replace("/", "-")


def is_file_name(name: object) -> bool:
    """Whether ``name`` is a single, ordinary path component (safe to join to a folder)."""
    return isinstance(name, str) and bool(_FILE_NAME.fullmatch(name)) and ".." not in name


@dataclass
class Manifest:
    """What ``rlhub.json`` records about an agent."""

    algo_id: str
    env_id: str
    model_file: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    plugin: str = ""
    distribution: str = ""
    distribution_version: str = ""
    algo_class: str = ""
    rlhub_version: str = ""
    sb3_version: str = ""
    vec_normalize_file: str | None = None
    config_file: str = CONFIG_NAME
    seed: int | None = None
    #: the step count the run trains its agent to (a continued run: its initial steps plus its own)
    n_timesteps: int | None = None
    #: the run folder this run continued (``--resume``, or ``-i`` with a run's model), as an absolute path
    parent_run: str | None = None
    #: the agent's step count when this run started (0 for a new agent)
    initial_timesteps: int = 0
    #: an offline or imitation run's dataset: ``{"id", "n_transitions", "n_episodes", "sha256", "mean_return"}``
    dataset: dict[str, Any] | None = None
    format_version: int = MANIFEST_FORMAT

    def write(self, run_dir: Path) -> Path:
        path = Path(run_dir) / MANIFEST_NAME
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, run_dir: Path) -> Manifest:
        path = Path(run_dir) / MANIFEST_NAME
        if not path.is_file():
            raise RunFolderError(f"{run_dir} has no {MANIFEST_NAME}: it is not an rlhub run folder")
        if path.stat().st_size > MANIFEST_MAX_BYTES:
            raise RunFolderError(f"{path} is larger than {MANIFEST_MAX_BYTES} bytes: not a manifest rlhub wrote")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
            raise RunFolderError(f"{path} is not valid JSON ({type(error).__name__}: {error}); the run folder is "
                                 "damaged") from None
        if not isinstance(data, dict):
            raise RunFolderError(f"{path} must hold a JSON object, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        missing = {"algo_id", "env_id", "model_file"} - data.keys()
        if missing:
            raise RunFolderError(f"{path} lacks {', '.join(sorted(missing))}; the run folder is damaged")
        version = data.get("format_version", MANIFEST_FORMAT)
        if isinstance(version, int) and version > MANIFEST_FORMAT:
            raise RunFolderError(f"{path} was written by a newer rlhub; upgrade rlhub to read it")
        manifest = cls(**{key: value for key, value in data.items() if key in known})
        manifest.validate(str(path))
        return manifest

    def validate(self, where: str) -> None:
        """Refuse a manifest whose values would choose paths or are not of their type.

        Manifests come from downloads too: the algorithm id and the environment's file name become
        folder names, the file fields are joined to the run folder, so each must be one plain
        path component.
        """
        def bad(name: str, why: str) -> RunFolderError:
            return RunFolderError(f"{where}: {name} {getattr(self, name)!r} {why}; the manifest is damaged or hostile, "
                                  "so nothing was loaded or written")

        if not (isinstance(self.algo_id, str) and _ALGO_ID.fullmatch(self.algo_id)):
            raise bad("algo_id", "is not an algorithm id (lowercase letters, digits and underscores)")
        if not (isinstance(self.env_id, str) and len(self.env_id) <= 200 and self.env_id.isprintable()
                and " " not in self.env_id and is_file_name(env_name(self.env_id))):
            raise bad("env_id", "is not an environment id whose name is a plain file name")
        for name, suffixes in _FILE_SUFFIXES.items():
            value = getattr(self, name)
            if value is None and name == "vec_normalize_file":
                continue
            if not is_file_name(value) or not value.endswith(suffixes):
                raise bad(name, f"is not a plain file name ending in {' or '.join(suffixes)} inside the run folder")
        if not isinstance(self.env_kwargs, dict) or not all(isinstance(key, str) for key in self.env_kwargs):
            raise bad("env_kwargs", "is not a mapping of keyword arguments")
        for name in ("seed", "n_timesteps", "format_version"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise bad(name, "is not a whole number")
        for name in ("plugin", "distribution", "distribution_version", "algo_class", "rlhub_version", "sb3_version"):
            if not isinstance(getattr(self, name), str):
                raise bad(name, "is not a string")
        if self.parent_run is not None and not (isinstance(self.parent_run, str) and self.parent_run.isprintable()
                                                and 0 < len(self.parent_run) <= 4096):
            raise bad("parent_run", "is not a folder path")
        if isinstance(self.initial_timesteps, bool) or not isinstance(self.initial_timesteps, int) \
                or self.initial_timesteps < 0:
            raise bad("initial_timesteps", "is not a whole number of steps (0 or more)")
        if self.dataset is not None and not _is_dataset_record(self.dataset):
            raise bad("dataset", "is not a record of a dataset ({id, n_transitions, n_episodes, sha256})")

    @classmethod
    def for_run(cls, spec: Any, env_id: str, **values: Any) -> Manifest:
        """A manifest for an agent of ``spec`` (an :class:`~rlhub.spec.AlgorithmSpec`) on ``env_id``."""
        import stable_baselines3

        import rlhub

        return cls(
            algo_id=spec.algo_id,
            env_id=env_id,
            model_file=f"{env_name(env_id)}.zip",
            plugin=spec.plugin_name,
            distribution=spec.distribution,
            distribution_version=spec.distribution_version,
            algo_class=spec.class_path,
            rlhub_version=rlhub.__version__,
            sb3_version=stable_baselines3.__version__,
            **values,
        )


def _is_dataset_record(record: object) -> bool:
    required = {"id", "n_transitions", "n_episodes", "sha256"}
    if not (isinstance(record, dict) and required <= set(record) <= required | {"mean_return"}):
        return False
    mean_return = record.get("mean_return")  # absent in runs recorded before it was
    if mean_return is not None and not (isinstance(mean_return, float) and math.isfinite(mean_return)):
        return False
    counts_ok = all(isinstance(record[key], int) and not isinstance(record[key], bool) and record[key] >= 0
                    for key in ("n_transitions", "n_episodes"))
    return (counts_ok and isinstance(record["id"], str) and 0 < len(record["id"]) <= 4096 and record["id"].isprintable()
            and isinstance(record["sha256"], str) and re.fullmatch(r"[0-9a-f]{64}", record["sha256"]) is not None)


class StorageFullError(RunFolderError):
    """A save failed because its disk is full or read-only; the folder keeps its last complete save."""

    REASONS = {errno.ENOSPC: "No space left on {}", errno.EDQUOT: "The disk quota is exceeded on {}",
               errno.EROFS: "{} is on a read-only file system"}

    def __init__(self, folder: Path, error: OSError) -> None:
        super().__init__(error.errno, error.strerror, str(folder))
        self.folder = Path(folder)

    def __str__(self) -> str:
        # Named when shown, not when raised: a save the caller makes afterwards may have succeeded.
        reason = self.REASONS.get(self.errno, "{} cannot be written").format(self.folder)
        last = last_complete_save(self.folder)
        if last is None:
            return f"{reason}: nothing complete was saved there. Train again once the disk can take more"
        return (f"{reason}: the last complete save is {last}. Once the disk can take more, continue from it: "
                f"rlhub train --resume {self.folder}")


def last_complete_save(folder: Path) -> Path | None:
    """The newest model zip in ``folder`` (a scratch file of :func:`write_atomically` is never one)."""
    saves = [path for path in Path(folder).glob("*.zip") if not path.name.startswith(".")]
    return max(saves, key=lambda path: path.stat().st_mtime_ns, default=None)


@contextmanager
def storage_errors(folder: Path) -> Iterator[None]:
    """Turn a full, over-quota or read-only disk met inside the block into a :class:`StorageFullError`
    on ``folder``; any other error passes through."""
    try:
        yield
    except StorageFullError:
        raise
    except OSError as error:
        if error.errno in StorageFullError.REASONS:
            raise StorageFullError(Path(folder), error) from error
        raise


def write_atomically(path: Path, write: Callable[[Path], Any]) -> Path:
    """Have ``write`` write ``path`` under a temporary name in the same folder, then rename it into
    place: a full disk or a crash leaves the previous file whole, never a truncated one. A full or
    read-only disk is a :class:`StorageFullError` naming the folder's last complete save."""
    path = Path(path)
    scratch = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        with storage_errors(path.parent):
            write(scratch)
            os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)
    return path


#: Less free space than this and a run folder is refused before training: a run writes at least
#: its config, manifest, monitor files and a model of a few hundred kB.
MIN_FREE_BYTES = 1 << 20


def new_run_dir(log_folder: str | Path, algo_id: str, env_id: str) -> Path:
    """Create ``<log_folder>/<algo_id>/<env>_<n>`` with ``n`` one above the highest present.

    A folder that cannot be made (a file in its way, no permission, a full or read-only disk) is a
    :class:`RunFolderError`, raised before anything is trained.
    """
    parent = Path(log_folder) / algo_id
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _check_free_space(parent)
        # Runs started at once in one log folder (seeds launched in parallel) race for the next
        # id: the loser takes the one after.
        for _ in range(100):
            run_dir = parent / f"{env_name(env_id)}_{_latest_id(parent, env_id) + 1}"
            try:
                run_dir.mkdir()
                break
            except FileExistsError:
                continue
        else:
            raise OSError(errno.EEXIST, "100 runs were being created there at once")
    except OSError as error:
        raise RunFolderError(f"cannot make a run folder in {log_folder}: {_why_unwritable(parent, error)}. "
                             "Choose a log folder you can write to with -f") from None
    return run_dir


def _check_free_space(folder: Path) -> None:
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise OSError(errno.ENOSPC, f"only {free // 1024} kB are free on its disk, and a run needs "
                                    f"{MIN_FREE_BYTES // 1024} kB or more")


def _why_unwritable(folder: Path, error: OSError) -> str:
    existing = next((path for path in (folder, *folder.parents) if path.exists()), folder)
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if isinstance(error, PermissionError):
        return f"{existing} is not writable by you"
    return error.strerror or str(error)


def _latest_id(parent: Path, env_id: str) -> int:
    pattern = re.compile(rf"^{re.escape(env_name(env_id))}_(\d+)$")
    ids = [int(match.group(1)) for path in parent.glob("*") if (match := pattern.match(path.name))]
    return max(ids, default=0)


def find_run_dir(log_folder: str | Path, algo_id: str, env_id: str, exp_id: int = 0) -> Path:
    """The run folder of experiment ``exp_id`` (0: the latest)."""
    parent = Path(log_folder) / algo_id
    if not exp_id and parent.is_dir():
        exp_id = _latest_id(parent, env_id)
    run_dir = parent / f"{env_name(env_id)}_{exp_id}"
    if not exp_id or not (run_dir / MANIFEST_NAME).is_file():
        runs = sorted(str(path.parent) for path in Path(log_folder).glob(f"*/*/{MANIFEST_NAME}"))
        listing = ("Runs found: " + ", ".join(runs[:10])) if runs else f"No runs at all under {log_folder}."
        raise RunFolderError(
            f"No {algo_id} run on {env_id} in {parent}" + (f" with id {exp_id}" if exp_id else "") + ". "
            f"Train one with `rlhub train --algo {algo_id} --env {env_id} -f {log_folder}`. {listing}"
        )
    return run_dir


def model_file(run_dir: Path, manifest: Manifest, *, load_best: bool = False, checkpoint: int | None = None) -> Path:
    """The model zip to load: the final model, the best one or the checkpoint at ``checkpoint`` steps."""
    if load_best:
        path = run_dir / BEST_MODEL_NAME
    elif checkpoint is not None:
        path = run_dir / checkpoint_name(checkpoint)
    else:
        path = run_dir / manifest.model_file
    if not path.is_file():
        available = sorted(p.name for p in run_dir.glob("*.zip"))
        raise RunFolderError(f"{path} does not exist. Models in {run_dir}: {', '.join(available) or 'none'}")
    return path


def vec_normalize_file(run_dir: Path, *, load_best: bool = False, checkpoint: int | None = None) -> Path | None:
    """The VecNormalize statistics that belong with the chosen model, if the run used them."""
    if load_best:
        candidates = [BEST_VEC_NORMALIZE_NAME, VEC_NORMALIZE_NAME]
    elif checkpoint is not None:
        candidates = [checkpoint_name(checkpoint, "vecnormalize"), VEC_NORMALIZE_NAME]
    else:
        candidates = [VEC_NORMALIZE_NAME]
    return next((run_dir / name for name in candidates if (run_dir / name).is_file()), None)


def checkpoint_name(steps: int, kind: str = "") -> str:
    """A checkpoint file's name as SB3's ``CheckpointCallback`` (and so the RL Zoo) writes it: the model
    ``rl_model_<N>_steps.zip``; with ``kind`` "vecnormalize" or "replay_buffer", ``rl_model_<kind>_<N>_steps.pkl``."""
    return f"{CHECKPOINT_PREFIX}_{kind}_{steps}_steps.pkl" if kind else f"{CHECKPOINT_PREFIX}_{steps}_steps.zip"


def checkpoint_steps(model_path: str | Path) -> int | None:
    """The step count in a checkpoint zip's name; None for any other file."""
    match = _CHECKPOINT_ZIP.fullmatch(Path(model_path).name)
    return int(match.group(1)) if match else None


def statistics_of(model_path: Path) -> Path | None:
    """The VecNormalize statistics saved with the model zip ``model_path``: a checkpoint's own,
    ``best_model.zip``'s, else the final ones beside it."""
    return vec_normalize_file(model_path.parent, load_best=model_path.name == BEST_MODEL_NAME,
                              checkpoint=checkpoint_steps(model_path))


def replay_buffer_of(model_path: Path) -> Path | None:
    """The replay buffer saved with the model zip ``model_path``: a checkpoint's own, else the final one."""
    if model_path.name == BEST_MODEL_NAME:
        return None  # EvalCallback saves no buffer with the best model, and the final one is from later
    steps = checkpoint_steps(model_path)
    path = model_path.with_name(REPLAY_BUFFER_NAME if steps is None else checkpoint_name(steps, "replay_buffer"))
    return path if path.is_file() else None


def latest_model(run_dir: Path, manifest: Manifest) -> tuple[Path, int]:
    """The model of ``run_dir`` with the most steps, and its step count: the final model, or a later
    checkpoint (a run killed before it finished has checkpoints only)."""
    models = {steps: path for path in run_dir.glob(f"{CHECKPOINT_PREFIX}_*_steps.zip")
              if (steps := checkpoint_steps(path)) is not None}
    final = run_dir / manifest.model_file
    if final.is_file():  # set after the checkpoints: on a tie, the final model (and its statistics) wins
        models[read_model_summary(final).num_timesteps] = final
    if not models:
        raise RunFolderError(f"{run_dir} has no model to continue: neither {manifest.model_file} nor a checkpoint "
                             f"({CHECKPOINT_PREFIX}_<N>_steps.zip)")
    steps = max(models)
    return models[steps], steps


def save_statistics(model: Any, path: Path) -> None:
    """Write ``model``'s VecNormalize statistics to ``path`` atomically, if it normalizes."""
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        write_atomically(path, lambda scratch: vec_normalize.save(str(scratch)))


def save_agent(model: Any, path: Path, *, statistics: Path | None, replay_buffer: Path | None = None) -> None:
    """Write ``model`` and what continuing it needs, where given: its VecNormalize statistics and its
    replay buffer. Each file is written atomically and the zip last, so a model zip on disk means the
    files saved with it are whole too."""
    if statistics is not None:
        save_statistics(model, statistics)
    if replay_buffer is not None and getattr(model, "replay_buffer", None) is not None:
        write_atomically(replay_buffer, model.save_replay_buffer)
    write_atomically(path, model.save)


@dataclass
class ModelSummary:
    """What a Stable-Baselines3 model zip says about itself, read from its ``data`` entry without
    unpickling anything, and the manifest of the run folder it is in, if any."""

    policy: str
    observation_space: str
    action_space: str
    num_timesteps: int
    manifest: Manifest | None = None

    def __str__(self) -> str:
        made = (f"an agent of {self.manifest.algo_id} on {self.manifest.env_id} (says the {MANIFEST_NAME} beside it)"
                if self.manifest is not None else f"an agent whose policy is {self.policy}")
        return (f"{made}, for observations {self.observation_space} and actions {self.action_space}, "
                f"trained {self.num_timesteps} steps")


def read_model_summary(path: Path) -> ModelSummary:
    """The :class:`ModelSummary` of the model zip ``path``; a :class:`RunFolderError` if it is none."""
    from rlhub.safe_loading import UnsafeAgentError, limits
    from rlhub.safe_loading.archives import open_zip, parse_json, read_member

    where = str(path)
    try:
        with open_zip(path, where) as archive:
            if "data" not in archive.namelist():
                raise UnsafeAgentError(f"{where} has no 'data' entry")
            data = parse_json(read_member(archive, "data", where, limit=limits().model_data_bytes), where)
        if not isinstance(data, dict):
            raise UnsafeAgentError(f"the 'data' entry of {where} is not a mapping")
    except UnsafeAgentError as error:
        raise RunFolderError(f"{error}: this is not a Stable-Baselines3 model, or it is truncated or damaged") from None
    steps = data.get("num_timesteps")
    return ModelSummary(
        policy=_saved_class(data.get("policy_class")),
        observation_space=_saved_space(data.get("observation_space")),
        action_space=_saved_space(data.get("action_space")),
        num_timesteps=steps if isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0 else 0,
        manifest=_manifest_beside(path),
    )


def describe_space(space: Any) -> str:
    """A Gymnasium space in a few words, as :class:`ModelSummary` words a saved one (so the two compare)."""
    return _space_words(type(space).__name__, vars(space))


def _space_words(kind: str, attributes: Mapping[str, Any]) -> str:
    # ``attributes``: a live space's vars(), or the readable copy SB3 writes beside a saved space's pickle
    if kind == "Box":
        return f"Box(shape {tuple(attributes.get('_shape') or ())}, {attributes.get('dtype')})"
    if kind in ("Discrete", "MultiBinary"):
        return f"{kind}({attributes.get('n')})"
    if kind == "MultiDiscrete":
        return f"MultiDiscrete({attributes.get('nvec')})"
    return kind


def _saved_space(item: Any) -> str:
    match = re.fullmatch(r"<class '[\w.]*?(\w+)'>", str(item.get(":type:"))) if isinstance(item, dict) else None
    return _space_words(match.group(1), item)[:200] if match else "unknown"


def _saved_class(item: Any) -> str:
    """``module.Name`` of a class a model zip pickles by reference, read as data; "unknown" if it is not one."""
    from rlhub.safe_loading import Placeholder, restricted_loads

    try:
        loaded = restricted_loads(base64.b64decode(item[":serialized:"]), where="a model's policy_class")
    except Exception:  # noqa: BLE001  # missing, malformed or hostile: only a description is lost
        return "unknown"
    return loaded.describe()[:200] if isinstance(loaded, type) and issubclass(loaded, Placeholder) else "unknown"


def _manifest_beside(path: Path) -> Manifest | None:
    if not (path.parent / MANIFEST_NAME).is_file():
        return None
    try:
        return Manifest.read(path.parent)
    except RunFolderError:  # damaged: the model is described by its zip alone
        return None


def algorithm_spec(manifest: Manifest, where: str) -> Any:
    """The installed algorithm of ``manifest``; if missing, an error naming the plugin to install."""
    from rlhub import registry

    try:
        return registry.get_algorithm(manifest.algo_id)
    except registry.UnknownAlgorithmError:
        if not manifest.distribution:
            raise
        raise registry.UnknownAlgorithmError(
            f"{where} holds a {manifest.algo_id} agent, an algorithm of the plugin {manifest.plugin!r} from the "
            f"distribution {manifest.distribution!r} {manifest.distribution_version}, which is not installed. "
            f"Install it: pip install '{manifest.distribution}>={manifest.distribution_version}'"
        ) from None


def read_run_config(run_dir: Path, manifest: Manifest, algo_class: type, *, trusted: bool) -> Any:
    """The run's config (a :class:`~rlhub.config.ZooConfig`): as written if ``trusted``, else read as data,
    refusing imports outside the allow-list and an environment module rlhub may not import."""
    from rlhub import safe_loading
    from rlhub.config import load_zoo_config

    config_path = run_dir / manifest.config_file
    if trusted:
        return load_zoo_config(manifest.algo_id, manifest.env_id, algo_class, conf_file=config_path)
    config = safe_loading.load_config(config_path, manifest.algo_id, manifest.env_id, algo_class)
    if ":" in manifest.env_id and not safe_loading.is_safe_env_module(manifest.env_id.split(":", 1)[0]):
        raise safe_loading.unsafe(f"The environment id {manifest.env_id!r}", "names a module rlhub will not import "
                                  "for an agent it did not train")
    return config


@dataclass
class LoadedAgent:
    model: Any
    env: Any
    manifest: Manifest
    run_dir: Path


def load_model_file(algo_class: type, path: Path, env: Any, *, unpickle: bool, config: Any, device: str = "auto",
                    source: str = "", overrides: dict[str, Any] | None = None) -> Any:
    """The agent of the model zip ``path`` on ``env``: unpickled as SB3 does if ``unpickle``, else
    rebuilt from ``config`` without unpickling (:func:`rlhub.safe_loading.load_model`).

    A zip naming a class that has moved since it was saved (by an older rlhub or plugin) cannot be
    unpickled; it is rebuilt as an untrusted one is, rather than lost.
    """
    from rlhub import safe_loading

    if unpickle:
        try:
            return algo_class.load(path, env=env, device=device, **(overrides or {}))
        except (ModuleNotFoundError, AttributeError) as error:
            warnings.warn(f"{path} names a class this rlhub no longer has ({error}); it was rebuilt from the run's "
                          "config instead", stacklevel=2)
    return safe_loading.load_model(algo_class, path, env, config=config, device=device, source=source or str(path),
                                   overrides=overrides)


def load_agent(
    run_dir: str | Path,
    *,
    load_best: bool = False,
    checkpoint: int | None = None,
    device: str = "auto",
    render_mode: str | None = None,
    seed: int | None = None,
    trust_remote_code: bool | None = None,
    source: str | None = None,
) -> LoadedAgent:
    """Load the agent of a run folder with an environment built as it was trained (frozen statistics).

    :param trust_remote_code: unpickle the model and VecNormalize files as SB3 does. By default
        (None) only files ``rlhub train`` wrote and signed on this machine are unpickled
        (:mod:`rlhub.trust`); any other folder (a download, a clone, a copy) is rebuilt from the
        environment, the manifest and the config without unpickling anything
        (:mod:`rlhub.safe_loading`). False: never unpickle.
    :param source: where the files came from, for error messages (default: the run folder)
    """
    from rlhub import safe_loading, trust
    from rlhub.envs import check_env_kwargs, make_vec_env

    run_dir = Path(run_dir)
    source = source or str(run_dir)
    manifest = Manifest.read(run_dir)
    algo_class = algorithm_spec(manifest, source).load()
    path = model_file(run_dir, manifest, load_best=load_best, checkpoint=checkpoint)
    statistics = vec_normalize_file(run_dir, load_best=load_best, checkpoint=checkpoint)
    config_path = run_dir / manifest.config_file
    if trust_remote_code is None:
        trust_remote_code = trust.is_trusted(path, statistics, config_path, run_dir / MANIFEST_NAME)
    config = read_run_config(run_dir, manifest, algo_class, trusted=trust_remote_code)
    if config.normalize is not None and statistics is None:
        raise RunFolderError(f"{run_dir} was trained with normalize but has no {VEC_NORMALIZE_NAME}; the agent "
                             "cannot see observations as it was trained to")
    if not trust_remote_code:  # the manifest's env_kwargs are the download's to choose
        check_env_kwargs(manifest.env_id, manifest.env_kwargs, f"env_kwargs in {source}'s {MANIFEST_NAME}")
        safe_loading.check_env_cost(manifest.env_id, manifest.env_kwargs, source)
    env = make_vec_env(
        manifest.env_id,
        n_envs=1,
        seed=seed,
        env_kwargs=manifest.env_kwargs,
        wrapper=config.env_wrapper,
        vec_env_wrapper=config.vec_env_wrapper,
        frame_stack=config.frame_stack,
        normalize=config.normalize if trust_remote_code else None,
        vec_normalize_path=statistics if trust_remote_code else None,
        training=False,
        render_mode=render_mode,
    )
    try:
        if not trust_remote_code and statistics is not None:  # the statistics are read as numbers, never unpickled
            env = safe_loading.wrap_vec_normalize(env, safe_loading.read_vec_normalize(statistics, source=source))
        model = load_model_file(algo_class, path, env, unpickle=trust_remote_code, config=config, device=device,
                                source=source)
    except BaseException:
        env.close()
        raise
    return LoadedAgent(model, env, manifest, run_dir)
