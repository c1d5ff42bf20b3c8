"""`rlhub train` validates the whole call before any env is built for training or any run folder
written: env kwargs, hyperparameters `train` sets itself, policies and their arguments, and the RL
Zoo's section keys; each mistake is one plain paragraph that says what was wrong and what to do."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from gymnasium.envs.registration import EnvSpec
from stable_baselines3 import A2C, PPO

from rlhub.cli import main
from rlhub.config import ConfigError, find_config_file, load_zoo_config, read_section
from rlhub.envs import check_env_kwargs


def train(tmp_path: Path, *args, expect: int = 2) -> str:
    """``rlhub train`` in ``tmp_path/logs``, 64 steps unless ``args`` say otherwise; its output."""
    result = CliRunner().invoke(main, ["train", "-f", str(tmp_path / "logs"), "-n", "64", "--eval-freq", "-1", "-q",
                                       *map(str, args)], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    if expect == 2:
        assert "Traceback" not in result.output
    return result.output


def nothing_trained(tmp_path: Path) -> bool:
    return not list((tmp_path / "logs").rglob("*.*"))


def conf_file(tmp_path: Path, sections: dict) -> Path:
    path = tmp_path / "conf.yml"
    path.write_text(yaml.safe_dump(sections))
    return path


@pytest.mark.parametrize("env_id", ["FrozenLake-v1", "gymnasium:FrozenLake-v1"])
def test_env_kwargs_the_env_does_not_take_are_refused(tmp_path, env_id):
    output = train(tmp_path, "--algo", "ppo", "--env", env_id, "--env-kwargs", "is_slipery:False")
    assert "--env-kwargs: FrozenLake-v1 takes no argument 'is_slipery'. Did you mean 'is_slippery'?" in output
    assert "It takes: desc, " in output and "map_name" in output
    assert not (tmp_path / "logs").exists()


def test_env_kwargs_of_the_config_are_checked_too(tmp_path):
    path = conf_file(tmp_path, {"FrozenLake-v1": {"n_timesteps": 64, "env_kwargs": {"mapname": "8x8"}}})
    output = train(tmp_path, "--algo", "ppo", "--env", "FrozenLake-v1", "-conf", path)
    assert f"{path}, env FrozenLake-v1, key 'env_kwargs': FrozenLake-v1 takes no argument 'mapname'" in output
    assert "Did you mean 'map_name'?" in output


def test_an_env_taking_any_keyword_accepts_any(monkeypatch):
    monkeypatch.setitem(gym.registry, "AnyKwargs-v0",
                        EnvSpec("AnyKwargs-v0", entry_point=lambda **kwargs: gym.make("CartPole-v1")))
    check_env_kwargs("AnyKwargs-v0", {"whatever": 1}, "--env-kwargs")
    with pytest.raises(ConfigError, match="CartPole-v1 takes no argument 'whatever'"):
        check_env_kwargs("CartPole-v1", {"whatever": 1}, "--env-kwargs")


def test_an_env_kwarg_of_a_bad_value_is_reported_with_the_env_and_its_error(tmp_path):
    output = train(tmp_path, "--algo", "ppo", "--env", "FrozenLake-v1", "--env-kwargs", "map_name:9x9")
    assert "FrozenLake-v1 could not be made with the env kwargs {'map_name': '9x9'}" in output
    assert "fix the value the error names. The error: KeyError: '9x9'" in output
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(("key", "value", "option"), [
    ("seed", 1, "--seed"), ("verbose", 0, "-q/--quiet"), ("device", "cpu", "--device"),
    ("tensorboard_log", "tb", "-tb/--tensorboard-log"),
])
def test_arguments_train_sets_itself_are_refused_as_hyperparameters(tmp_path, key, value, option):
    output = train(tmp_path, "--algo", "ppo", "--env", "CartPole-v1", "-params", f"{key}:{value}")
    assert f"key '{key}' from --hyperparams: rlhub train sets it, not the config: use {option}" in output
    path = conf_file(tmp_path, {"CartPole-v1": {"n_timesteps": 64, key: value}})
    output = train(tmp_path, "--algo", "ppo", "--env", "CartPole-v1", "-conf", path)
    assert f"{path}, env CartPole-v1, key '{key}': rlhub train sets it" in output and option in output
    assert not (tmp_path / "logs").exists()


def test_the_unknown_key_error_lists_only_what_a_config_may_set(tmp_path):
    output = train(tmp_path, "--algo", "ppo", "--env", "CartPole-v1", "-params", "n_stepz:8")
    known = output.split("Known: ")[1]
    assert "n_steps" in known and not {"seed", "verbose", "device", "tensorboard_log"} & set(known.split(", "))


class AnyKwargsPolicy(PPO.policy_aliases["MlpPolicy"]):
    def __init__(self, *args, **kwargs):
        super().__init__(*args)


def test_policy_kwargs_the_policy_does_not_take_are_refused(tmp_path):
    output = train(tmp_path, "--algo", "ppo", "--env", "CartPole-v1", "-params", "policy_kwargs:dict(net_archh=[64])")
    assert "key 'policy_kwargs' from --hyperparams: ActorCriticPolicy takes no argument 'net_archh'." in output
    assert "Did you mean 'net_arch'?" in output and "It takes: " in output
    assert not (tmp_path / "logs").exists()
    # A policy that takes any keyword (**kwargs) is given any.
    path = conf_file(tmp_path, {"CartPole-v1": {"n_timesteps": 64, "policy": f"{__name__}.AnyKwargsPolicy",
                                                "policy_kwargs": "dict(net_archh=[64])"}})
    assert load_zoo_config("ppo", "CartPole-v1", PPO, conf_file=path).policy is AnyKwargsPolicy


def test_a_policy_the_algorithm_lacks_is_refused(tmp_path):
    output = train(tmp_path, "--algo", "ppo", "--env", "CartPole-v1", "-params", "policy:NoSuchPolicy")
    assert "key 'policy' from --hyperparams: ppo has no policy 'NoSuchPolicy'. Available: MlpPolicy, CnnPolicy" in output
    path = conf_file(tmp_path, {"CartPole-v1": {"n_timesteps": 64, "policy": "MlpPolicyy"}})
    output = train(tmp_path, "--algo", "ppo", "--env", "CartPole-v1", "-conf", path)
    assert f"{path}, env CartPole-v1, key 'policy': ppo has no policy 'MlpPolicyy'. Did you mean 'MlpPolicy'" in output
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(("args", "blamed"), [
    (["-params", "n_stepz:8"], "key 'n_stepz' from --hyperparams: unknown hyperparameter for ppo"),
    (["--n-envs", 0], "key 'n_envs' from --n-envs: must be at least 1"),
    (["-n", 0], "key 'n_timesteps' from -n/--n-timesteps: must be a positive whole number"),
    (["-params", "normalize:3"], "key 'normalize' from --hyperparams: expected bool or str or dict"),
])
def test_errors_about_command_line_values_name_the_option(tmp_path, args, blamed):
    output = train(tmp_path, "--algo", "ppo", "--env", "CartPole-v1", *args)
    assert blamed in output and "ppo.yml" not in output


def test_the_atari_section_is_chosen_by_the_entry_point(tmp_path, monkeypatch):
    # An id with no Atari marker in its name, registered as ale_py registers Pong-v4.
    monkeypatch.setitem(gym.registry, "Pongish-v4", EnvSpec("Pongish-v4", entry_point="ale_py.env:AtariEnv"))
    path = find_config_file("a2c", [Path(__file__).parents[1] / "zoo_configs"])
    assert read_section(path, "Pongish-v4")[0] == "atari"
    assert read_section(path, "CartPole-v1")[0] == "CartPole-v1"


def test_the_rl_zoo_a2c_atari_section_loads_as_written(monkeypatch):
    from stable_baselines3.common.atari_wrappers import AtariWrapper
    from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike

    from rlhub.safe_loading.imports import safe_import

    monkeypatch.setitem(gym.registry, "Pongish-v4", EnvSpec("Pongish-v4", entry_point="ale_py.env:AtariEnv"))
    path = find_config_file("a2c", [Path(__file__).parents[1] / "zoo_configs"])
    assert "optimizer_class=RMSpropTFLike," in path.read_text()  # the RL Zoo's bare name, not a full path
    config = load_zoo_config("a2c", "Pongish-v4", A2C, conf_file=path)
    assert (config.section, config.policy, config.n_envs, config.n_timesteps, config.frame_stack) == (
        "atari", "CnnPolicy", 16, 10_000_000, 4)
    assert config.hyperparams["policy_kwargs"] == {"optimizer_class": RMSpropTFLike, "optimizer_kwargs": {"eps": 1e-5}}
    assert config.env_wrapper.wrappers == [(AtariWrapper, {})]
    assert safe_import("RMSpropTFLike") is RMSpropTFLike  # a downloaded RL Zoo config may name it too


def test_env_kwargs_and_monitor_kwargs_of_a_section_reach_the_envs(tmp_path):
    path = conf_file(tmp_path, {"FrozenLake-v1": {
        "n_timesteps": 64, "n_envs": 1, "n_steps": 32, "batch_size": 32, "policy": "MlpPolicy",
        "env_kwargs": {"is_slippery": False, "map_name": "4x4"},
        "monitor_kwargs": "dict(info_keywords=('prob',))",
    }})
    train(tmp_path, "--algo", "ppo", "--env", "FrozenLake-v1", "-conf", path, "--env-kwargs", "map_name:8x8",
          expect=0)
    run_dir = tmp_path / "logs" / "ppo" / "FrozenLake-v1_1"
    manifest = json.loads((run_dir / "rlhub.json").read_text())
    assert manifest["env_kwargs"] == {"is_slippery": False, "map_name": "8x8"}  # the command line wins
    with open(run_dir / "0.monitor.csv") as monitor:
        next(monitor)  # Monitor's JSON comment line
        assert next(csv.reader(monitor)) == ["r", "l", "t", "prob"]


def test_a_bad_wrapper_argument_is_reported_with_its_config_key(tmp_path):
    path = conf_file(tmp_path, {"CartPole-v1": {"n_timesteps": 64, "env_wrapper": [
        {"gymnasium.wrappers.ClipReward": {"min_rewardd": 0}}]}})
    output = train(tmp_path, "--algo", "ppo", "--env", "CartPole-v1", "-conf", path)
    assert f"{path}, env CartPole-v1, key 'env_wrapper': the wrapper failed on CartPole-v1" in output
    assert "min_rewardd" in output and not (tmp_path / "logs").exists()


def test_an_algorithm_refusing_its_config_is_a_clear_error_and_leaves_no_run_folder(tmp_path):
    output = train(tmp_path, "--algo", "ppo", "--env", "CartPole-v1", "-params", "batch_size:1")
    assert "ppo could not be built on CartPole-v1 with the config" in output
    assert "ppo.yml, env CartPole-v1 (batch_size from --hyperparams, n_timesteps from -n/--n-timesteps)" in output
    assert "AssertionError: `batch_size` must be greater than 1" in output
    assert list((tmp_path / "logs" / "ppo").iterdir()) == []


def test_subprocess_envs_of_a_plugin_env_id_are_made_in_fresh_processes(tmp_path):
    # A subprocess has only gymnasium's ids; rlhub/DiscretePendulum-v1 is registered by a plugin.
    from rlhub.envs import make_vec_env

    env = make_vec_env("rlhub/DiscretePendulum-v1", n_envs=2, vec_env="subproc", seed=0)
    try:
        assert type(env).__name__ == "SubprocVecEnv" and env.reset().shape == (2, 3)
        assert env.step(np.array([0, 10]))[0].shape == (2, 3)
    finally:
        env.close()
