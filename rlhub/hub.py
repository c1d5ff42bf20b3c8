"""The Hugging Face Hub: package, push, pull and load agents, and their model cards.

A packaged agent is what the RL Zoo and huggingface_sb3 push, plus rlhub's manifest::

    {algo}-{env}.zip      the model (SB3 zip)            config.yml        the run's hyperparameters
    rlhub.json            the manifest                   env_kwargs.yml    gym.make keyword arguments
    vec_normalize.pkl     VecNormalize statistics        results.json      mean/std return, episodes, date
    replay.mp4            a recorded replay              README.md         model card (model-index metrics)
    args.yml, train_eval_metrics.zip                     what the RL Zoo's load_from_hub expects

Repos pushed by the RL Zoo or huggingface_sb3 load too: the algorithm comes from the model file's
name (``{algo}-{env}.zip``) or the card, the hyperparameters from ``config.yml``.

A downloaded agent is data: unless ``trust_remote_code`` is set, nothing from it is unpickled
(see :mod:`rlhub.safe_loading`).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from pprint import pformat
from typing import Any, TypeVar

import yaml

from rlhub.run_folder import (
    CONFIG_NAME,
    MANIFEST_NAME,
    VEC_NORMALIZE_NAME,
    LoadedAgent,
    Manifest,
    RunFolderError,
    env_name,
    model_file,
    vec_normalize_file,
)

MODEL_CARD_NAME = "README.md"
RESULTS_NAME = "results.json"
REPLAY_NAME = "replay.mp4"
ENV_KWARGS_NAME = "env_kwargs.yml"
ZOO_ARGS_NAME = "args.yml"
METRICS_NAME = "train_eval_metrics.zip"
#: Written into run folders made from a download; ``load_agent`` then refuses to unpickle by default.
HUB_SOURCE_NAME = "hub_source.json"
#: What a download fetches (the replay video and unpacked model folders are not needed to play).
DOWNLOAD_PATTERNS = ["*.zip", "*.yml", "*.yaml", "*.json", "*.pkl", MODEL_CARD_NAME]

#: Attempts and first delay (seconds, doubling) for transient Hub errors.
RETRY_ATTEMPTS = 4
RETRY_DELAY = 1.0
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}

_T = TypeVar("_T")
Echo = Callable[[str], None]


class HubError(RuntimeError):
    """A Hub operation failed in a way the user can act on (the message says how)."""


def model_name(algo_id: str, env_id: str) -> str:
    """``{algo}-{env}``: the model file's stem, as the RL Zoo and huggingface_sb3 name it."""
    return f"{algo_id}-{env_name(env_id)}"


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT  # HF_ENDPOINT, read by the client at import


# ---------------------------------------------------------------------------------------------
# Package


@dataclass
class PackageResult:
    folder: Path
    manifest: Manifest
    mean_reward: float
    std_reward: float
    n_eval_episodes: int
    video: Path | None
    seconds: float
    files: list[str]  # relative to folder
    size_bytes: int


