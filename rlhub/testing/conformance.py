"""The conformance suite every registered algorithm passes, built-in or third-party.

Use it from a plugin's own tests::

    import pytest
    from rlhub.testing import check_algorithm

    def test_my_algo(tmp_path):
        check_algorithm("my_algo", tmp_path)

Each check raises ``AssertionError`` with a message saying which part of the contract broke.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from rlhub import registry
from rlhub.spec import DATASET_KINDS, AlgorithmSpec

#: Tiny budgets: the suite checks the contract, not learning (each plugin has its learning test).
CONFORMANCE_TIMESTEPS = 256

_DEFAULT_ENVS = {
    # (action space, observation space) -> environment
    ("Discrete", "Box"): "CartPole-v1",
    ("Box", "Box"): "Pendulum-v1",
    ("Discrete", "Discrete"): "FrozenLake-v1",
}


def conformance_env_id(spec: AlgorithmSpec) -> str:
    """The environment the suite trains ``spec`` on: its own choice, else one its spaces fit."""
    if spec.test_env_id:
        return spec.test_env_id
    for (action, observation), env_id in _DEFAULT_ENVS.items():
        if action in spec.action_spaces and observation in spec.observation_spaces:
            return env_id
    raise AssertionError(f"{spec.algo_id}: no default conformance env fits its spaces; set test_env_id in its spec")


def check_algorithm(algo_id: str, tmp_path: Path, *, n_timesteps: int = CONFORMANCE_TIMESTEPS) -> None:
    """Run every check of the contract on ``algo_id``."""
    spec = registry.get_algorithm(algo_id)
    check_spec(spec)
    check_config_file(spec)
    dataset = conformance_dataset(spec, Path(tmp_path))
    run_dir = check_train_save_load(spec, Path(tmp_path), n_timesteps=n_timesteps, dataset=dataset)
    check_hub_round_trip(spec, Path(tmp_path), run_dir=run_dir, n_timesteps=n_timesteps, dataset=dataset)


#: Transitions of the random-action dataset an offline (or imitation) algorithm learns from in the suite.
CONFORMANCE_DATASET_STEPS = 1000


def conformance_dataset(spec: AlgorithmSpec, tmp_path: Path) -> Path | None:
    """For an offline or imitation algorithm, a small dataset of random actions on its conformance env,
    written as ``rlhub collect --algo random`` writes one (under ``tmp_path``); None for other kinds.

    :return: the dataset's folder
    """
    if spec.kind not in DATASET_KINDS:
        return None
    import os

    from rlhub import datasets
    from rlhub.envs import make_single_env

    env_id = conformance_env_id(spec)
    root = Path(tmp_path) / "minari"
    dataset_id = f"conformance/{env_id}/random-v0"
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)  # Minari writes only under it
    env = make_single_env(env_id)
    try:
        if not (root / dataset_id).exists():
            datasets.collect(env, datasets.random_policy(env.action_space, 0), dataset_id,
                             n_steps=CONFORMANCE_DATASET_STEPS, seed=0)
    finally:
        env.close()
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous
    return root / dataset_id


def check_spec(spec: AlgorithmSpec) -> None:
    """The class imports, subclasses SB3's BaseAlgorithm, and every argument but policy/env has a default."""
    import inspect

    from stable_baselines3.common.base_class import BaseAlgorithm

    algo_class = spec.load()
    assert issubclass(algo_class, BaseAlgorithm), f"{spec.class_path} must subclass SB3's BaseAlgorithm"
    parameters = inspect.signature(algo_class.__init__).parameters
    assert "_init_setup_model" in parameters, f"{spec.class_path} must take _init_setup_model"
    missing = [
        name for name, parameter in parameters.items()
        if name not in ("self", "policy", "env") and parameter.default is inspect.Parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    assert not missing, f"{spec.class_path}: constructor arguments without a default: {', '.join(missing)}"


def check_config_file(spec: AlgorithmSpec) -> None:
    """``<algo_id>.yml`` exists and every section in it validates."""
    import yaml

    from rlhub.config import find_config_file, read_section, resolve_section

    path = find_config_file(spec.algo_id, registry.zoo_config_dirs())
    sections = yaml.safe_load(path.read_text()) or {}
    assert sections, f"{path} is empty"
    algo_class = spec.load()
    for env_id in sections:
        name, raw = read_section(path, env_id)
        resolve_section(spec.algo_id, env_id, algo_class, raw, source=path, section=name)


def check_train_save_load(spec: AlgorithmSpec, tmp_path: Path, *, n_timesteps: int,
                          dataset: Path | None = None) -> Path:
    """A short ``rlhub train`` writes a run folder whose agent reloads and acts exactly as trained.
    An offline algorithm learns from ``dataset`` (default: :func:`conformance_dataset`'s), reloads
    without it, and its manifest records it.

    :return: the run folder
    """
    from rlhub.experiment import TrainOptions, train
    from rlhub.run_folder import Manifest, load_agent

    env_id = conformance_env_id(spec)
    if dataset is None:
        dataset = conformance_dataset(spec, tmp_path)
    result = train(TrainOptions(
        spec.algo_id, env_id, n_timesteps=n_timesteps, log_folder=tmp_path / "logs", seed=0, eval_freq=-1,
        verbose=0, device="cpu", dataset=dataset,
    ))
    assert result.model.num_timesteps >= n_timesteps, (
        f"{spec.algo_id}: learn({n_timesteps}) stopped at {result.model.num_timesteps} steps"
    )
    manifest = Manifest.read(result.run_dir)
    assert manifest.algo_id == spec.algo_id and manifest.env_id == env_id
    if dataset is not None:
        assert manifest.dataset is not None and manifest.dataset["n_transitions"] > 0, (
            f"{spec.algo_id}: the manifest of an offline run does not record its dataset")
    assert (result.run_dir / manifest.model_file).is_file(), f"{spec.algo_id}: no model file written"
    assert any((result.run_dir / "tensorboard").rglob("events.out.tfevents.*")), (
        f"{spec.algo_id}: learn() wrote no TensorBoard events; log through self.logger and dump"
    )

    agent = load_agent(result.run_dir, device="cpu")
    observations = sample_observations(agent.env, 16)
    trained_actions = predict_all(result.model, observations)
    loaded_actions = predict_all(agent.model, observations)
    for action in loaded_actions:
        assert agent.env.action_space.contains(_as_space_sample(action, agent.env.action_space)), (
            f"{spec.algo_id}: predicted action {action!r} is outside {agent.env.action_space}"
        )
    np.testing.assert_allclose(
        np.asarray(trained_actions, dtype=float), np.asarray(loaded_actions, dtype=float), rtol=1e-5, atol=1e-6,
        err_msg=f"{spec.algo_id}: the reloaded agent acts differently; list every module and learnable tensor in "
                "_get_torch_save_params and rebuild the rest in _setup_model",
    )
    check_parameters_equal(result.model, agent.model, spec.algo_id)
    agent.env.close()
    return result.run_dir


def check_hub_round_trip(spec: AlgorithmSpec, tmp_path: Path, run_dir: Path | None = None, *,
                         n_timesteps: int = CONFORMANCE_TIMESTEPS, dataset: Path | None = None) -> None:
    """The agent packaged for the Hub loads back with ``rlhub.hub`` as a downloaded agent (nothing
    unpickled) and acts exactly as before: every object it needs is rebuilt from the environment,
    the manifest and the config, every tensor is in ``_get_torch_save_params``."""
    from rlhub import hub
    from rlhub.experiment import TrainOptions, train
    from rlhub.run_folder import load_agent

    if run_dir is None:
        if dataset is None:
            dataset = conformance_dataset(spec, Path(tmp_path))
        run_dir = train(TrainOptions(
            spec.algo_id, conformance_env_id(spec), n_timesteps=n_timesteps, log_folder=Path(tmp_path) / "logs",
            seed=0, eval_freq=-1, verbose=0, device="cpu", dataset=dataset,
        )).run_dir
    folder = Path(tmp_path) / "hub_package"
    packaged = hub.package(run_dir, folder, n_eval_episodes=1, video_length=0, device="cpu")
    for name in (packaged.manifest.model_file, "config.yml", "rlhub.json", "results.json", "README.md"):
        assert (folder / name).is_file(), f"{spec.algo_id}: the Hub package lacks {name}"
    original = load_agent(run_dir, device="cpu", trust_remote_code=True)
    try:
        downloaded = hub.load_agent(folder, device="cpu", trust_remote_code=False)
    except Exception as error:
        original.env.close()
        raise AssertionError(
            f"{spec.algo_id}: the packaged agent does not load without unpickling ({type(error).__name__}: {error}). "
            "Keep learnable state in tensors listed by _get_torch_save_params, plain values (numbers, arrays) in "
            "attributes, and everything else rebuildable by the constructor and _setup_model from the config."
        ) from error
    observations = sample_observations(original.env, 16)
    np.testing.assert_allclose(
        np.asarray(predict_all(original.model, observations), dtype=float),
        np.asarray(predict_all(downloaded.model, observations), dtype=float), rtol=1e-5, atol=1e-6,
        err_msg=f"{spec.algo_id}: the agent loaded from its Hub package acts differently from the trained one",
    )
    check_parameters_equal(original.model, downloaded.model, spec.algo_id)
    original.env.close()
    downloaded.env.close()


def sample_observations(env: Any, count: int) -> list[Any]:
    """Observations from playing random actions on a one-env VecEnv."""
    observations = []
    obs = env.reset()
    for _ in range(count):
        observations.append(obs)
        obs, *_ = env.step(np.array([env.action_space.sample()]))
    return observations


def predict_all(model: Any, observations: list[Any]) -> list[Any]:
    """The first env's action for each observation; a multi-agent action (a dict keyed by agent) as
    the agents' actions concatenated, in the action space's order."""
    actions = []
    for obs in observations:
        action, _ = model.predict(obs, state=None, episode_start=np.ones((1,), dtype=bool), deterministic=True)
        if isinstance(action, dict):
            actions.append(np.concatenate([np.asarray(action[agent][0], dtype=float).reshape(-1)
                                           for agent in model.action_space.spaces]))
        else:
            actions.append(np.asarray(action)[0])
    return actions


def _as_space_sample(action: Any, space: Any) -> Any:
    if isinstance(space, spaces.Dict):  # predict_all's concatenation, cut back into the agents' actions
        sample, start = {}, 0
        for agent, agent_space in space.spaces.items():
            size = int(np.prod(agent_space.shape or (1,)))
            sample[agent] = _as_space_sample(action[start:start + size].reshape(agent_space.shape or ()), agent_space)
            start += size
        return sample
    return np.asarray(action, dtype=space.dtype) if space.shape else int(action)


def check_parameters_equal(model: Any, loaded: Any, algo_id: str) -> None:
    """Every saved tensor (modules and learnable tensors) came back unchanged."""
    original = model.get_parameters()
    reloaded = loaded.get_parameters()
    assert original.keys() == reloaded.keys(), f"{algo_id}: saved objects differ: {original.keys()} vs {reloaded.keys()}"
    for name, state in original.items():
        for key, tensor in state.items():
            if hasattr(tensor, "cpu"):
                np.testing.assert_array_equal(
                    tensor.cpu().numpy(), reloaded[name][key].cpu().numpy(),
                    err_msg=f"{algo_id}: {name}.{key} changed across save/load",
                )
