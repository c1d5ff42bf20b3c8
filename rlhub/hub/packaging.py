"""Packaging a run folder in the Hub format: model, config, statistics, evaluation, replay, card."""

from __future__ import annotations

import dataclasses
import datetime
import json
import shutil
import time
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from rlhub.envs import plays_stochastically
from rlhub.hub.client import Echo
from rlhub.hub.files import (
    ENV_KWARGS_NAME,
    METRICS_NAME,
    MODEL_CARD_NAME,
    REPLAY_NAME,
    RESULTS_NAME,
    ZOO_ARGS_NAME,
    model_name,
)
from rlhub.hub.model_card import model_card
from rlhub.run_folder import (
    CONFIG_NAME,
    MANIFEST_NAME,
    VEC_NORMALIZE_NAME,
    Manifest,
    model_file,
    vec_normalize_file,
)


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

    :param deterministic: deterministic actions; by default yes, except on Atari and MiniGrid (as the RL Zoo)
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
                                   config_file=CONFIG_NAME, parent_run=None)  # a local path: not the Hub's
    extras = {"env_package": _env_distribution(manifest.env_id)}
    (folder / MANIFEST_NAME).write_text(json.dumps({**dataclasses.asdict(packaged), **extras}, indent=2) + "\n")

    if deterministic is None:
        deterministic = not plays_stochastically(manifest.env_id)
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
    if evaluation.agent_returns:  # a multi-agent game: mean_reward is the agents' summed return
        results["agent_mean_rewards"] = {agent: mean for agent, (mean, _) in evaluation.agent_means().items()}
        results["agent_episode_returns"] = evaluation.agent_returns
    (folder / RESULTS_NAME).write_text(json.dumps(results, indent=2) + "\n")

    video = None
    if video_length > 0:
        say(f"Recording {video_length} steps to {REPLAY_NAME}")
        video = _record_replay(run_dir, folder / REPLAY_NAME, video_length, deterministic=deterministic, seed=seed,
                               load_best=load_best, checkpoint=checkpoint, device=device, echo=say)

    (folder / MODEL_CARD_NAME).write_text(model_card(
        packaged, spec, section, repo_id=repo_id, mean_reward=evaluation.mean, std_reward=evaluation.std,
        n_eval_episodes=len(evaluation.returns), deterministic=deterministic, has_video=video is not None,
        agent_returns=evaluation.agent_means(),
    ))
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    return PackageResult(folder, packaged, evaluation.mean, evaluation.std, len(evaluation.returns), video,
                         time.perf_counter() - started, [str(path.relative_to(folder)) for path in files],
                         sum(path.stat().st_size for path in files))


def _run_config_section(path: Path, env_id: str) -> dict[str, Any]:
    """The run's config section, read with the bounded reader: the run folder may be a download."""
    from rlhub.safe_loading import config_section, read_yaml

    _, section = config_section(read_yaml(path), env_id)
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

    if ":" in env_id:
        module = env_id.split(":", 1)[0]
    else:
        try:
            entry_point = gym.registry[ensure_registered(env_id)].entry_point
        except Exception:
            return None
        module = entry_point.split(":")[0] if isinstance(entry_point, str) else getattr(entry_point, "__module__", "")
    distributions = _packages_distributions().get(module.split(".")[0], [])
    return distributions[0] if distributions else None


@lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    import importlib.metadata

    return dict(importlib.metadata.packages_distributions())
