"""The plugin manager, the registry and a third-party plugin distribution."""

import importlib
import inspect
import json
import os
import subprocess
import sys
import types
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from rlhub import hookspecs, plugins, registry
from rlhub.hookspecs import hookimpl
from rlhub.spec import AlgorithmSpec, SpaceMismatchError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PLUGIN = Path(__file__).parent / "example_plugin"
HOOK_NAMES = [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("rlhub_")]


@pytest.fixture
def fake_plugins(monkeypatch):
    """Replace the installed entry points with in-memory plugin modules; restore on exit."""
    installed = []

    def install(**modules):
        entry_points = []
        for name, module in modules.items():
            sys.modules[module.__name__] = module
            installed.append(module.__name__)
            entry_points.append(EntryPoint(name, module.__name__, plugins.ENTRY_POINT_GROUP))
        monkeypatch.setattr(plugins, "entry_points", lambda group: entry_points)
        registry.reset()

    try:
        yield install
    finally:
        for name in installed:
            sys.modules.pop(name, None)
        monkeypatch.undo()
        registry.reset()


def plugin_module(name, **hooks):
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def test_builtin_plugins_load_through_entry_points():
    infos = {info.name: info for info in plugins.list_plugins()}
    assert infos["sb3"].distribution == "rlhub"
    assert "rlhub_algorithms" in infos["sb3"].hooks
    ids = {spec.algo_id for spec in registry.list_algorithms()}
    assert {"a2c", "ddpg", "dqn", "ppo", "sac", "td3", "ars", "crossq", "ppo_mask", "qrdqn", "ppo_lstm", "tqc",
            "trpo"} <= ids


def test_rlhub_algorithms_hook_specs_carry_plugin_and_distribution():
    spec = registry.get_algorithm("ppo")
    assert (spec.plugin_name, spec.distribution) == ("sb3", "rlhub")
    assert spec.load().__name__ == "PPO"


def test_unknown_algorithm_lists_the_nearest_ids():
    with pytest.raises(registry.UnknownAlgorithmError) as error:
        registry.get_algorithm("ppp")
    message = str(error.value)
    assert "'ppo'" in message and "Available:" in message and "a2c" in message


def test_duplicate_algorithm_id_names_both_plugins(fake_plugins):
    def algorithms():
        return [AlgorithmSpec("dup", "x.y:Z", ("Discrete",))]

    fake_plugins(first=plugin_module("rlhub_test_first", rlhub_algorithms=algorithms),
                 second=plugin_module("rlhub_test_second", rlhub_algorithms=algorithms))
    with pytest.raises(registry.DuplicateAlgorithmError, match=r"'dup'.*'(first|second)'.*'(first|second)'"):
        registry.list_algorithms()


def test_misspelled_hook_is_an_error(fake_plugins):
    import pluggy

    fake_plugins(typo=plugin_module("rlhub_test_typo", rlhub_algorithmz=lambda: []))
    with pytest.raises(pluggy.PluginValidationError, match="rlhub_algorithmz"):
        plugins.get_plugin_manager()


def check_rlhub_algorithms(fake_plugins, tmp_path):
    def algorithms():
        return [AlgorithmSpec("extra_algo", "stable_baselines3:PPO", ("Discrete",))]

    fake_plugins(extra=plugin_module("rlhub_test_extra", rlhub_algorithms=algorithms))
    spec = registry.get_algorithm("extra_algo")
    assert spec.plugin_name == "extra" and spec.load().__name__ == "PPO"


def check_rlhub_zoo_config_dirs(fake_plugins, tmp_path):
    fake_plugins(configs=plugin_module("rlhub_test_configs", rlhub_zoo_config_dirs=lambda: [tmp_path]))
    dirs = registry.zoo_config_dirs()
    assert dirs[0].name == "zoo_configs" and dirs[-1] == tmp_path


def check_rlhub_register_envs(fake_plugins, tmp_path):
    import gymnasium as gym

    from rlhub.envs import ensure_registered

    def register():
        gym.register("rlhub-test/Registered-v0", entry_point="gymnasium.envs.classic_control:CartPoleEnv")

    fake_plugins(envs=plugin_module("rlhub_test_envs", rlhub_register_envs=register))
    try:
        assert ensure_registered("rlhub-test/Registered-v0") == "rlhub-test/Registered-v0"
    finally:
        gym.registry.pop("rlhub-test/Registered-v0", None)


def check_rlhub_class_aliases(fake_plugins, tmp_path):
    from rlhub.config import resolve_dotted

    aliases = {"MyBuffer": "stable_baselines3.common.buffers.ReplayBuffer", "ReplayBuffer": "builtins.dict"}
    fake_plugins(aliases=plugin_module("rlhub_test_aliases", rlhub_class_aliases=lambda: aliases))
    assert resolve_dotted("MyBuffer").__name__ == "ReplayBuffer"
    assert resolve_dotted("ReplayBuffer").__module__ == "stable_baselines3.common.buffers"  # SB3's names win