def package(
    run_dir: str | Path,
    folder: str | Path,
    *,
    repo_id: str | None = None,
    n_eval_episodes: int = 10,
    video_length: int = 1000,
    deterministic: bool | None = None,
    seed: int = 0,
    load_best: bool = False,
    checkpoint: int | None = None,
    device: str = "auto",
    echo: Echo | None = None,
) -> PackageResult:
    """Write the agent of ``run_dir`` into ``folder`` in the Hub format (see the module docstring).

    The agent is evaluated for ``n_eval_episodes`` on a Monitor-wrapped env with the run's
    VecNormalize statistics frozen, and ``video_length`` steps are recorded offscreen to
    ``replay.mp4`` (0: no video).

    :param deterministic: deterministic actions; by default yes, except on Atari (as the RL Zoo)
    """
    from rlhub import registry
    from rlhub.evaluation import evaluate
    from rlhub.run_folder import load_agent

    started = time.perf_counter()
    say = echo or (lambda message: None)
    run_dir, folder = Path(run_dir), Path(folder)
    manifest = Manifest.read(run_dir)
    spec = registry.get_algorithm(manifest.algo_id)
    name = model_name(manifest.algo_id, manifest.env_id)
    folder.mkdir(parents=True, exist_ok=True)

    shutil.copyfile(model_file(run_dir, manifest, load_best=load_best, checkpoint=checkpoint), folder / f"{name}.zip")
    statistics = vec_normalize_file(run_dir, load_best=load_best, checkpoint=checkpoint)
    if statistics is not None:
        shutil.copyfile(statistics, folder / VEC_NORMALIZE_NAME)
    section = _run_config_section(run_dir / manifest.config_file, manifest.env_id)
    # The RL Zoo's config.yml is one flat section; rlhub reads both layouts.
    (folder / CONFIG_NAME).write_text(yaml.safe_dump(section, sort_keys=False))
    (folder / ENV_KWARGS_NAME).write_text(yaml.safe_dump(dict(manifest.env_kwargs)))
    (folder / ZOO_ARGS_NAME).write_text(yaml.safe_dump({
        "algo": manifest.algo_id, "env": manifest.env_id, "env_kwargs": dict(manifest.env_kwargs),
        "seed": manifest.seed, "n_timesteps": manifest.n_timesteps,
    }, sort_keys=False))
    _write_metrics_zip(run_dir, folder / METRICS_NAME)

    packaged = dataclasses.replace(manifest, model_file=f"{name}.zip",
                                   vec_normalize_file=VEC_NORMALIZE_NAME if statistics is not None else None,
                                   config_file=CONFIG_NAME)
    extras = {"env_package": _env_distribution(manifest.env_id)}
    (folder / MANIFEST_NAME).write_text(json.dumps({**dataclasses.asdict(packaged), **extras}, indent=2) + "\n")

    if deterministic is None:
        deterministic = not _is_atari(manifest.env_id)
    say(f"Evaluating {manifest.algo_id} on {manifest.env_id} for {n_eval_episodes} episodes")
    # trust_remote_code=None: the user's own runs load as saved; a run folder downloaded from the
    # Hub (re-packaged) is still not unpickled.
    agent = load_agent(run_dir, load_best=load_best, checkpoint=checkpoint, device=device, seed=seed,
                       trust_remote_code=None)
    try:
        evaluation = evaluate(agent.model, agent.env, n_episodes=n_eval_episodes, deterministic=deterministic)
    finally:
        agent.env.close()
    results = {
        "mean_reward": evaluation.mean, "std_reward": evaluation.std, "is_deterministic": deterministic,
        "n_eval_episodes": len(evaluation.returns), "eval_datetime": datetime.datetime.now().isoformat(),
        "episode_returns": evaluation.returns, "episode_lengths": evaluation.lengths,
    }
    (folder / RESULTS_NAME).write_text(json.dumps(results, indent=2) + "\n")

    video = None
    if video_length > 0:
        say(f"Recording {video_length} steps to {REPLAY_NAME}")
        video = _record_replay(run_dir, folder / REPLAY_NAME, video_length, deterministic=deterministic, seed=seed,
                               load_best=load_best, checkpoint=checkpoint, device=device, echo=say)

    (folder / MODEL_CARD_NAME).write_text(model_card(
        packaged, spec, section, repo_id=repo_id, mean_reward=evaluation.mean, std_reward=evaluation.std,
        n_eval_episodes=len(evaluation.returns), deterministic=deterministic, has_video=video is not None,
    ))
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    return PackageResult(folder, packaged, evaluation.mean, evaluation.std, len(evaluation.returns), video,
                         time.perf_counter() - started, [str(path.relative_to(folder)) for path in files],
                         sum(path.stat().st_size for path in files))


def _run_config_section(path: Path, env_id: str) -> dict[str, Any]:
    from rlhub.config import read_section

    _, section = read_section(path, env_id)
    return section


