"""The shipped zoo_configs validate, and the loader (rlhub.config) reports bad files clearly.

Fast: nothing here builds an environment or trains.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.noise import OrnsteinUhlenbeckActionNoise

from rlhub import registry
from rlhub.config import (
    ConfigError,
    find_config_file,
    load_zoo_config,
    make_action_noise,
    parse_expression,
    read_section,
    resolve_section,
)

SB3_IDS = ("a2c", "ars", "crossq", "ddpg", "dqn", "ppo", "ppo_lstm", "ppo_mask", "qrdqn", "sac", "td3", "tqc", "trpo")
DISCRETE_ENVS = ("CartPole-v1", "LunarLander-v3", "MountainCar-v0", "Acrobot-v1")
CONTINUOUS_ENVS = ("Pendulum-v1", "LunarLanderContinuous-v3", "MountainCarContinuous-v0", "HalfCheetahBulletEnv-v0")


def _shipped_sections() -> list[tuple[str, str]]:
    """(algo_id, section) for every section of every shipped file named after a registered algorithm."""
    algo_ids = {spec.algo_id for spec in registry.list_algorithms()}
    found = []
    for directory in registry.zoo_config_dirs():
        for path in sorted(Path(directory).glob("*.yml")):
            if path.stem in algo_ids:
                sections = yaml.safe_load(path.read_text()) or {}
                found.extend((path.stem, str(section)) for section in sections)
    return found


@pytest.mark.parametrize(("algo_id", "section"), _shipped_sections())
def test_shipped_section_validates(algo_id: str, section: str) -> None:
    spec = registry.get_algorithm(algo_id)
    algo_class = spec.load()
    path = find_config_file(algo_id, registry.zoo_config_dirs())
    name, raw = read_section(path, section)
    assert name == section
    config = resolve_section(algo_id, section, algo_class, raw, source=path, section=name)
    if isinstance(config.policy, str):
        assert config.policy in algo_class.policy_aliases, (
            f"{path}, env {section}: policy {config.policy!r} is not one of {sorted(algo_class.policy_aliases)}"
        )


@pytest.mark.parametrize("algo_id", SB3_IDS)
def test_sb3_files_cover_the_classic_envs(algo_id: str) -> None:
    spec = registry.get_algorithm(algo_id)
    sections = yaml.safe_load(find_config_file(algo_id, registry.zoo_config_dirs()).read_text())
    expected = ["default"]
    if algo_id == "ppo_mask":
        expected.append("rlhub/InvalidActionEnvDiscrete-v0")
    else:
        if "Discrete" in spec.action_spaces:
            expected.extend(DISCRETE_ENVS)
        if "Box" in spec.action_spaces:
            expected.extend(CONTINUOUS_ENVS)
    missing = [env_id for env_id in expected if env_id not in sections]
    assert not missing, f"{algo_id}.yml has no section for {', '.join(missing)}"


@pytest.mark.parametrize(("algo_id", "env_id", "budget"), [
    ("ppo", "CartPole-v1", 100_000),
    ("dqn", "CartPole-v1", 50_000),
    ("trpo", "Pendulum-v1", 100_000),
])
def test_benchmark_budgets_are_the_zoo_ones(algo_id: str, env_id: str, budget: int) -> None:
    spec = registry.get_algorithm(algo_id)
    config = load_zoo_config(algo_id, env_id, spec.load())
    assert config.n_timesteps == budget


# --------------------------------------------------------------------------------------------
# Loader errors and features, on files written to tmp_path


def _write(tmp_path: Path, document: dict | str, name: str = "ppo.yml") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def _load(tmp_path: Path, section: dict, env_id: str = "CartPole-v1", algo_class: type = PPO, algo_id: str = "ppo"):
    path = _write(tmp_path, {env_id: {"n_timesteps": 1000, **section}}, f"{algo_id}.yml")
    return load_zoo_config(algo_id, env_id, algo_class, conf_file=path)


def test_unknown_key_names_file_env_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, {"n_stepz": 64})
    message = str(error.value)
    assert str(tmp_path / "ppo.yml") in message
    assert "env CartPole-v1" in message
    assert "'n_stepz'" in message
    assert "Did you mean 'n_steps'" in message


def test_unknown_key_found_through_default_section(tmp_path: Path) -> None:
    path = _write(tmp_path, {"default": {"n_timesteps": 1000, "not_a_parameter": 1}})
    with pytest.raises(ConfigError, match=r"env default, key 'not_a_parameter': unknown hyperparameter for ppo"):
        load_zoo_config("ppo", "Acrobot-v1", PPO, conf_file=path)


@pytest.mark.parametrize(("section", "key", "expected"), [
    ({"n_steps": "many"}, "n_steps", "expected int"),
    ({"n_steps": 64.5}, "n_steps", "expected int"),
    ({"gamma": "high"}, "gamma", "expected float"),
    ({"normalize_advantage": "yes"}, "normalize_advantage", "expected bool"),
    ({"n_envs": "8"}, "n_envs", "expected int"),
    ({"n_envs": True}, "n_envs", "expected int"),
    ({"policy": 3}, "policy", "expected str"),
    ({"policy_kwargs": "[64, 64]"}, "policy_kwargs", "expected a mapping"),
])
def test_bad_type_is_an_error(tmp_path: Path, section: dict, key: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=rf"env CartPole-v1, key '{key}': {expected}"):
        _load(tmp_path, section)


def test_numbers_are_coerced(tmp_path: Path) -> None:
    # YAML reads 1e-3 (no dot) as a string and !!float 1e5 as a float: both are what the Zoo writes.
    config = _load(tmp_path, {"learning_rate": "1e-3", "n_steps": 64.0, "gamma": 1}, algo_class=PPO)
    assert config.hyperparams["learning_rate"] == pytest.approx(1e-3)
    assert config.hyperparams["n_steps"] == 64 and isinstance(config.hyperparams["n_steps"], int)
    assert isinstance(config.hyperparams["gamma"], float)


@pytest.mark.parametrize("section", [
    {"env_wrapper": "no_such_package.wrappers.Wrapper"},
    {"env_wrapper": [{"gymnasium.wrappers.NoSuchWrapper": {"x": 1}}]},
    {"callback": "stable_baselines3.common.callbacks.NoSuchCallback"},
    {"policy_kwargs": "dict(activation_fn=nn.NoSuchActivation)"},
    {"policy_kwargs": {"activation_fn": "torch.nn.NoSuchActivation"}},
    {"policy": "no_such_package.Policy"},
])
def test_unresolvable_dotted_path_is_an_error(tmp_path: Path, section: dict) -> None:
    with pytest.raises(ConfigError, match=r"cannot import .*check the spelling"):
        _load(tmp_path, section)


def test_dotted_paths_resolve(tmp_path: Path) -> None:
    from gymnasium.wrappers import TimeAwareObservation
    from sb3_contrib.common.wrappers import TimeFeatureWrapper
    from stable_baselines3.common.callbacks import StopTrainingOnMaxEpisodes

    config = _load(tmp_path, {
        "env_wrapper": ["sb3_contrib.common.wrappers.TimeFeatureWrapper",
                        {"gymnasium.wrappers.TimeAwareObservation": {"flatten": True}}],
        "callback": [{"stable_baselines3.common.callbacks.StopTrainingOnMaxEpisodes": {"max_episodes": 5}}],
        "frame_stack": 2,
    })
    assert config.env_wrapper.wrappers == [(TimeFeatureWrapper, {}), (TimeAwareObservation, {"flatten": True})]
    assert config.callbacks == [(StopTrainingOnMaxEpisodes, {"max_episodes": 5})]
    assert config.frame_stack == 2


def test_linear_schedule(tmp_path: Path) -> None:
    config = _load(tmp_path, {"learning_rate": "lin_0.001", "clip_range": "lin_0.2"})
    learning_rate = config.hyperparams["learning_rate"]
    assert callable(learning_rate)
    assert learning_rate(1.0) == pytest.approx(0.001)  # progress_remaining 1 = start of training
    assert learning_rate(0.5) == pytest.approx(0.0005)
    assert learning_rate(0.0) == pytest.approx(0.0)
    assert config.hyperparams["clip_range"](1.0) == pytest.approx(0.2)
    assert config.raw["learning_rate"] == "lin_0.001"  # config.yml keeps what was written


def test_bad_linear_schedule(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"key 'learning_rate': a linear schedule reads 'lin_<number>'"):
        _load(tmp_path, {"learning_rate": "lin_fast"})


def test_zoo_dict_strings(tmp_path: Path) -> None:
    # Written the way the Zoo's files write it: a YAML string folded over several lines.
    text = """