def check_rlhub_training_callbacks(fake_plugins, tmp_path):
    from stable_baselines3.common.callbacks import BaseCallback

    from rlhub.experiment import TrainOptions, train

    class CountSteps(BaseCallback):
        calls = 0

        def _on_step(self):
            CountSteps.calls += 1
            return True

    def callbacks(model):
        return [CountSteps()] if model.__class__.__name__ == "PPO" else []

    fake_plugins(sb3=importlib.import_module("rlhub_sb3"),
                 hooked=plugin_module("rlhub_test_callbacks", rlhub_training_callbacks=callbacks))
    train(TrainOptions("ppo", "CartPole-v1", n_timesteps=64, log_folder=tmp_path, eval_freq=-1,
                       hyperparams={"n_steps": 32, "n_envs": 1}))
    assert CountSteps.calls == 64


def check_rlhub_hyperparameter_samplers(fake_plugins, tmp_path):
    from rlhub.registry import NoSamplerError

    samplers = {"ppo": "no_such_module:sample_ppo", "crossq": "rlhub_sb3.samplers:sample_sac"}
    fake_plugins(sb3=importlib.import_module("rlhub_sb3"),
                 samplers=plugin_module("rlhub_test_samplers", rlhub_hyperparameter_samplers=lambda: samplers))
    assert registry.hyperparameter_samplers()["ppo"] == "rlhub_sb3.samplers:sample_ppo"  # the algorithm's own plugin's
    assert registry.hyperparameter_sampler("crossq").__name__ == "sample_sac"  # a plugin adds a search space
    fake_plugins(sb3=importlib.import_module("rlhub_sb3"))
    with pytest.raises(NoSamplerError, match=r"crossq .*rlhub_hyperparameter_samplers\(\)"):
        registry.hyperparameter_sampler("crossq")


#: What each hook does, checked through a plugin that implements it: a new hook needs an entry here.
HOOK_CHECKS = {"rlhub_algorithms": check_rlhub_algorithms, "rlhub_zoo_config_dirs": check_rlhub_zoo_config_dirs,
               "rlhub_register_envs": check_rlhub_register_envs, "rlhub_class_aliases": check_rlhub_class_aliases,
               "rlhub_training_callbacks": check_rlhub_training_callbacks,
               "rlhub_hyperparameter_samplers": check_rlhub_hyperparameter_samplers}


@pytest.mark.parametrize("hook_name", HOOK_NAMES)
def test_every_hook_is_documented_and_does_what_it_says(hook_name, fake_plugins, tmp_path):
    spec = getattr(hookspecs, hook_name)
    assert spec.__doc__ and len(spec.__doc__.strip()) > 40, f"{hook_name} needs a docstring"
    assert hook_name in (ROOT / "README.md").read_text(), f"{hook_name} is not documented in README.md"
    assert hook_name in HOOK_CHECKS, f"{hook_name} has no behaviour check in HOOK_CHECKS"
    HOOK_CHECKS[hook_name](fake_plugins, tmp_path)


def test_space_mismatch_names_the_supported_spaces():
    import gymnasium as gym

    with pytest.raises(SpaceMismatchError, match="Box action space.*supports action spaces: Discrete"):
        registry.get_algorithm("dqn").check_env(gym.make("Pendulum-v1"))


