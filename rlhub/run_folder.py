"""Run folders (``logs/<algo_id>/<env>_<n>/``) and the ``rlhub.json`` manifest they hold.

The manifest names everything needed to rebuild an agent, so enjoy, push-to-hub and the Hub loader
never have to guess which class made it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

MANIFEST_NAME = "rlhub.json"
CONFIG_NAME = "config.yml"
VEC_NORMALIZE_NAME = "vec_normalize.pkl"
BEST_MODEL_NAME = "best_model.zip"
BEST_VEC_NORMALIZE_NAME = "best_vec_normalize.pkl"
CHECKPOINT_PREFIX = "rl_model"
MANIFEST_FORMAT = 1
MANIFEST_MAX_BYTES = 1 << 20  # a manifest is a few hundred bytes; a larger one is not rlhub's


class RunFolderError(FileNotFoundError):
    """A run folder, or a file expected in it, is missing or malformed."""


#: A name that is one path component and nothing else: no separators, no "..", no leading dot.
_FILE_NAME = re.compile(r"[A-Za-z0-9][\w.\-]{0,199}")
_ALGO_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")
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
    n_timesteps: int | None = None
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


def write_atomically(path: Path, write: Callable[[Path], Any]) -> Path:
    """Have ``write`` write ``path`` under a temporary name in the same folder, then rename it into
    place: a full disk or a crash leaves the previous file whole, never a truncated one."""
    path = Path(path)
    scratch = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        write(scratch)
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)
    return path


def new_run_dir(log_folder: str | Path, algo_id: str, env_id: str) -> Path:
    """Create ``<log_folder>/<algo_id>/<env>_<n>`` with ``n`` one above the highest present."""
    parent = Path(log_folder) / algo_id
    parent.mkdir(parents=True, exist_ok=True)
    run_dir = parent / f"{env_name(env_id)}_{_latest_id(parent, env_id) + 1}"
    run_dir.mkdir()
    return run_dir


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
        path = run_dir / f"{CHECKPOINT_PREFIX}_{checkpoint}_steps.zip"
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
        candidates = [f"{CHECKPOINT_PREFIX}_vecnormalize_{checkpoint}_steps.pkl", VEC_NORMALIZE_NAME]
    else:
        candidates = [VEC_NORMALIZE_NAME]
    return next((run_dir / name for name in candidates if (run_dir / name).is_file()), None)


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


@dataclass
class LoadedAgent:
    model: Any
    env: Any
    manifest: Manifest
    run_dir: Path


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
    from rlhub.config import load_zoo_config
    from rlhub.envs import make_vec_env

    run_dir = Path(run_dir)
    source = source or str(run_dir)
    manifest = Manifest.read(run_dir)
    algo_class = algorithm_spec(manifest, source).load()
    path = model_file(run_dir, manifest, load_best=load_best, checkpoint=checkpoint)
    statistics = vec_normalize_file(run_dir, load_best=load_best, checkpoint=checkpoint)
    config_path = run_dir / manifest.config_file
    if trust_remote_code is None:
        trust_remote_code = trust.is_trusted(path, statistics, config_path, run_dir / MANIFEST_NAME)
    if trust_remote_code:
        config = load_zoo_config(manifest.algo_id, manifest.env_id, algo_class, conf_file=config_path)
    else:
        config = safe_loading.load_config(config_path, manifest.algo_id, manifest.env_id, algo_class)
        if ":" in manifest.env_id and not safe_loading.is_safe_env_module(manifest.env_id.split(":", 1)[0]):
            raise safe_loading.unsafe(f"The environment id {manifest.env_id!r}", "names a module rlhub will not import "
                                      "for an agent it did not train")
    if config.normalize is not None and statistics is None:
        raise RunFolderError(f"{run_dir} was trained with normalize but has no {VEC_NORMALIZE_NAME}; the agent "
                             "cannot see observations as it was trained to")
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
        if trust_remote_code:
            model = algo_class.load(path, env=env, device=device)
        else:
            if statistics is not None:  # the statistics are read as numbers, never unpickled
                env = safe_loading.wrap_vec_normalize(env, safe_loading.read_vec_normalize(statistics, source=source))
            model = safe_loading.load_model(algo_class, path, env, config=config, device=device, source=source)
    except BaseException:
        env.close()
        raise
    return LoadedAgent(model, env, manifest, run_dir)