def _record_replay(run_dir: Path, path: Path, video_length: int, *, deterministic: bool, seed: int,
                   load_best: bool, checkpoint: int | None, device: str, echo: Echo) -> Path | None:
    import os

    from rlhub.evaluation import evaluate
    from rlhub.run_folder import load_agent

    # Offscreen: pygame-based renderers need no display or sound device.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    try:
        agent = load_agent(run_dir, load_best=load_best, checkpoint=checkpoint, device=device, seed=seed,
                           render_mode="rgb_array", trust_remote_code=None)
    except Exception as error:  # an env without rgb_array rendering: the package is still useful
        echo(f"No replay video: the environment cannot render offscreen ({type(error).__name__}: {error})")
        return None
    try:
        fps = int(agent.env.metadata.get("render_fps") or 30)
        evaluate(agent.model, agent.env, n_episodes=None, n_timesteps=video_length, deterministic=deterministic,
                 record_video=path, video_fps=fps)
    except Exception as error:
        echo(f"No replay video: recording failed ({type(error).__name__}: {error})")
        path.unlink(missing_ok=True)
        return None
    finally:
        agent.env.close()
    return path


def _write_metrics_zip(run_dir: Path, path: Path) -> None:
    """Monitor files and evaluations, as the RL Zoo's ``train_eval_metrics.zip``."""
    members = sorted(run_dir.glob("*.monitor.csv")) + sorted(run_dir.glob("evaluations.npz"))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in members:
            archive.write(member, arcname=member.name)


def _env_distribution(env_id: str) -> str | None:
    """The distribution that registers ``env_id`` (for the "env not installed" message on load)."""
    import gymnasium as gym

    from rlhub.envs import ensure_registered

    try:
        gym_id = ensure_registered(env_id)
        entry_point = gym.registry[gym_id].entry_point
    except Exception:
        return None
    module = env_id.split(":", 1)[0] if ":" in env_id else (
        entry_point.split(":")[0] if isinstance(entry_point, str) else getattr(entry_point, "__module__", ""))
    distributions = _packages_distributions().get(module.split(".")[0], [])
    return distributions[0] if distributions else None


@lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    import importlib.metadata

    return dict(importlib.metadata.packages_distributions())


def _is_atari(env_id: str) -> bool:
    import gymnasium as gym

    from rlhub.envs import ensure_registered

    try:
        entry_point = str(gym.registry[ensure_registered(env_id)].entry_point)
    except Exception:
        return False
    return "AtariEnv" in entry_point or entry_point.startswith("ale_py")