HalfCheetahBulletEnv-v0:
  n_timesteps: !!float 2e6
  normalize: "{'norm_obs': True, 'norm_reward': False}"
  policy_kwargs: "dict(log_std_init=-2,
                       ortho_init=False,
                       activation_fn=nn.ReLU,
                       net_arch=dict(pi=[256, 256], vf=[256, 256])
                       )"
"""
    path = _write(tmp_path, text)
    config = load_zoo_config("ppo", "HalfCheetahBulletEnv-v0", PPO, conf_file=path)
    assert config.hyperparams["policy_kwargs"] == {
        "log_std_init": -2,
        "ortho_init": False,
        "activation_fn": torch.nn.ReLU,
        "net_arch": {"pi": [256, 256], "vf": [256, 256]},
    }
    assert config.normalize == {"norm_obs": True, "norm_reward": False}
    assert config.n_timesteps == 2_000_000


def test_zoo_expression_parser() -> None:
    assert parse_expression("dict(net_arch=[64, 64], activation_fn=nn.Tanh)") == {
        "net_arch": [64, 64], "activation_fn": torch.nn.Tanh,
    }
    assert parse_expression("dict(optimizer_class=th.optim.RMSprop, optimizer_kwargs=dict(eps=1e-5))") == {
        "optimizer_class": torch.optim.RMSprop, "optimizer_kwargs": {"eps": 1e-5},
    }
    assert parse_expression("dict(goal_selection_strategy='future', n_sampled_goal=4,)") == {
        "goal_selection_strategy": "future", "n_sampled_goal": 4,
    }
    assert parse_expression("(1, 'episode')") == (1, "episode")
    with pytest.raises(ConfigError, match="cannot parse"):
        parse_expression("dict(net_arch=[64, 64]")


@pytest.mark.parametrize("text", [
    "__import__('os').system('x')",
    "os.system('x')",
    "dict(net_arch=__import__('os').system('x'))",
    "dict(x=eval('1'))",
    "dict(x=[i for i in range(3)])",
    "dict(x=1 + 1)",
    "dict(x=lambda: 1)",
])
def test_no_eval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    calls = []
    monkeypatch.setattr(os, "system", lambda command: calls.append(command))
    with pytest.raises(ConfigError, match="is not allowed: use literals, dict"):
        _load(tmp_path, {"policy_kwargs": text})
    with pytest.raises(ConfigError, match="is not allowed"):
        _load(tmp_path, {"normalize": text})
    assert calls == []


def test_normalize_forms(tmp_path: Path) -> None:
    assert _load(tmp_path, {"normalize": True}).normalize == {}
    assert _load(tmp_path, {"normalize": False}).normalize is None
    assert _load(tmp_path, {}).normalize is None
    assert _load(tmp_path, {"normalize": {"norm_reward": False}}).normalize == {"norm_reward": False}
    assert _load(tmp_path, {"normalize": "dict(norm_obs=True, norm_reward=False)"}).normalize == {
        "norm_obs": True, "norm_reward": False,
    }
    assert _load(tmp_path, {"normalize": True, "normalize_kwargs": "dict(gamma=0.9)"}).normalize == {"gamma": 0.9}
    # As the RL Zoo does, VecNormalize discounts returns with the algorithm's gamma.
    assert _load(tmp_path, {"normalize": "dict(norm_obs=False)", "gamma": 0.95}).normalize == {
        "norm_obs": False, "gamma": 0.95,
    }


def test_train_freq_list_and_noise(tmp_path: Path) -> None:
    from stable_baselines3 import TD3

    config = _load(tmp_path, {"train_freq": [1, "episode"], "noise_type": "ornstein-uhlenbeck", "noise_std": 0.5},
                   env_id="Pendulum-v1", algo_class=TD3, algo_id="td3")
    assert config.hyperparams["train_freq"] == (1, "episode")
    assert config.noise == ("ornstein-uhlenbeck", 0.5)
    import gymnasium as gym
    import numpy as np

    noise = make_action_noise(config.noise, gym.spaces.Box(-1, 1, (2,)))
    assert isinstance(noise, OrnsteinUhlenbeckActionNoise)
    assert np.allclose(noise._sigma, 0.5)
    with pytest.raises(ConfigError, match="key 'noise_type': must be one of"):
        _load(tmp_path, {"noise_type": "pink"}, env_id="Pendulum-v1", algo_class=TD3, algo_id="td3")


def test_dqn_section_with_policy_kwargs(tmp_path: Path) -> None:
    config = _load(tmp_path, {"policy_kwargs": "dict(net_arch=[256, 256])", "buffer_size": 1e5,
                              "target_update_interval": 10}, algo_class=DQN, algo_id="dqn")
    assert config.hyperparams == {"policy_kwargs": {"net_arch": [256, 256]}, "buffer_size": 100_000,
                                  "target_update_interval": 10}


@pytest.mark.parametrize(("section", "message"), [
    ({"n_timesteps": 0}, "key 'n_timesteps': must be a positive whole number"),
    ({"n_timesteps": 10.5}, "key 'n_timesteps': must be a positive whole number"),
    ({"n_timesteps": 100, "n_envs": 0}, "key 'n_envs': must be at least 1"),
])
def test_bad_values(tmp_path: Path, section: dict, message: str) -> None:
    path = _write(tmp_path, {"CartPole-v1": section})
    with pytest.raises(ConfigError, match=message):
        load_zoo_config("ppo", "CartPole-v1", PPO, conf_file=path)


def test_section_lookup(tmp_path: Path) -> None:
    path = _write(tmp_path, {"default": {"n_timesteps": 1}, "atari": {"n_timesteps": 2},
                             "CartPole-v1": {"n_timesteps": 3}})
    assert read_section(path, "CartPole-v1")[0] == "CartPole-v1"
    assert read_section(path, "gymnasium:CartPole-v1")[0] == "CartPole-v1"
    assert read_section(path, "PongNoFrameskip-v4")[0] == "atari"
    assert read_section(path, "ALE/Pong-v5")[0] == "atari"
    assert read_section(path, "Acrobot-v1")[0] == "default"

    no_default = _write(tmp_path, {"CartPole-v1": {"n_timesteps": 3}}, "a2c.yml")
    with pytest.raises(ConfigError, match=r"has no section for 'Acrobot-v1' and no 'default'. Sections: CartPole-v1"):
        read_section(no_default, "Acrobot-v1")


@pytest.mark.parametrize(("text", "message"), [
    ("CartPole-v1: [1, 2]\n", "the section must be a mapping"),
    ("- CartPole-v1\n", "must map environment ids to hyperparameters"),
    ("CartPole-v1:\n  n_steps: [1\n", "is not valid YAML"),
])
def test_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_section(_write(tmp_path, text), "CartPole-v1")


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"No hyperparameter file nothing.yml in .*--conf-file"):
        find_config_file("nothing", [tmp_path])
    with pytest.raises(ConfigError, match="does not exist"):
        load_zoo_config("ppo", "CartPole-v1", PPO, conf_file=tmp_path / "missing.yml")


def test_overrides_are_validated_too(tmp_path: Path) -> None:
    path = _write(tmp_path, {"CartPole-v1": {"n_timesteps": 1000}})
    config = load_zoo_config("ppo", "CartPole-v1", PPO, conf_file=path, overrides={"n_steps": 16})
    assert config.hyperparams == {"n_steps": 16}
    with pytest.raises(ConfigError, match="key 'n_stepz'"):
        load_zoo_config("ppo", "CartPole-v1", PPO, conf_file=path, overrides={"n_stepz": 16})


def test_keyword_unpacking_in_a_zoo_string_is_rejected():
    from rlhub.config import ConfigError, parse_expression

    with pytest.raises(ConfigError, match="not allowed"):
        parse_expression("dict(**{'net_arch': [64]})")