def _rlhub(*args, env=None, cwd=None, check=True):
    environment = {**os.environ, **(env or {})}
    result = subprocess.run([sys.executable, "-m", "rlhub.cli", *args], capture_output=True, text=True,
                            env=environment, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"rlhub {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def test_allow_list_and_block_list_environment_variables():
    only_sb3 = json.loads(_rlhub("plugins", "--json", env={"RLHUB_PLUGINS": "sb3"}).stdout)
    assert [row["name"] for row in only_sb3] == ["sb3"]
    blocked = json.loads(_rlhub("algos", "--json", env={"RLHUB_BLOCK_PLUGINS": "sb3"}).stdout)
    assert "ppo" not in {row["algo_id"] for row in blocked}


def test_third_party_distribution_trains_through_rlhub(tmp_path):
    """A separately installed distribution adds an algorithm: no change to rlhub needed."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(EXAMPLE_PLUGIN)], check=True, capture_output=True)
    env = {"PYTHONPATH": str(target)}
    listing = json.loads(_rlhub("plugins", "--json", env=env).stdout)
    example = next(row for row in listing if row["name"] == "example")
    assert example["distribution"] == "rlhub-example-plugin" and example["version"] == "0.2.0"
    assert example["algorithms"] == ["example_vpg"]
    assert example["hooks"] == ["rlhub_algorithms", "rlhub_zoo_config_dirs"]

    trained = _rlhub("train", "--algo", "example_vpg", "--env", "CartPole-v1", "-n", "2048", "--eval-freq", "-1",
                     "-f", str(tmp_path / "logs"), "-q", env=env)
    assert "Trained 2048 steps" in trained.stdout
    manifest = json.loads((tmp_path / "logs" / "example_vpg" / "CartPole-v1_1" / "rlhub.json").read_text())
    assert manifest["distribution"] == "rlhub-example-plugin" and manifest["algo_class"].endswith(":VPG")
    played = _rlhub("enjoy", "--algo", "example_vpg", "--env", "CartPole-v1", "-f", str(tmp_path / "logs"),
                    "--no-render", "-n", "300", env=env)
    assert "episode 1: return" in played.stdout


def test_a_plugin_that_fails_to_import_is_named(fake_plugins, monkeypatch):
    broken = EntryPoint("broken", "rlhub_test_no_such_module", plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [broken])
    registry.reset()
    with pytest.raises(plugins.PluginLoadError, match="plugin 'broken'.*RLHUB_BLOCK_PLUGINS=broken"):
        plugins.get_plugin_manager()


@pytest.fixture
def plugin_variables(monkeypatch):
    """Set RLHUB_PLUGINS / RLHUB_BLOCK_PLUGINS in this process and reload the plugins (again after the test)."""
    def set_variables(**variables):
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        registry.reset()

    yield set_variables
    monkeypatch.undo()
    registry.reset()


def cli(*args, expect=0):
    from click.testing import CliRunner

    from rlhub.cli import main

    result = CliRunner().invoke(main, [str(arg) for arg in args])
    assert result.exit_code == expect, result.output
    assert "Traceback" not in result.output
    return result


def test_an_algorithm_of_a_blocked_plugin_names_the_plugin_and_the_variable(plugin_variables, tmp_path):
    plugin_variables(RLHUB_BLOCK_PLUGINS="policy_gradient")
    output = cli("train", "--algo", "acer", "--env", "CartPole-v1", "-f", tmp_path, expect=2).output
    assert "acer is provided by plugin policy_gradient, which RLHUB_BLOCK_PLUGINS blocks" in output
    assert "take policy_gradient out of RLHUB_BLOCK_PLUGINS" in output


@pytest.mark.parametrize(("variable", "value", "reason"), [
    ("RLHUB_BLOCK_PLUGINS", "sb3", "RLHUB_BLOCK_PLUGINS blocks"),
    ("RLHUB_PLUGINS", "tabular", "RLHUB_PLUGINS='tabular' leaves out"),
])
def test_a_run_of_a_skipped_plugin_names_the_variable_not_pip(plugin_variables, ppo_cartpole_run, variable, value,
                                                               reason):
    plugin_variables(**{variable: value})
    output = cli("enjoy", "-f", ppo_cartpole_run, "--no-render", expect=2).output
    assert f"ppo is provided by plugin sb3, which {reason}" in output
    assert "pip install" not in output


def test_names_no_plugin_has_are_noted_with_the_installed_plugins(plugin_variables):
    plugin_variables(RLHUB_PLUGINS="nosuch,sb3", RLHUB_BLOCK_PLUGINS="tabular")
    installed = ", ".join(plugins.plugin_selection().names)
    listing = cli("algos", "--json")
    assert f"RLHUB_PLUGINS names 'nosuch', but no plugin entry point 'nosuch' exists; installed plugins: {installed}" \
        in listing.stderr
    assert {row["plugin"] for row in json.loads(listing.stdout)} == {"sb3"}  # notes leave stdout JSON
    notes = cli("plugins").stderr
    assert "RLHUB_BLOCK_PLUGINS blocks: tabular" in notes and "no plugin entry point 'nosuch' exists" in notes
    left_out = ", ".join(sorted(set(plugins.plugin_selection().names) - {"sb3", "tabular"}))
    assert f"Note: RLHUB_PLUGINS='nosuch,sb3' leaves out: {left_out}" in notes


def table_cells(output):
    """The cells of each data line of a rich table."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in output.splitlines() if line.startswith("│")]


def test_listings_keep_ids_whole_when_piped(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # what rich assumes when piped, and narrower than the tables
    algos = table_cells(cli("algos").stdout)
    assert algos == [[spec.algo_id, spec.plugin_name, ", ".join(spec.action_spaces), spec.kind, spec.summary]
                     for spec in registry.list_algorithms()]  # one line a row, nothing cut
    listed = [cells[:3] for cells in table_cells(cli("plugins").stdout)]
    assert listed == [[info.name, info.distribution, info.version] for info in plugins.list_plugins()]
