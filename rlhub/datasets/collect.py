"""``rlhub collect``: play an agent (or random actions), optionally perturbed, and write a Minari dataset."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlhub.datasets.data import DatasetError, OfflineData, datasets_root, offline_data
from rlhub.datasets.hdf5 import DATA_FORMAT, write_episodes


@dataclass
class CollectResult:
    dataset_id: str
    path: Path
    n_transitions: int
    n_episodes: int
    returns: list[float]
    seconds: float

    @property
    def transitions_per_second(self) -> float:
        return self.n_transitions / max(self.seconds, 1e-9)


#: ``policy(observation) -> action`` for one (unbatched) observation of the raw env.
Policy = Callable[[Any], Any]


def random_policy(action_space: gym.Space, seed: int | None = None) -> Policy:
    """Uniformly random actions (``rlhub collect --algo random``)."""
    action_space.seed(seed)
    return lambda observation: action_space.sample()


def perturbed(policy: Policy, action_space: gym.Space, rng: np.random.Generator, *, epsilon: float = 0.0,
              action_noise: float = 0.0) -> Policy:
    """``policy`` with epsilon-random actions (Discrete) or Gaussian noise of ``action_noise`` times
    the half range, clipped to the bounds (Box)."""
    if epsilon and not isinstance(action_space, gym.spaces.Discrete):
        raise DatasetError(f"--epsilon needs a Discrete action space, not {action_space}; use --action-noise")
    if action_noise and not isinstance(action_space, gym.spaces.Box):
        raise DatasetError(f"--action-noise needs a Box action space, not {action_space}; use --epsilon")
    if isinstance(action_space, gym.spaces.Discrete) and epsilon > 0:
        low, n = int(action_space.start), int(action_space.n)

        def epsilon_greedy(observation: Any) -> Any:
            if rng.random() < epsilon:
                return low + int(rng.integers(n))
            return policy(observation)
        return epsilon_greedy
    if isinstance(action_space, gym.spaces.Box) and action_noise > 0:
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise DatasetError(f"--action-noise is scaled to the action range, and {action_space} is unbounded")
        scale = action_noise * (action_space.high - action_space.low) / 2

        def noisy(observation: Any) -> Any:
            action = np.asarray(policy(observation), dtype=action_space.dtype)
            noise = rng.normal(size=action_space.shape) * scale
            return np.clip(action + noise, action_space.low, action_space.high).astype(action_space.dtype)
        return noisy
    return policy


def check_new_dataset_id(dataset_id: str) -> None:
    """Refuse an id Minari cannot parse, or one that exists already, before anything is played."""
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        parse_dataset_id(dataset_id)
    except Exception as error:
        raise DatasetError(f"--dataset-id {dataset_id!r} is not a Minari id ([namespace/]env/name-vN): {error}") from None
    if (datasets_root() / dataset_id).exists():
        raise DatasetError(f"dataset {dataset_id} exists already in {datasets_root()}: give a new name or version "
                           f"(e.g. -v{_next_version(dataset_id)})")


def _next_version(dataset_id: str) -> int:
    stem, _, version = dataset_id.rpartition("-v")
    return int(version) + 1 if version.isdigit() else 1


def play(env: gym.Env, policy: Policy, *, n_steps: int | None = None, n_episodes: int | None = None,
         seed: int | None = None, on_step: Callable[[int, int], None] | None = None) -> list[Any]:
    """Play ``policy`` on ``env`` for ``n_steps`` transitions or ``n_episodes`` episodes: Minari
    ``EpisodeBuffer``s of arrays. A step budget cuts the last episode short: it is recorded as truncated.

    :param on_step: called as ``on_step(transitions, episodes)`` after each step (a progress bar)
    """
    from minari.data_collector import EpisodeBuffer

    if (n_steps is None) == (n_episodes is None):
        raise DatasetError("give either a number of steps or a number of episodes")
    buffers: list[Any] = []
    total = 0
    rng = np.random.default_rng(seed)
    while (n_steps is None or total < n_steps) and (n_episodes is None or len(buffers) < n_episodes):
        episode_seed = int(rng.integers(2**31 - 1))
        observation, _ = env.reset(seed=episode_seed)
        observations, actions, rewards, terminations, truncations = [observation], [], [], [], []
        while True:
            action = policy(observation)
            observation, reward, terminated, truncated, _ = env.step(action)
            total += 1
            if n_steps is not None and total >= n_steps:
                truncated = truncated or not terminated
            observations.append(observation)
            actions.append(action)
            rewards.append(reward)
            terminations.append(terminated)
            truncations.append(truncated)
            if on_step is not None:
                on_step(total, len(buffers) + (terminated or truncated))
            if terminated or truncated:
                break
        buffers.append(EpisodeBuffer(id=len(buffers), seed=episode_seed, observations=np.asarray(observations),
                                     actions=np.asarray(actions), rewards=np.asarray(rewards, dtype=np.float64),
                                     terminations=np.asarray(terminations), truncations=np.asarray(truncations)))
    return buffers


def play_to_memory(env: gym.Env, policy: Policy, *, n_steps: int | None = None, n_episodes: int | None = None,
                   seed: int | None = None, dataset_id: str = "in-memory") -> OfflineData:
    """:func:`play`, kept in memory as an :class:`OfflineData` (tests and benchmarks need no files)."""
    episodes = play(env, policy, n_steps=n_steps, n_episodes=n_episodes, seed=seed)
    spec_id = env.spec.id if env.spec is not None else None
    return offline_data(dataset_id, [vars(episode) for episode in episodes], env.observation_space,
                        env.action_space, env_spec_id=spec_id)


def collect(env: gym.Env, policy: Policy, dataset_id: str, *, n_steps: int | None = None,
            n_episodes: int | None = None, seed: int | None = None, algorithm_name: str = "random",
            author: str | None = None, code_permalink: str | None = None, description: str | None = None,
            on_step: Callable[[int, int], None] | None = None) -> CollectResult:
    """:func:`play` ``policy`` on ``env`` and write a Minari dataset ``dataset_id`` (terminations and
    truncations apart, the env spec recorded).

    The episodes are gathered as arrays and written with ``minari.create_dataset_from_buffers``:
    Minari's ``DataCollector`` wrapper needs jax for its per-step ``tree_map`` (``minari[create]``).
    """
    import warnings

    import minari

    check_new_dataset_id(dataset_id)
    started = time.perf_counter()
    buffers = play(env, policy, n_steps=n_steps, n_episodes=n_episodes, seed=seed, on_step=on_step)
    with warnings.catch_warnings():  # Minari warns of every metadata field left out (author email, ...)
        warnings.simplefilter("ignore", UserWarning)
        dataset = minari.create_dataset_from_buffers(
            dataset_id, [], env=env, algorithm_name=algorithm_name, author=author,
            code_permalink=code_permalink, description=description, data_format=DATA_FORMAT,
            jpeg_encoding=False)  # lossless: an offline learner sees what the agent saw
    write_episodes(dataset.storage, buffers)
    returns = [float(np.sum(episode.rewards)) for episode in buffers]
    return CollectResult(dataset_id, datasets_root() / dataset_id, sum(len(episode.rewards) for episode in buffers),
                         len(buffers), returns, time.perf_counter() - started)


@dataclass
class AgentCollectResult(CollectResult):
    env_id: str = ""


def agent_policy(model: Any, vec_env: Any, deterministic: bool) -> Policy:
    """``model``'s action for one raw observation, normalised first as the agent was trained
    (``vec_env``'s VecNormalize statistics, frozen)."""
    from stable_baselines3.common.vec_env import VecNormalize, unwrap_vec_wrapper

    normalizer = unwrap_vec_wrapper(vec_env, VecNormalize)

    def act(observation: Any) -> Any:
        batch = np.expand_dims(np.asarray(observation), 0)
        if normalizer is not None:
            batch = normalizer.normalize_obs(batch)
        action, _ = model.predict(batch, deterministic=deterministic)
        return np.asarray(action)[0].item() if isinstance(model.action_space, gym.spaces.Discrete) \
            else np.asarray(action)[0]
    return act


def collect_with_agent(algo_id: str, *, dataset_id: str, env_id: str | None = None, folder: str | Path = "logs",
                       exp_id: int = 0, load_best: bool = False, repo_id: str | None = None,
                       n_steps: int | None = None, n_episodes: int | None = None, epsilon: float = 0.0,
                       action_noise: float = 0.0, deterministic: bool = True, env_kwargs: dict[str, Any] | None = None,
                       seed: int = 0, device: str = "auto", author: str | None = None, progress: bool = False,
                       trust_remote_code: bool = False) -> AgentCollectResult:
    """``rlhub collect``: play ``algo_id``'s agent (a run folder, a Hub repo) or random actions
    (``algo_id="random"``) on the raw env and write the dataset ``dataset_id``.

    The dataset holds the raw env's observations, what its users see: an agent trained with
    VecNormalize gets its observations normalised only to choose its actions.
    """
    from rlhub.envs import make_single_env
    from rlhub.parallel_envs import is_multi_agent

    check_new_dataset_id(dataset_id)
    agent = None
    if algo_id == "random":
        if not env_id:
            raise DatasetError("--algo random needs --env")
        if is_multi_agent(env_id):
            raise DatasetError(f"{env_id} is a multi-agent PettingZoo env: datasets (Minari) hold one agent's play, "
                               "so collect records single-agent Gymnasium envs only")
        env_kwargs = dict(env_kwargs or {})
        algorithm_name = "random"
    else:
        agent = _load_agent(algo_id, env_id, folder, exp_id, load_best, repo_id, device, trust_remote_code)
        if env_kwargs:
            raise DatasetError("--env-kwargs is for --algo random; an agent plays with the env kwargs it was trained "
                               "with")
        env_id, env_kwargs = agent.manifest.env_id, dict(agent.manifest.env_kwargs)
        if is_multi_agent(env_id):
            agent.env.close()
            raise DatasetError(f"{agent.manifest.algo_id} plays the multi-agent env {env_id}: datasets (Minari) hold "
                               "one agent's play, so collect records single-agent Gymnasium envs only")
        algorithm_name = f"rlhub {agent.manifest.algo_id} ({'deterministic' if deterministic else 'stochastic'})"
    env = make_single_env(env_id, env_kwargs)
    try:
        if agent is not None:
            if env.observation_space != agent.model.observation_space or env.action_space != agent.model.action_space:
                raise DatasetError(
                    f"the agent sees {agent.model.observation_space} and acts in {agent.model.action_space}, but the raw "
                    f"{env_id} has {env.observation_space} and {env.action_space} (an env_wrapper or frame_stack in "
                    "its config): collect records the raw env, so it cannot play this agent")
            policy = agent_policy(agent.model, agent.env, deterministic)
        else:
            policy = random_policy(env.action_space, seed)
        if epsilon or action_noise:
            algorithm_name += f", epsilon {epsilon}" if epsilon else f", action noise {action_noise}"
        policy = perturbed(policy, env.action_space, np.random.default_rng(seed + 1), epsilon=epsilon,
                           action_noise=action_noise)
        description = (f"Written by `rlhub collect --algo {algo_id}` on {env_id}"
                       + (f" ({agent.run_dir})" if agent is not None else ""))
        import rlhub

        options = dict(n_steps=n_steps, n_episodes=n_episodes, seed=seed, algorithm_name=algorithm_name,
                       author=author, description=description,
                       code_permalink=f"https://pypi.org/project/rlhub/{rlhub.__version__}/")
        if progress:
            result = _collect_with_progress(env, policy, dataset_id, **options)
        else:
            result = collect(env, policy, dataset_id, **options)
    finally:
        env.close()
        if agent is not None:
            agent.env.close()
    return AgentCollectResult(**vars(result), env_id=env_id)


def _load_agent(algo_id: str, env_id: str | None, folder: str | Path, exp_id: int, load_best: bool,
                repo_id: str | None, device: str, trust_remote_code: bool) -> Any:
    """The agent ``rlhub enjoy`` would play with the same options."""
    from rlhub.run_folder import MANIFEST_NAME, find_run_dir, load_agent

    if repo_id:
        from rlhub.hub import load_agent as load_hub_agent

        agent = load_hub_agent(repo_id, trust_remote_code=trust_remote_code, device=device)
    else:
        if (Path(folder) / MANIFEST_NAME).is_file():
            run_dir = Path(folder)
        elif env_id:
            run_dir = find_run_dir(folder, algo_id, env_id, exp_id)
        else:
            raise DatasetError("give --env (with -f the log folder), -f pointing at a run folder, or --repo-id")
        agent = load_agent(run_dir, load_best=load_best, device=device, trust_remote_code=trust_remote_code or None)
    if agent.manifest.algo_id != algo_id:
        agent.env.close()
        raise DatasetError(f"{agent.run_dir} holds a {agent.manifest.algo_id} agent, not {algo_id}: give --algo "
                           f"{agent.manifest.algo_id}")
    return agent


def _collect_with_progress(env: gym.Env, policy: Policy, dataset_id: str, **options: Any) -> CollectResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    n_steps, n_episodes = options.get("n_steps"), options.get("n_episodes")
    unit = "episodes" if n_steps is None else "transitions"
    with Progress(TextColumn(f"collecting {dataset_id}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                  TimeElapsedColumn()) as bar:
        task = bar.add_task("collect", total=n_steps or n_episodes)

        def on_step(transitions: int, episodes: int) -> None:
            if transitions % 256 == 0 or n_steps is None:
                bar.update(task, completed=transitions if n_steps is not None else episodes)

        result = collect(env, policy, dataset_id, on_step=on_step, **options)
        bar.update(task, completed=n_steps or n_episodes)
    return result
