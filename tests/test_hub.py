"""Pushing agents to the Hub and playing them back, against the loopback Hub of ``hub_server.py``.

The real ``huggingface_hub`` client talks to the fake Hub (``hub_server`` fixture); nothing reaches
the internet.
"""

import base64
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from rlhub import hub
from rlhub.cli import main
from rlhub.experiment import TrainOptions, train
from rlhub.registry import list_algorithms
from rlhub.run_folder import load_agent
from rlhub.safe_loading import UnsafeAgentError
from rlhub.testing.conformance import conformance_env_id, predict_all, sample_observations


def run(*args, expect=0):
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    assert result.exit_code == expect, f"rlhub {' '.join(map(str, args))} exited {result.exit_code}:\n{result.output}"
    return result.output


def train_run(algo_id, env_id, folder, n_timesteps=256, **hyperparams):
    return train(TrainOptions(algo_id, env_id, n_timesteps=n_timesteps, log_folder=folder, seed=0, eval_freq=-1,
                              verbose=0, device="cpu", hyperparams=hyperparams)).run_dir


def assert_same_actions(original, loaded, count=16):
    observations = sample_observations(original.env, count)
    np.testing.assert_allclose(np.asarray(predict_all(original.model, observations), dtype=float),
                               np.asarray(predict_all(loaded.model, observations), dtype=float), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    return train_run("ppo", "CartPole-v1", tmp_path_factory.mktemp("cartpole") / "logs")


@pytest.fixture(scope="module")
def normalized_run(tmp_path_factory):
    """a2c's zoo config for Pendulum-v1 normalizes observations (and uses gSDE, policy_kwargs)."""
    run_dir = train_run("a2c", "Pendulum-v1", tmp_path_factory.mktemp("pendulum") / "logs", n_timesteps=512)
    assert (run_dir / "vec_normalize.pkl").is_file()
    return run_dir


# Round trips ----------------------------------------------------------------------------------

# One algorithm of each family by default; the rest with `pytest -m slow` (conformance already
# packages and reloads every algorithm; this adds the trip through the Hub).
_QUICK = {"ppo", "sac", "q_learning", "reinforce"}


@pytest.mark.parametrize("algo_id", [
    pytest.param(spec.algo_id, marks=() if spec.algo_id in _QUICK else pytest.mark.slow)
    for spec in list_algorithms()
])
def test_push_then_load_from_the_repo_id_acts_the_same(algo_id, hub_server, tmp_path):
    from rlhub.registry import get_algorithm

    env_id = conformance_env_id(get_algorithm(algo_id))
    run_dir = train_run(algo_id, env_id, tmp_path / "logs", n_timesteps=100)
    repo_id = f"alice/{hub.model_name(algo_id, env_id)}"
    pushed = hub.push(run_dir, repo_id, n_eval_episodes=1, video_length=0, device="cpu")
    assert pushed.kept_folder is None and pushed.repo_url.endswith(repo_id)
    original = load_agent(run_dir, device="cpu")
    downloaded = hub.load_agent(repo_id, device="cpu")  # trust_remote_code=False: nothing unpickled
    assert downloaded.manifest.algo_id == algo_id
    assert_same_actions(original, downloaded)


def test_cli_push_enjoy_and_load_from_hub(cartpole_run, hub_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    output = run("push-to-hub", "-f", cartpole_run, "--repo-id", "alice/ppo-CartPole-v1", "-m", "first agent",
                 "--n-eval-episodes", 2, "-n", 50)
    assert "Pushed 9 files" in output and "rlhub enjoy --repo-id alice/ppo-CartPole-v1" in output
    files = hub_server.files("alice/ppo-CartPole-v1")
    assert {"ppo-CartPole-v1.zip", "config.yml", "rlhub.json", "env_kwargs.yml", "results.json", "replay.mp4",
            "README.md", "args.yml", "train_eval_metrics.zip"} <= set(files)
    assert hub_server.state.repos["alice/ppo-CartPole-v1"].head.title == "first agent"
    assert hub_server.upload_modes("alice/ppo-CartPole-v1")["ppo-CartPole-v1.zip"] == "lfs"

    output = run("enjoy", "--repo-id", "alice/ppo-CartPole-v1", "--no-render", "-n", 200)
    assert "ppo on CartPole-v1 from alice/ppo-CartPole-v1" in output and "episode 1: return" in output

    output = run("load-from-hub", "--repo-id", "alice/ppo-CartPole-v1", "-f", "rl_trained")
    run_dir = tmp_path / "rl_trained" / "ppo" / "CartPole-v1_1"
    assert f"saved to {Path('rl_trained') / 'ppo' / 'CartPole-v1_1'}" in output
    assert json.loads((run_dir / "hub_source.json").read_text())["source"] == "alice/ppo-CartPole-v1"
    assert "0.monitor.csv" in {path.name for path in run_dir.iterdir()}
    output = run("enjoy", "--algo", "ppo", "--env", "CartPole-v1", "-f", "rl_trained", "--no-render", "-n", 100)
    assert "episode 1: return" in output
    assert_same_actions(load_agent(cartpole_run, device="cpu"), load_agent(run_dir, device="cpu"))


def test_normalized_agent_round_trip(normalized_run, hub_server):
    hub.push(normalized_run, "alice/a2c-Pendulum-v1", n_eval_episodes=1, video_length=0, device="cpu")
    assert "vec_normalize.pkl" in hub_server.files("alice/a2c-Pendulum-v1")
    original = load_agent(normalized_run, device="cpu")
    downloaded = hub.load_agent("alice/a2c-Pendulum-v1", device="cpu")
    for name in ("mean", "var"):
        np.testing.assert_array_equal(getattr(original.env.obs_rms, name), getattr(downloaded.env.obs_rms, name))
    assert not downloaded.env.training and not downloaded.env.norm_reward
    raw = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    np.testing.assert_allclose(original.model.predict(original.env.normalize_obs(raw), deterministic=True)[0],
                               downloaded.model.predict(downloaded.env.normalize_obs(raw), deterministic=True)[0])
    assert_same_actions(original, downloaded)


def test_replay_video_and_model_card(cartpole_run, tmp_path):
    import imageio.v2 as imageio

    packaged = hub.package(cartpole_run, tmp_path / "package", repo_id="alice/ppo-CartPole-v1", n_eval_episodes=2,
                           video_length=120)
    with imageio.get_reader(packaged.video) as reader:  # a valid H.264 mp4 that ffmpeg decodes
        assert reader.count_frames() == 120
        assert reader.get_data(0).shape == (400, 600, 3) and reader.get_meta_data()["fps"] == 50

    results = json.loads((packaged.folder / "results.json").read_text())
    assert results["n_eval_episodes"] == 2 and results["is_deterministic"] is True
    card = (packaged.folder / "README.md").read_text()
    metadata = yaml.safe_load(card.split("---")[1])
    assert metadata["library_name"] == "stable-baselines3"
    assert {"CartPole-v1", "ppo", "rlhub", "reinforcement-learning", "stable-baselines3"} <= set(metadata["tags"])
    value = metadata["model-index"][0]["results"][0]["metrics"][0]["value"]
    assert re.fullmatch(r"-?\d+\.\d\d \+/- \d+\.\d\d", value)
    assert f"{results['mean_reward']:.2f} +/- {results['std_reward']:.2f}" == value
    assert "rlhub enjoy --repo-id alice/ppo-CartPole-v1" in card and "'n_steps': 32" in card
    manifest = json.loads((packaged.folder / "rlhub.json").read_text())
    assert manifest["model_file"] == "ppo-CartPole-v1.zip" and manifest["env_package"] == "gymnasium"
    assert yaml.safe_load((packaged.folder / "config.yml").read_text())["n_steps"] == 32  # the RL Zoo's flat layout


def test_card_of_a_non_sb3_algorithm_has_no_stable_baselines3_tag(tmp_path):
    run_dir = train_run("q_learning", "FrozenLake-v1", tmp_path / "logs")
    packaged = hub.package(run_dir, tmp_path / "package", n_eval_episodes=1, video_length=0)
    metadata = yaml.safe_load((packaged.folder / "README.md").read_text().split("---")[1])
    assert metadata["library_name"] == "rlhub" and "stable-baselines3" not in metadata["tags"]


# Repos pushed by other tools -------------------------------------------------------------------


def test_repo_made_by_huggingface_sb3_plays_with_rlhub_enjoy(hub_server):
    from huggingface_sb3 import package_to_hub
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    env = VecNormalize(make_vec_env("Pendulum-v1"))
    model = PPO("MlpPolicy", env, n_steps=64, policy_kwargs={"net_arch": [32, 32]}, seed=0)
    model.learn(128)
    eval_env = VecNormalize(make_vec_env("Pendulum-v1", env_kwargs={"render_mode": "rgb_array"}), training=False)
    eval_env.obs_rms = env.obs_rms
    package_to_hub(model=model, model_name="ppo-Pendulum-v1", model_architecture="PPO", env_id="Pendulum-v1",
                   eval_env=eval_env, repo_id="bob/ppo-Pendulum-v1", commit_message="hf", n_eval_episodes=1,
                   video_length=10)
    assert "rlhub.json" not in hub_server.files("bob/ppo-Pendulum-v1")

    output = run("enjoy", "--repo-id", "bob/ppo-Pendulum-v1", "--no-render", "-n", 200)
    assert "ppo on Pendulum-v1 from bob/ppo-Pendulum-v1" in output and "episode 1: return" in output
    loaded = hub.load_agent("bob/ppo-Pendulum-v1")
    raw = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(env.normalize_obs(raw), deterministic=True)[0],
                               loaded.model.predict(loaded.env.normalize_obs(raw), deterministic=True)[0])


def test_rl_zoo_repo_loads_into_a_run_folder(cartpole_run, hub_server, tmp_path):
    """The RL Zoo's layout: {algo}-{env}.zip, an OrderedDict config.yml, env_kwargs.yml, args.yml."""
    from collections import OrderedDict

    from huggingface_hub import HfApi

    repo = tmp_path / "zoo"
    repo.mkdir()
    (repo / "ppo-CartPole-v1.zip").write_bytes((cartpole_run / "CartPole-v1.zip").read_bytes())
    section = yaml.safe_load((cartpole_run / "config.yml").read_text())["CartPole-v1"]
    section["policy_kwargs"] = "dict(net_arch=[64, 64])"
    section["some_old_zoo_key"] = 1  # keys this rlhub does not know are dropped, not fatal
    (repo / "config.yml").write_text(yaml.dump(OrderedDict(sorted(section.items()))))
    (repo / "args.yml").write_text(yaml.dump(OrderedDict([("algo", "ppo"), ("env", "CartPole-v1"),
                                                          ("env_kwargs", None)])))
    (repo / "env_kwargs.yml").write_text(yaml.dump({}))
    assert "!!python/object/apply:collections.OrderedDict" in (repo / "config.yml").read_text()
    api = HfApi()
    api.create_repo("sb3/ppo-CartPole-v1")
    api.upload_folder(repo_id="sb3/ppo-CartPole-v1", folder_path=repo, commit_message="zoo")

    run_dir = hub.pull("sb3/ppo-CartPole-v1", tmp_path / "rl_trained")
    assert run_dir == tmp_path / "rl_trained" / "ppo" / "CartPole-v1_1"
    config = yaml.safe_load((run_dir / "config.yml").read_text())["CartPole-v1"]
    assert config["policy_kwargs"] == "dict(net_arch=[64, 64])" and "some_old_zoo_key" not in config
    assert_same_actions(load_agent(cartpole_run, device="cpu"), load_agent(run_dir, device="cpu"))


# Safety ----------------------------------------------------------------------------------------


class _Payload:
    """Unpickling this writes a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def _plant_in_model_zip(path, marker, key="policy_class"):
    import cloudpickle

    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    data[key] = {":type:": "<class 'abc.ABCMeta'>",
                 ":serialized:": base64.b64encode(cloudpickle.dumps(_Payload(marker))).decode()}
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)


def test_planted_pickle_payloads_never_run_without_trust_remote_code(normalized_run, tmp_path, hub_server):
    import pickle

    from huggingface_hub import HfApi

    run_dir = normalized_run
    marker = tmp_path / "payload_ran"
    for target in ("model", "statistics"):
        repo_id = f"mallory/evil-{target}"
        package = tmp_path / target
        hub.package(run_dir, package, n_eval_episodes=1, video_length=0)
        if target == "model":
            _plant_in_model_zip(package / "a2c-Pendulum-v1.zip", marker)
        else:
            (package / "vec_normalize.pkl").write_bytes(pickle.dumps(_Payload(marker)))
        HfApi().create_repo(repo_id)
        HfApi().upload_folder(repo_id=repo_id, folder_path=package, commit_message="innocent")

        output = run("enjoy", "--repo-id", repo_id, "--no-render", "-n", 10, expect=2)
        assert not marker.exists()
        assert "would call builtins.exec" in output and "--trust-remote-code" in output
        assert "none of it ran" in output
        with pytest.raises(UnsafeAgentError):
            hub.load(repo_id)
        run("load-from-hub", "--repo-id", repo_id, "-f", tmp_path / "rl_trained")
        run("enjoy", "--algo", "a2c", "--env", "Pendulum-v1", "-f", tmp_path / "rl_trained", "--no-render", expect=2)
        assert not marker.exists()

        # The payload is real: opting in runs it.
        with pytest.raises(Exception):
            hub.load(repo_id, trust_remote_code=True)
        assert marker.read_text() == "pwned"
        marker.unlink()


def test_payload_in_tensors_and_config_is_refused(cartpole_run, tmp_path):
    import torch

    package = tmp_path / "package"
    hub.package(cartpole_run, package, n_eval_episodes=1, video_length=0)
    with zipfile.ZipFile(package / "ppo-CartPole-v1.zip") as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    buffer = __import__("io").BytesIO()
    torch.save({"evil": _Payload(tmp_path / "ran")}, buffer)
    entries["policy.pth"] = buffer.getvalue()
    with zipfile.ZipFile(package / "ppo-CartPole-v1.zip", "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    with pytest.raises(UnsafeAgentError, match="holds more than tensors"):
        hub.load(package)
    assert not (tmp_path / "ran").exists()

    (package / "ppo-CartPole-v1.zip").write_bytes((cartpole_run / "CartPole-v1.zip").read_bytes())
    config = yaml.safe_load((package / "config.yml").read_text())
    for key, value, message in [
        ("env_wrapper", "os.system", "outside the packages"),
        ("policy_kwargs", "dict(activation_fn=subprocess.Popen)", "outside the packages"),
        ("env_wrapper", "torch.hub.load", "outside the packages"),
        ("env_wrapper", "gymnasium.wrappers.RecordVideo", "writes files"),
    ]:
        (package / "config.yml").write_text(yaml.safe_dump({**config, key: value}))
        with pytest.raises(UnsafeAgentError, match=message):
            hub.load(package)
    (package / "config.yml").write_text("!!python/object/apply:os.system ['touch x']\n")
    with pytest.raises(UnsafeAgentError, match="Python tag"):
        hub.load(package)


# Errors ------------------------------------------------------------------------------------------


def test_errors_say_what_to_do(cartpole_run, hub_server, tmp_path, monkeypatch):
    from huggingface_hub import HfApi

    assert "Repository alice/nope not found" in run("enjoy", "--repo-id", "alice/nope", "--no-render", expect=2)

    api = HfApi()
    api.create_repo("alice/empty")
    (tmp_path / "readme").mkdir()
    (tmp_path / "readme" / "README.md").write_text("# nothing here\n")
    api.upload_folder(repo_id="alice/empty", folder_path=tmp_path / "readme", commit_message="card")
    assert "No model file in alice/empty" in run("load-from-hub", "--repo-id", "alice/empty", expect=2)

    package = tmp_path / "package"
    hub.package(cartpole_run, package, n_eval_episodes=1, video_length=0)
    manifest = json.loads((package / "rlhub.json").read_text())
    (package / "rlhub.json").write_text(json.dumps({**manifest, "algo_id": "zz_missing", "plugin": "zz",
                                                    "distribution": "rlhub-zz", "distribution_version": "0.3"}))
    with pytest.raises(Exception, match=r"distribution 'rlhub-zz' 0\.3.*pip install 'rlhub-zz>=0\.3'"):
        hub.load(package)
    (package / "rlhub.json").write_text(json.dumps({**manifest, "env_id": "Missing-v0",
                                                    "env_package": "rlhub-missing-envs"}))
    with pytest.raises(Exception, match="pip install rlhub-missing-envs"):
        hub.load(package)

    hub.push(cartpole_run, "alice/secret", private=True, n_eval_episodes=1, video_length=0)
    assert hub_server.state.repos["alice/secret"].private
    monkeypatch.delenv("HF_TOKEN")
    assert "No Hugging Face token" in run("push-to-hub", "-f", cartpole_run, "--repo-id", "alice/x", expect=2)
    output = run("enjoy", "--repo-id", "alice/secret", "--no-render", expect=2)
    assert "Repository alice/secret not found" in output and "private repo needs a token" in output


def test_push_retries_transient_errors_and_keeps_the_package_on_failure(cartpole_run, hub_server, monkeypatch):
    monkeypatch.setattr(hub.client, "RETRY_DELAY", 0.01)
    hub_server.fail_next("POST", r"/commit/", 503, count=2)
    pushed = hub.push(cartpole_run, "alice/flaky", n_eval_episodes=1, video_length=0)
    assert "rlhub.json" in hub_server.files("alice/flaky") and pushed.kept_folder is None

    hub_server.fail_next("POST", r"/commit/", 500, count=hub.RETRY_ATTEMPTS)
    with pytest.raises(hub.HubError, match=r"failed after 4 attempts.*server error 500") as failure:
        hub.push(cartpole_run, "alice/down", n_eval_episodes=1, video_length=0)
    kept = Path(re.search(r"kept in (\S+);", str(failure.value)).group(1))
    assert (kept / "ppo-CartPole-v1.zip").is_file() and (kept / "README.md").is_file()
