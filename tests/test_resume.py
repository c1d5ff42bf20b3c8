"""No work lost: default checkpoints (atomic, with their statistics), `-i` on any saved model, and
`rlhub train --resume` after a run was killed."""

import errno
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from rlhub.cli import main
from rlhub.experiment import TrainOptions, checkpoint_every, train
from rlhub.run_folder import Manifest, RunFolderError, checkpoint_steps, read_model_summary, statistics_of
from rlhub.safe_loading import read_vec_normalize

N_ENVS = 8  # the zoo config of ppo on CartPole-v1
FAST_PPO = ["normalize:True", "n_epochs:2"]


def run(*args, expect=0):
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    assert result.exit_code == expect, f"rlhub {' '.join(map(str, args))} exited {result.exit_code}:\n{result.output}"
    return result.output


def observation_count(statistics):
    return read_vec_normalize(statistics)["obs_rms"]["count"]


def num_timesteps(model_path):
    return read_model_summary(model_path).num_timesteps


def latest_checkpoint(run_dir):
    return max(run_dir.glob("rl_model_*_steps.zip"), key=checkpoint_steps)


@pytest.fixture(scope="module")
def normalized_run(tmp_path_factory):
    """A finished ppo run on CartPole-v1 with VecNormalize and the default checkpoints."""
    logs = tmp_path_factory.mktemp("normalized") / "logs"
    return train(TrainOptions("ppo", "CartPole-v1", n_timesteps=2000, log_folder=logs, seed=0, eval_freq=-1,
                              verbose=0, device="cpu", hyperparams={"normalize": True, "n_epochs": 2})).run_dir