def model_card(manifest: Manifest, spec: Any, section: dict[str, Any], *, repo_id: str | None, mean_reward: float,
               std_reward: float, n_eval_episodes: int, deterministic: bool, has_video: bool) -> str:
    """The README: metadata the Hub understands (library, tags, model-index) and how to use the agent."""
    from huggingface_hub import ModelCardData
    from huggingface_hub.repocard import metadata_eval_result

    sb3_class = spec.class_path.split(":")[0].split(".")[0] in ("stable_baselines3", "sb3_contrib")
    class_name = spec.class_path.rsplit(":", 1)[-1]
    tags = [manifest.env_id, manifest.algo_id, "rlhub", "reinforcement-learning"]
    if spec.kind not in ("tabular", "bandit", "planning"):
        tags.append("deep-reinforcement-learning")
    if sb3_class:
        tags.append("stable-baselines3")
    evaluation = metadata_eval_result(
        model_pretty_name=class_name, task_pretty_name="reinforcement-learning", task_id="reinforcement-learning",
        metrics_pretty_name="mean_reward", metrics_id="mean_reward",
        metrics_value=f"{mean_reward:.2f} +/- {std_reward:.2f}", dataset_pretty_name=manifest.env_id,
        dataset_id=manifest.env_id,
    )
    metadata = ModelCardData(library_name="stable-baselines3" if sb3_class else "rlhub",
                             tags=list(dict.fromkeys(tags)), **evaluation)
    repo = repo_id or f"<user>/{model_name(manifest.algo_id, manifest.env_id)}"
    install = "pip install rlhub"
    if manifest.distribution and manifest.distribution != "rlhub":
        install += f" {manifest.distribution}"
    env_kwargs = " ".join(f"{key}:{json.dumps(value)}" for key, value in manifest.env_kwargs.items())
    train = f"rlhub train --algo {manifest.algo_id} --env {manifest.env_id}"
    if env_kwargs:
        train += f" --env-kwargs {env_kwargs}"
    sb3_usage = ""
    if sb3_class:
        module = spec.class_path.split(":")[0].split(".")[0]
        sb3_usage = f"""
## Usage (with Stable-Baselines3)

The model file is a plain SB3 zip: SB3's `{class_name}.load` reads it (it unpickles the file, so
only do this for agents you trust).

```python
from huggingface_hub import hf_hub_download
from {module} import {class_name}

model = {class_name}.load(hf_hub_download("{repo}", "{manifest.model_file}"))
```
"""
    provenance = f"the `{manifest.plugin}` plugin" if manifest.plugin else "rlhub"
    if manifest.distribution:
        provenance += f" (distribution `{manifest.distribution}` {manifest.distribution_version})"
    body = f"""
# **{class_name}** agent playing **{manifest.env_id}**

This is a trained **{class_name}** agent (rlhub algorithm `{manifest.algo_id}`, from {provenance})
playing **{manifest.env_id}**, trained with rlhub on
[Stable-Baselines3](https://github.com/DLR-RM/stable-baselines3).

Mean return: **{mean_reward:.2f} +/- {std_reward:.2f}** over {n_eval_episodes} episodes
({"deterministic" if deterministic else "stochastic"} actions){", see `replay.mp4`" if has_video else ""}.

## Usage (with rlhub)

```bash
{install}
rlhub enjoy --repo-id {repo}
# or download it as a run folder, then play it
rlhub load-from-hub --repo-id {repo} -f rl_trained/
rlhub enjoy --algo {manifest.algo_id} --env {manifest.env_id} -f rl_trained/
```

```python
from rlhub.hub import load

model = load("{repo}")  # a Stable-Baselines3 BaseAlgorithm, with its environment
```

Loading never unpickles code from the repo unless you pass `--trust-remote-code`
(`trust_remote_code=True`).
{sb3_usage}
## Training (with rlhub)

```bash
{train}
rlhub push-to-hub --algo {manifest.algo_id} --env {manifest.env_id} --repo-id {repo}
```

## Hyperparameters

```python
{pformat(section, sort_dicts=False)}
```
"""
    if manifest.env_kwargs:
        body += f"\n## Environment arguments\n\n```python\n{pformat(dict(manifest.env_kwargs))}\n```\n"
    return f"---\n{metadata.to_yaml()}\n---\n{body}"


# ---------------------------------------------------------------------------------------------
# Push


@dataclass
class PushResult:
    repo_url: str
    commit_url: str
    packaged: PackageResult
    upload_seconds: float
    kept_folder: Path | None


def push(
    run_dir: str | Path,
    repo_id: str,
    *,
    commit_message: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    n_eval_episodes: int = 10,
    video_length: int = 1000,
    deterministic: bool | None = None,
    seed: int = 0,
    load_best: bool = False,
    checkpoint: int | None = None,
    device: str = "auto",
    echo: Echo | None = None,
) -> PushResult:
    """Package the agent of ``run_dir`` and upload it to ``repo_id`` (created if missing).

    The token comes from ``token``, ``HF_TOKEN`` or the stored login; ``HF_ENDPOINT`` is honoured.
    Transient errors are retried with backoff; if the upload still fails, the packaged folder is
    kept and the :class:`HubError` names it.
    """
    from huggingface_hub import HfApi, get_token

    say = echo or (lambda message: None)
    _check_repo_id(repo_id)
    token = token or get_token()
    if not token:
        raise HubError(
            "No Hugging Face token: pushing needs one with write access. Set HF_TOKEN, or run `hf auth login` "
            "(create a token at https://huggingface.co/settings/tokens)."
        )
    folder = Path(tempfile.mkdtemp(prefix="rlhub-push-"))
    packaged = package(run_dir, folder, repo_id=repo_id, n_eval_episodes=n_eval_episodes, video_length=video_length,
                       deterministic=deterministic, seed=seed, load_best=load_best, checkpoint=checkpoint,
                       device=device, echo=say)
    say(f"Packaged {len(packaged.files)} files ({packaged.size_bytes / 1e6:.2f} MB) in {packaged.seconds:.1f} s; "
        f"pushing to {repo_id} on {_endpoint()}")
    api = HfApi(endpoint=_endpoint(), token=token)
    message = commit_message or f"Upload {packaged.manifest.algo_id} agent on {packaged.manifest.env_id} with rlhub"
    started = time.perf_counter()
    try:
        repo_url = _with_retries(lambda: api.create_repo(repo_id, private=private, exist_ok=True), "create", say)
        commit = _with_retries(lambda: api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=message),
                               "upload", say)
    except HubError as error:
        raise HubError(f"{error} The packaged agent is kept in {folder}; upload it later with "
                       f"`hf upload {repo_id} {folder} .`") from None
    upload_seconds = time.perf_counter() - started
    shutil.rmtree(folder, ignore_errors=True)
    return PushResult(str(repo_url), commit.commit_url, packaged, upload_seconds, kept_folder=None)


