"""Downloading agents: into a run folder (``load-from-hub``) or straight into memory (``enjoy --repo-id``)."""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from rlhub.hub.client import HubError, check_repo_id, endpoint, with_retries
from rlhub.hub.files import (
    DOWNLOAD_PATTERNS,
    ENV_KWARGS_NAME,
    HUB_SOURCE_NAME,
    METRICS_NAME,
    MODEL_CARD_NAME,
    RESULTS_NAME,
)
from rlhub.hub.repo_kinds import RepoAgent, describe
from rlhub.run_folder import CONFIG_NAME, VEC_NORMALIZE_NAME, LoadedAgent, env_name


def download(repo_id: str, *, revision: str | None = None, token: str | None = None) -> Path:
    """The repo's files needed to play (cached by huggingface_hub), as a local folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    check_repo_id(repo_id)
    try:
        folder = with_retries(lambda: snapshot_download(
            repo_id, revision=revision, allow_patterns=DOWNLOAD_PATTERNS, token=token, endpoint=endpoint(),
        ), "download", lambda message: None, passthrough=(RepositoryNotFoundError, RevisionNotFoundError))
    except GatedRepoError:
        raise HubError(f"{repo_id} is gated: accept its conditions on the Hub, then log in") from None
    except RepositoryNotFoundError:
        raise HubError(f"Repository {repo_id} not found on {endpoint()}. Check the id (owner/name); a private repo "
                       "needs a token with read access (HF_TOKEN or `hf auth login`).") from None
    except RevisionNotFoundError:
        raise HubError(f"{repo_id} has no revision {revision!r}") from None
    return Path(folder)



def write_run_folder(agent: RepoAgent, run_dir: Path, *, revision: str | None = None) -> Path:
    """Turn a downloaded agent into an rlhub run folder that ``enjoy`` and ``load_agent`` accept."""
    from rlhub import registry, trust
    from rlhub.config import ZOO_KEYS, constructor_parameters

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = dataclasses.replace(agent.manifest, config_file=CONFIG_NAME)
    shutil.copyfile(agent.model_path, run_dir / manifest.model_file)
    if agent.vec_normalize_path is not None:
        shutil.copyfile(agent.vec_normalize_path, run_dir / VEC_NORMALIZE_NAME)
        manifest.vec_normalize_file = VEC_NORMALIZE_NAME
    else:
        manifest.vec_normalize_file = None
    section = dict(agent.config_section)
    try:  # keys this rlhub does not know (older RL Zoo versions) do not matter to play: drop them
        parameters = constructor_parameters(registry.get_algorithm(manifest.algo_id).load())
        section = {key: value for key, value in section.items() if key in ZOO_KEYS or key in parameters}
    except Exception:
        pass
    if not isinstance(section.get("n_timesteps"), (int, float)) or section["n_timesteps"] <= 0:
        section["n_timesteps"] = int(manifest.n_timesteps or 1)
    (run_dir / CONFIG_NAME).write_text(yaml.safe_dump({manifest.env_id: section}, sort_keys=False))
    manifest.write(run_dir)
    for name in (RESULTS_NAME, MODEL_CARD_NAME, ENV_KWARGS_NAME):
        if (agent.folder / name).is_file():
            shutil.copyfile(agent.folder / name, run_dir / name)
    metrics = agent.folder / METRICS_NAME
    if metrics.is_file():
        _unpack_metrics(metrics, run_dir)
    (run_dir / HUB_SOURCE_NAME).write_text(json.dumps({
        "source": agent.source, "revision": revision, "layout": agent.layout, "endpoint": endpoint(),
        "downloaded": datetime.datetime.now().isoformat(),
    }, indent=2) + "\n")
    # Signed as downloaded: proves rlhub made the folder (--force may replace it), never trusts its files.
    trust.sign(run_dir, origin=trust.DOWNLOADED)
    return run_dir


def _unpack_metrics(metrics: Path, run_dir: Path) -> None:
    """Monitor files and evaluations of a download (for ``rlhub plot``), inflated within the caps;
    flat names only, so no member lands outside the run folder. Unreadable metrics are skipped."""
    from rlhub.safe_loading import UnsafeAgentError, limits
    from rlhub.safe_loading.archives import ByteBudget, open_zip, read_member

    caps = limits()
    try:
        with open_zip(metrics, METRICS_NAME) as archive:
            budget = ByteBudget(caps.zip_bytes, METRICS_NAME)
            for member in archive.namelist():
                if re.fullmatch(r"[A-Za-z0-9][\w.\-]*\.(csv|npz)", member):
                    content = read_member(archive, member, METRICS_NAME, limit=caps.file_bytes, budget=budget)
                    (run_dir / member).write_bytes(content)
    except UnsafeAgentError:
        pass  # the metrics are a nicety: the agent plays without them


def _revision_of(snapshot: Path) -> str | None:
    return snapshot.name if re.fullmatch(r"[0-9a-f]{40}", snapshot.name) else None


def pull(repo_id: str, log_folder: str | Path = "rl_trained", *, revision: str | None = None, exp_id: int = 0,
         force: bool = False, token: str | None = None) -> Path:
    """Download ``repo_id`` into ``<log_folder>/<algo>/<env>_<n>/``, a run folder ``enjoy`` plays.

    ``exp_id`` 0 makes a new folder; another value writes that id (``force`` to replace it, only if
    it is a run folder rlhub made on this machine).
    """
    from rlhub import trust
    from rlhub.run_folder import algorithm_spec, new_run_dir

    snapshot = download(repo_id, revision=revision, token=token)
    agent = describe(snapshot, repo_id)
    algorithm_spec(agent.manifest, repo_id)  # an installed algorithm, before anything is written
    log_folder = Path(log_folder)
    if exp_id:
        run_dir = log_folder / agent.manifest.algo_id / f"{env_name(agent.manifest.env_id)}_{exp_id}"
        _check_inside(run_dir, log_folder)
        if run_dir.exists() or run_dir.is_symlink():
            if not force:
                raise HubError(f"{run_dir} already exists: pass --force to overwrite it, or --exp-id 0 for a new folder")
            if run_dir.is_symlink() or not trust.made_by_rlhub(run_dir):
                raise HubError(f"{run_dir} exists and is not a run folder rlhub made on this machine, so --force does "
                               "not delete it: remove it yourself, or use another --exp-id")
            shutil.rmtree(run_dir)
    else:
        run_dir = new_run_dir(log_folder, agent.manifest.algo_id, agent.manifest.env_id)
        _check_inside(run_dir, log_folder)
    return write_run_folder(agent, run_dir, revision=_revision_of(snapshot))


def _check_inside(run_dir: Path, log_folder: Path) -> None:
    """Nothing a download names may place its run folder outside the log folder (defence in depth:
    the manifest's names are validated single path components)."""
    if not run_dir.resolve().is_relative_to(log_folder.resolve()):
        raise HubError(f"{run_dir} resolves outside the log folder {log_folder}; nothing was written")


def load_agent(
    repo_id_or_folder: str | Path,
    *,
    trust_remote_code: bool = False,
    revision: str | None = None,
    device: str = "auto",
    render_mode: str | None = None,
    seed: int | None = None,
    token: str | None = None,
) -> LoadedAgent:
    """The agent of a Hub repo (or of a packaged folder) and an environment built as it was trained.

    Without ``trust_remote_code`` nothing from the repo is unpickled (see :mod:`rlhub.safe_loading`).
    """
    from rlhub import run_folder

    local = Path(repo_id_or_folder)
    if local.is_dir():
        folder, source, revision_id = local, str(local), None
    else:
        folder = download(str(repo_id_or_folder), revision=revision, token=token)
        source, revision_id = str(repo_id_or_folder), _revision_of(folder)
    agent = describe(folder, source, trust_remote_code=trust_remote_code)
    _check_env_installed(agent)
    with tempfile.TemporaryDirectory(prefix="rlhub-load-") as scratch:
        run_dir = write_run_folder(agent, Path(scratch) / "run", revision=revision_id)
        loaded = run_folder.load_agent(run_dir, device=device, render_mode=render_mode, seed=seed,
                                       trust_remote_code=trust_remote_code, source=source)
    return dataclasses.replace(loaded, run_dir=folder)


def load(repo_id_or_folder: str | Path, *, trust_remote_code: bool = False, revision: str | None = None,
         device: str = "auto", token: str | None = None) -> Any:
    """The agent of a Hub repo (or packaged folder) as an SB3 ``BaseAlgorithm``, its env attached."""
    return load_agent(repo_id_or_folder, trust_remote_code=trust_remote_code, revision=revision, device=device,
                      token=token).model


def _check_env_installed(agent: RepoAgent) -> None:
    from rlhub.envs import UnknownEnvironmentError, ensure_registered
    from rlhub.safe_loading import is_safe_env_module

    env_id = agent.manifest.env_id
    if ":" in env_id and not is_safe_env_module(env_id.split(":", 1)[0]):
        raise HubError(f"{agent.source} plays {env_id!r}, which imports the module {env_id.split(':', 1)[0]!r}: "
                       "install the package that provides it (rlhub refuses standard-library modules)")
    try:
        ensure_registered(env_id)
    except UnknownEnvironmentError as error:
        package_hint = (f" It is registered by the package '{agent.env_package}': pip install {agent.env_package}"
                        if agent.env_package else
                        " Install the package that registers it (the RL Zoo's agents may need `pip install rl_zoo3`"
                        " or an extra such as gymnasium[box2d]).")
        raise UnknownEnvironmentError(f"{agent.source} plays {env_id}, which is not installed.{package_hint} "
                                      f"({error})") from None