def test_default_checkpoints_every_tenth_of_the_budget_with_their_statistics(normalized_run):
    steps = sorted(checkpoint_steps(path) for path in normalized_run.glob("rl_model_*_steps.zip"))
    every = (checkpoint_every(2000) // N_ENVS) * N_ENVS
    assert steps == list(range(every, 2000 + 1, every)) and len(steps) == 10
    for step in steps:
        assert (normalized_run / f"rl_model_vecnormalize_{step}_steps.pkl").is_file()
    assert not list(normalized_run.glob("rl_model_replay_buffer_*")), "replay buffers only when opted in"
    assert (checkpoint_every(100_000), checkpoint_every(123_456), checkpoint_every(5)) == (10_000, 12_000, 1)


def test_save_freq_zero_disables_checkpoints(tmp_path):
    run("train", "--algo", "ppo", "--env", "CartPole-v1", "-n", 256, "-f", tmp_path, "--eval-freq", -1,
        "--save-freq", 0, "-q")
    assert not list(tmp_path.rglob("rl_model_*"))


def test_a_checkpoint_the_disk_cannot_hold_leaves_no_file_under_its_name(tmp_path, monkeypatch):
    from stable_baselines3.common.base_class import BaseAlgorithm

    def disk_full(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PK\x03\x04 the first bytes of a zip")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(BaseAlgorithm, "save", disk_full)
    with pytest.raises(OSError):
        train(TrainOptions("ppo", "CartPole-v1", n_timesteps=512, log_folder=tmp_path, save_freq=256, eval_freq=-1,
                           verbose=0, device="cpu", hyperparams={"n_epochs": 1}))
    left = [path.name for path in (tmp_path / "ppo" / "CartPole-v1_1").glob("*.zip")]
    assert left == [], "neither a truncated checkpoint nor its scratch file"


def test_each_model_file_has_its_own_statistics(tmp_path):
    for name in ("vec_normalize.pkl", "best_vec_normalize.pkl", "rl_model_vecnormalize_600_steps.pkl"):
        (tmp_path / name).touch()
    assert statistics_of(tmp_path / "rl_model_600_steps.zip").name == "rl_model_vecnormalize_600_steps.pkl"
    assert statistics_of(tmp_path / "best_model.zip").name == "best_vec_normalize.pkl"
    assert statistics_of(tmp_path / "CartPole-v1.zip").name == "vec_normalize.pkl"


def test_trained_agent_takes_the_statistics_saved_with_it(normalized_run, tmp_path):
    checkpoint = normalized_run / "rl_model_600_steps.zip"
    run("train", "--algo", "ppo", "--env", "CartPole-v1", "-i", checkpoint, "-n", 256, "-f", tmp_path,
        "--eval-freq", -1, "--save-freq", 0, "-params", *FAST_PPO, "-q")
    child = tmp_path / "ppo" / "CartPole-v1_1"
    steps = num_timesteps(child / "CartPole-v1.zip") - 600
    # The statistics went on from the checkpoint's: its count, the reset's observations, then each step's.
    expected = observation_count(normalized_run / "rl_model_vecnormalize_600_steps.pkl") + N_ENVS + steps
    assert observation_count(child / "vec_normalize.pkl") == pytest.approx(expected)
    manifest = Manifest.read(child)
    assert (manifest.parent_run, manifest.initial_timesteps) == (str(normalized_run.resolve()), 600)


def test_trained_agent_keeps_the_policy_kwargs_its_weights_were_built_with(tmp_path):
    # DDPG adds n_critics to its policy_kwargs: the config's never equal the saved ones, which SB3's load demands.
    params = ["-params", "learning_starts:50", "policy_kwargs:dict(net_arch=[16])"]
    run("train", "--algo", "ddpg", "--env", "Pendulum-v1", "-n", 100, "-f", tmp_path, "--eval-freq", -1, *params, "-q")
    run("train", "--algo", "ddpg", "--env", "Pendulum-v1", "-i", tmp_path / "ddpg" / "Pendulum-v1_1" / "Pendulum-v1.zip",
        "-n", 100, "-f", tmp_path, "--eval-freq", -1, *params, "-q")
    assert num_timesteps(tmp_path / "ddpg" / "Pendulum-v1_2" / "Pendulum-v1.zip") == 200


@pytest.fixture(scope="module")
def other_models(tmp_path_factory):
    from stable_baselines3 import DQN, PPO

    folder = tmp_path_factory.mktemp("models")
    DQN("MlpPolicy", "CartPole-v1", device="cpu").save(folder / "dqn.zip")
    PPO("MlpPolicy", "Pendulum-v1", n_steps=64, device="cpu").save(folder / "pendulum.zip")
    (folder / "truncated.zip").write_bytes((folder / "dqn.zip").read_bytes()[:2000])
    return folder


@pytest.mark.parametrize(
    ("model", "says"),
    [
        ("dqn.zip", ["policy is stable_baselines3.dqn.policies.DQNPolicy", "ppo does not use its policy"]),
        ("pendulum.zip", ["observations Box(shape (3,), float32) and actions Box(shape (1,), float32)",
                          "observations Box(shape (4,), float32) and actions Discrete(2)",
                          "its spaces are not those of CartPole-v1"]),
        ("truncated.zip", ["is not a readable zip file", "truncated or damaged"]),
    ],
)
def test_trained_agent_that_does_not_fit_is_described_before_any_run_folder(other_models, tmp_path, model, says):
    output = run("train", "--algo", "ppo", "--env", "CartPole-v1", "-i", other_models / model, "-n", 64, "-f",
                 tmp_path, expect=2)
    assert all(phrase in " ".join(output.split()) for phrase in says), output
    assert "Traceback" not in output and not any(tmp_path.iterdir())


def test_trained_agent_of_another_algorithm_is_named_from_its_manifest(normalized_run, tmp_path):
    output = run("train", "--algo", "a2c", "--env", "CartPole-v1", "-i", normalized_run / "CartPole-v1.zip", "-n",
                 64, "-f", tmp_path, expect=2)
    output = " ".join(output.split())
    assert "holds an agent of ppo on CartPole-v1" in output and "it is an agent of ppo, not of a2c" in output
    assert "Continue it with --algo ppo --env CartPole-v1" in output and not any(tmp_path.iterdir())


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    """The bar of issue 11: kill -9 mid-run, then --resume continues with the checkpoint's statistics."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rlhub.cli", "train", "--algo", "ppo", "--env", "CartPole-v1", "-n", "8000",
         "-f", str(tmp_path), "--eval-freq", "-1", "--seed", "3", "-params", *FAST_PPO, "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    parent = tmp_path / "ppo" / "CartPole-v1_1"
    deadline = time.time() + 120
    while not list(parent.glob("rl_model_*_steps.zip")) and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL, process.stderr.read()
    assert not (parent / "CartPole-v1.zip").exists(), "killed before it finished"
    checkpoint = latest_checkpoint(parent)
    start = checkpoint_steps(checkpoint)

    output = run("train", "--resume", parent, "-f", tmp_path, "--eval-freq", -1, "-q")
    child = tmp_path / "ppo" / "CartPole-v1_2"
    assert f"Continued {parent.resolve()} from step {start}" in output and f"run folder: {child}" in output
    manifest = Manifest.read(child)
    assert (manifest.parent_run, manifest.initial_timesteps, manifest.seed) == (str(parent.resolve()), start, 3)
    assert (manifest.algo_id, manifest.env_id, manifest.n_timesteps) == ("ppo", "CartPole-v1", 8000)
    final_steps = num_timesteps(child / "CartPole-v1.zip")
    assert 8000 <= final_steps < 8000 + 32 * N_ENVS, "the step count went on up to the parent's budget"
    assert min(checkpoint_steps(path) for path in child.glob("rl_model_*_steps.zip")) > start
    # The statistics went on from the checkpoint's count (a fresh VecNormalize would start near 0).
    expected = observation_count(parent / f"rl_model_vecnormalize_{start}_steps.pkl") + N_ENVS + final_steps - start
    assert observation_count(child / "vec_normalize.pkl") == pytest.approx(expected)


def test_resume_of_a_folder_rlhub_cannot_vouch_for_reads_it_as_data(normalized_run, tmp_path):
    copy = tmp_path / "copied"
    shutil.copytree(normalized_run, copy)
    (copy / "rlhub.signature").unlink()  # as a folder from another machine: nothing in it is unpickled
    (copy / "CartPole-v1.zip").unlink()  # and killed: its latest model is its last checkpoint
    output = run("train", "--resume", copy, "-n", 256, "-f", tmp_path / "logs", "--eval-freq", -1, "-q")
    assert "Continued" in output and "from step 2000" in output
    child = tmp_path / "logs" / "ppo" / "CartPole-v1_1"
    steps = num_timesteps(child / "CartPole-v1.zip") - 2000
    expected = observation_count(copy / "rl_model_vecnormalize_2000_steps.pkl") + N_ENVS + steps
    assert observation_count(child / "vec_normalize.pkl") == pytest.approx(expected)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "a2c"], "is a run of --algo ppo --env CartPole-v1"),
        (["--env", "Pendulum-v1"], "leave out --env Pendulum-v1"),
        (["-i", "MODEL"], "leave out -i"),
        ([], "has reached its budget"),
    ],
)
def test_resume_refuses_what_would_not_continue_the_run(normalized_run, tmp_path, args, message):
    args = [normalized_run / "CartPole-v1.zip" if arg == "MODEL" else arg for arg in args]
    output = run("train", "--resume", normalized_run, *args, "-f", tmp_path, expect=2)
    assert message in " ".join(output.split())
    assert not any(tmp_path.iterdir())


def test_train_needs_an_algorithm_and_env_or_a_run_to_resume(tmp_path):
    assert "--resume" in run("train", "--env", "CartPole-v1", "-f", tmp_path, expect=2)


def test_resume_without_a_model_says_so(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    Manifest("ppo", "CartPole-v1", "CartPole-v1.zip", n_timesteps=1000).write(run_dir)
    (run_dir / "config.yml").write_text("CartPole-v1:\n  n_timesteps: 1000\n  policy: MlpPolicy\n")
    with pytest.raises(RunFolderError, match="no model to continue"):
        train(TrainOptions(resume=run_dir, log_folder=tmp_path / "logs", verbose=0))


def test_off_policy_checkpoints_keep_the_replay_buffer_when_asked_and_resume_with_it(tmp_path):
    from stable_baselines3 import DQN

    fast = ["learning_starts:100", "train_freq:100", "gradient_steps:1", "policy_kwargs:dict(net_arch=[16])"]
    run("train", "--algo", "dqn", "--env", "CartPole-v1", "-n", 200, "-f", tmp_path, "--eval-freq", -1,
        "--save-freq", 100, "--save-replay-buffer", "-params", *fast, "-q")
    parent = tmp_path / "dqn" / "CartPole-v1_1"
    assert (parent / "rl_model_replay_buffer_100_steps.pkl").is_file() and (parent / "replay_buffer.pkl").is_file()
    run("train", "--algo", "dqn", "--env", "CartPole-v1", "-n", 200, "-f", tmp_path / "plain", "--eval-freq", -1,
        "--save-freq", 100, "-params", *fast, "-q")
    assert not list((tmp_path / "plain").rglob("*replay_buffer*")), "only when asked"

    (parent / "CartPole-v1.zip").unlink()
    (parent / "rl_model_200_steps.zip").unlink()  # as if killed after the checkpoint at 100 steps
    run("train", "--resume", parent, "-f", tmp_path, "-n", 100, "--eval-freq", -1, "-q")
    child = tmp_path / "dqn" / "CartPole-v1_2"
    model = DQN.load(child / "CartPole-v1.zip")
    model.load_replay_buffer(child / "replay_buffer.pkl")  # saved again: the run inherits --save-replay-buffer
    # SB3 stores a step's transition after the callbacks, so the checkpoint at 100 steps holds 99 of them.
    assert (model.replay_buffer.size(), model.num_timesteps) == (99 + 100, 200)


def test_manifest_type_checks_the_lineage_fields(tmp_path):
    Manifest("ppo", "CartPole-v1", "CartPole-v1.zip", parent_run="/runs/ppo/CartPole-v1_1",
             initial_timesteps=5).validate("here")
    for values in ({"parent_run": 3}, {"parent_run": ""}, {"initial_timesteps": -1}, {"initial_timesteps": True},
                   {"initial_timesteps": "5"}):
        with pytest.raises(RunFolderError, match=next(iter(values))):
            Manifest("ppo", "CartPole-v1", "CartPole-v1.zip", **values).validate("here")
    data = {"algo_id": "ppo", "env_id": "CartPole-v1", "model_file": "CartPole-v1.zip"}
    (tmp_path / "rlhub.json").write_text(json.dumps(data))
    assert (Manifest.read(tmp_path).parent_run, Manifest.read(tmp_path).initial_timesteps) == (None, 0)


def test_runs_started_at_once_in_one_log_folder_get_their_own_folders(tmp_path, monkeypatch):
    import rlhub.run_folder as run_folder

    latest_id = run_folder._latest_id
    (tmp_path / "ppo").mkdir()

    def racing_latest_id(parent, env_id):  # another run takes the id between the scan and the mkdir
        found = latest_id(parent, env_id)
        (parent / f"CartPole-v1_{found + 1}").mkdir(exist_ok=True)
        monkeypatch.setattr(run_folder, "_latest_id", latest_id)
        return found

    monkeypatch.setattr(run_folder, "_latest_id", racing_latest_id)
    assert run_folder.new_run_dir(tmp_path, "ppo", "CartPole-v1") == tmp_path / "ppo" / "CartPole-v1_2"
    assert sorted(path.name for path in (tmp_path / "ppo").iterdir()) == ["CartPole-v1_1", "CartPole-v1_2"]