def _check_repo_id(repo_id: str) -> None:
    if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", repo_id or ""):
        raise HubError(f"repo id {repo_id!r} must look like 'user/name' (e.g. alice/ppo-CartPole-v1)")


def _with_retries(call: Callable[[], _T], what: str, echo: Echo, passthrough: tuple[type, ...] = ()) -> _T:
    """``call()``, retried with exponential backoff on transient errors; other errors become HubError
    (``passthrough`` errors are raised as they are)."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    delay = RETRY_DELAY
    for attempt in range(1, RETRY_ATTEMPTS + 1):
        try:
            return call()
        except passthrough:
            raise
        except RepositoryNotFoundError as error:
            raise HubError(f"{what} failed: repository not found or not yours ({_first_line(error)}). Check the "
                           "repo id and that your token may write to its namespace.") from None
        except HfHubHTTPError as error:
            status = error.response.status_code if error.response is not None else None
            if status in (401, 403):
                raise HubError(f"{what} failed: the Hub refused the token ({status}: {_first_line(error)}). Use a "
                               "token with write access (HF_TOKEN or `hf auth login`).") from None
            if status not in _TRANSIENT_STATUS:
                raise HubError(f"{what} failed: {_first_line(error)}") from None
            failure = f"server error {status}"
        except (httpx2.TransportError, OSError) as error:
            failure = f"{type(error).__name__}: {_first_line(error)}; check your connection and HF_ENDPOINT"
        if attempt == RETRY_ATTEMPTS:
            raise HubError(f"{what} failed after {attempt} attempts on {_endpoint()} (last: {failure}).")
        echo(f"{what}: {failure}; retrying in {delay:g} s (attempt {attempt + 1} of {RETRY_ATTEMPTS})")
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")


def _first_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


# ---------------------------------------------------------------------------------------------
# Download and describe


def download(repo_id: str, *, revision: str | None = None, token: str | None = None) -> Path:
    """The repo's files needed to play (cached by huggingface_hub), as a local folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    _check_repo_id(repo_id)
    try:
        folder = _with_retries(lambda: snapshot_download(
            repo_id, revision=revision, allow_patterns=DOWNLOAD_PATTERNS, token=token, endpoint=_endpoint(),
        ), "download", lambda message: None, passthrough=(RepositoryNotFoundError, RevisionNotFoundError))
    except GatedRepoError:
        raise HubError(f"{repo_id} is gated: accept its conditions on the Hub, then log in") from None
    except RepositoryNotFoundError:
        raise HubError(f"Repository {repo_id} not found on {_endpoint()}. Check the id (owner/name); a private repo "
                       "needs a token with read access (HF_TOKEN or `hf auth login`).") from None
    except RevisionNotFoundError:
        raise HubError(f"{repo_id} has no revision {revision!r}") from None
    return Path(folder)


@dataclass
class RepoAgent:
    """A downloaded (or packaged) agent, whatever tool pushed it."""

    source: str
    folder: Path
    layout: str  # "rlhub", "rl-zoo" or "huggingface_sb3"
    manifest: Manifest
    config_section: dict[str, Any]
    env_package: str | None = None

    @property
    def model_path(self) -> Path:
        return self.folder / self.manifest.model_file

    @property
    def vec_normalize_path(self) -> Path | None:
        path = self.folder / (self.manifest.vec_normalize_file or VEC_NORMALIZE_NAME)
        return path if path.is_file() else None


def describe(folder: str | Path, source: str | None = None, *, trust_remote_code: bool = False) -> RepoAgent:
    """Work out which algorithm, environment, model file and config a repo folder holds."""
    from rlhub import registry
    from rlhub.safe_loading import config_section, read_yaml

    folder = Path(folder)
    source = source or str(folder)
    names = sorted(path.name for path in folder.iterdir() if path.is_file())
    card = _card_metadata(folder / MODEL_CARD_NAME)
    env_package = None
    if MANIFEST_NAME in names:
        layout = "rlhub"
        try:
            manifest = Manifest.read(folder)
            env_package = json.loads((folder / MANIFEST_NAME).read_text()).get("env_package")
        except RunFolderError as error:
            raise HubError(f"{source}: {error}") from None
        if not (folder / manifest.model_file).is_file():
            raise HubError(f"{source}: {MANIFEST_NAME} names the model file {manifest.model_file}, which the repo "
                           f"lacks (files: {', '.join(names)})")
    else:
        layout = "rl-zoo" if CONFIG_NAME in names else "huggingface_sb3"
        zips = [name for name in names if name.endswith(".zip") and name != METRICS_NAME]
        if not zips:
            raise HubError(
                f"No model file in {source} (files: {', '.join(names) or 'none'}). rlhub loads repos with an "
                f"{MANIFEST_NAME} (rlhub) or an '{{algo}}-{{env}}.zip' model (RL Zoo, huggingface_sb3)."
            )
        algo_id, model = _algo_and_model(zips, card, source)
        env_id = _env_id(folder, card, model, source, trust_remote_code)
        spec = registry.get_algorithm(algo_id)
        env_kwargs: dict[str, Any] = {}
        if (folder / ENV_KWARGS_NAME).is_file():
            env_kwargs = dict(read_yaml(folder / ENV_KWARGS_NAME, trust_remote_code=trust_remote_code) or {})
        manifest = dataclasses.replace(Manifest.for_run(spec, env_id, env_kwargs=env_kwargs), model_file=model)
        manifest.vec_normalize_file = VEC_NORMALIZE_NAME if VEC_NORMALIZE_NAME in names else None
    section: dict[str, Any] = {}
    if (folder / CONFIG_NAME).is_file():
        document = read_yaml(folder / CONFIG_NAME, trust_remote_code=trust_remote_code)
        try:
            _, section = config_section(document, manifest.env_id)
        except ValueError as error:
            raise HubError(f"{source}: {CONFIG_NAME}: {error}") from None
    return RepoAgent(source, folder, layout, manifest, section, env_package)


def _card_metadata(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    match = re.match(r"^\s*---\s*\n(.*?)\n---\s*(\n|$)", path.read_text(errors="replace"), re.DOTALL)
    try:
        data = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _card_model_index(card: dict[str, Any]) -> tuple[str | None, str | None]:
    """(model name, dataset id) of the card's first model-index entry."""
    try:
        entry = card["model-index"][0]
        dataset = entry["results"][0]["dataset"]
        return entry.get("name"), dataset.get("type") or dataset.get("name")
    except (KeyError, IndexError, TypeError):
        return None, None


def _algo_and_model(zips: list[str], card: dict[str, Any], source: str) -> tuple[str, str]:
    from rlhub import registry

    known = {spec.algo_id for spec in registry.list_algorithms()}
    candidates = [(name.split("-", 1)[0].lower(), name) for name in zips if "-" in name]
    matching = [(algo, name) for algo, name in candidates if algo in known]
    repo_name = source.rstrip("/").split("/")[-1]
    if matching:
        preferred = [item for item in matching if item[1] == f"{repo_name}.zip"]
        return (preferred or matching)[0]
    class_name, _ = _card_model_index(card)
    if class_name and len(zips) == 1:
        for spec in registry.list_algorithms():
            if spec.class_path.rsplit(":", 1)[-1].lower() == class_name.lower() or spec.algo_id == class_name.lower():
                return spec.algo_id, zips[0]
    guesses = sorted({algo for algo, _ in candidates} | ({class_name.lower()} if class_name else set()))
    hint = f" It names {', '.join(map(repr, guesses))}, which no installed plugin provides." if guesses else ""
    raise registry.UnknownAlgorithmError(
        f"Cannot tell which algorithm made {', '.join(zips)} in {source}: rlhub expects '{{algo}}-{{env}}.zip' with "
        f"an installed algorithm id ({', '.join(sorted(known))}).{hint} Plugins add algorithms (`rlhub plugins`)."
    )


def _env_id(folder: Path, card: dict[str, Any], model: str, source: str, trust_remote_code: bool) -> str:
    from rlhub.safe_loading import read_yaml

    if (folder / ZOO_ARGS_NAME).is_file():
        args = read_yaml(folder / ZOO_ARGS_NAME, trust_remote_code=trust_remote_code)
        if isinstance(args, dict) and isinstance(args.get("env"), str):
            return args["env"]
    _, dataset = _card_model_index(card)
    if isinstance(dataset, str) and dataset:
        return dataset
    stem = model[: -len(".zip")]
    if "-" in stem:
        return stem.split("-", 1)[1]
    raise HubError(f"Cannot tell which environment the agent in {source} plays: no {MANIFEST_NAME}, {ZOO_ARGS_NAME} "
                   f"or model-index in {MODEL_CARD_NAME}, and {model} is not named '{{algo}}-{{env}}.zip'")


# ---------------------------------------------------------------------------------------------
# Pull and load


def write_run_folder(agent: RepoAgent, run_dir: Path, *, revision: str | None = None) -> Path:
    """Turn a downloaded agent into an rlhub run folder that ``enjoy`` and ``load_agent`` accept."""
    from rlhub import registry
    from rlhub.config import ZOO_KEYS, _constructor_parameters

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
        parameters = _constructor_parameters(registry.get_algorithm(manifest.algo_id).load())
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
        try:
            with zipfile.ZipFile(metrics) as archive:
                for member in archive.namelist():
                    if re.fullmatch(r"[\w.\-]+\.(csv|npz)", member):  # flat names only: no path tricks
                        (run_dir / member).write_bytes(archive.read(member))
        except zipfile.BadZipFile:
            pass
    (run_dir / HUB_SOURCE_NAME).write_text(json.dumps({
        "source": agent.source, "revision": revision, "layout": agent.layout, "endpoint": _endpoint(),
        "downloaded": datetime.datetime.now().isoformat(),
    }, indent=2) + "\n")
    return run_dir


def _revision_of(snapshot: Path) -> str | None:
    return snapshot.name if re.fullmatch(r"[0-9a-f]{40}", snapshot.name) else None


def pull(repo_id: str, log_folder: str | Path = "rl_trained", *, revision: str | None = None, exp_id: int = 0,
         force: bool = False, token: str | None = None) -> Path:
    """Download ``repo_id`` into ``<log_folder>/<algo>/<env>_<n>/``, a run folder ``enjoy`` plays.

    ``exp_id`` 0 makes a new folder; another value writes that id (``force`` to overwrite).
    """
    from rlhub.run_folder import new_run_dir

    snapshot = download(repo_id, revision=revision, token=token)
    agent = describe(snapshot, repo_id)
    if exp_id:
        run_dir = Path(log_folder) / agent.manifest.algo_id / f"{env_name(agent.manifest.env_id)}_{exp_id}"
        if run_dir.exists():
            if not force:
                raise HubError(f"{run_dir} already exists: pass --force to overwrite it, or --exp-id 0 for a new folder")
            shutil.rmtree(run_dir)
    else:
        run_dir = new_run_dir(log_folder, agent.manifest.algo_id, agent.manifest.env_id)
    return write_run_folder(agent, run_dir, revision=_revision_of(snapshot))


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
                                       trust_remote_code=trust_remote_code)
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
