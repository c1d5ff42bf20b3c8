"""`rlhub train / enjoy / plot / benchmark` as a user runs them, and the errors they give."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from rlhub.cli import main


def run(*args, expect=0):
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    assert result.exit_code == expect, f"rlhub {' '.join(map(str, args))} exited {result.exit_code}:\n{result.output}"
    return result.output


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One short PPO run shared by the enjoy/plot tests."""
    logs = tmp_path_factory.mktemp("shared") / "logs"
    output = run("train", "--algo", "ppo", "--env", "CartPole-v1", "-n", 3000, "-f", logs, "--seed", 1,
                 "--eval-freq", 1000, "--eval-episodes", 2, "--save-freq", 1024, "-q")
    return logs, output


def test_train_writes_the_run_folder(trained_run):
    logs, output = trained_run
    run_dir = logs / "ppo" / "CartPole-v1_1"
    assert f"run folder: {run_dir}" in output and "Evaluation (deterministic): mean return" in output
    names = {path.name for path in run_dir.iterdir()}
    assert {"CartPole-v1.zip", "config.yml", "rlhub.json", "best_model.zip", "evaluations.npz",
            "0.monitor.csv", "7.monitor.csv"} <= names  # the zoo config uses 8 envs
    assert {"rl_model_1024_steps.zip", "rl_model_2048_steps.zip"} <= names
    manifest = json.loads((run_dir / "rlhub.json").read_text())
    assert manifest["algo_id"] == "ppo" and manifest["env_id"] == "CartPole-v1" and manifest["seed"] == 1
    assert manifest["sb3_version"] and manifest["distribution"] == "rlhub"
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert "n_timesteps: 3000" in (run_dir / "config.yml").read_text()


def test_enjoy_prints_episode_returns(trained_run):
    logs, _ = trained_run
    output = run("enjoy", "--algo", "ppo", "--env", "CartPole-v1", "-f", logs, "--no-render", "-n", 400)
    assert "episode 1: return" in output and "mean return" in output


def test_enjoy_loads_best_and_checkpoints_and_records_video(trained_run, tmp_path):
    import imageio.v2 as imageio

    logs, _ = trained_run
    run("enjoy", "--algo", "ppo", "--env", "CartPole-v1", "-f", logs, "--load-best", "--no-render", "-n", 50)
    video = tmp_path / "replay.mp4"
    output = run("enjoy", "--algo", "ppo", "--env", "CartPole-v1", "-f", logs, "--load-checkpoint", 2048,
                 "--n-episodes", 1, "--record-video", video)
    assert "episode 1: return" in output
    reader = imageio.get_reader(video)
    assert reader.count_frames() >= 8 and reader.get_data(0).shape == (400, 600, 3)


def test_enjoy_without_a_run_says_how_to_make_one(tmp_path):
    output = run("enjoy", "--algo", "ppo", "--env", "CartPole-v1", "-f", tmp_path, "--no-render", expect=2)
    assert "No ppo run on CartPole-v1" in output and "rlhub train --algo ppo --env CartPole-v1" in output


def test_train_continues_a_trained_agent(trained_run, tmp_path):
    logs, _ = trained_run
    model = logs / "ppo" / "CartPole-v1_1" / "CartPole-v1.zip"
    run("train", "--algo", "ppo", "--env", "CartPole-v1", "-n", 512, "-f", tmp_path, "-i", model, "--eval-freq",
        -1, "-q")
    from stable_baselines3 import PPO

    continued = PPO.load(tmp_path / "ppo" / "CartPole-v1_1" / "CartPole-v1.zip")
    assert continued.num_timesteps > PPO.load(model).num_timesteps


def test_hyperparams_and_env_kwargs_reach_the_model(tmp_path):
    run("train", "--algo", "ppo", "--env", "CartPole-v1", "-n", 64, "-f", tmp_path, "--n-envs", 2, "--eval-freq",
        -1, "-params", "n_steps:32", "gamma:0.9", "policy_kwargs:dict(net_arch=[8])", "--env-kwargs",
        "sutton_barto_reward:True", "-q")
    from stable_baselines3 import PPO

    model = PPO.load(tmp_path / "ppo" / "CartPole-v1_1" / "CartPole-v1.zip")
    assert (model.n_steps, model.gamma, model.n_envs) == (32, 0.9, 2)
    assert model.policy_kwargs["net_arch"] == [8]
    manifest = json.loads((tmp_path / "ppo" / "CartPole-v1_1" / "rlhub.json").read_text())
    assert manifest["env_kwargs"] == {"sutton_barto_reward": True}


def test_normalize_and_subproc_envs_save_statistics(tmp_path):
    run("train", "--algo", "ppo", "--env", "Pendulum-v1", "-n", 512, "-f", tmp_path, "--n-envs", 2, "--vec-env",
        "subproc", "--eval-freq", 256, "--eval-episodes", 1, "-params", "normalize:True", "n_steps:128", "-q")
    run_dir = tmp_path / "ppo" / "Pendulum-v1_1"
    assert (run_dir / "vec_normalize.pkl").is_file() and (run_dir / "best_vec_normalize.pkl").is_file()
    assert json.loads((run_dir / "rlhub.json").read_text())["vec_normalize_file"] == "vec_normalize.pkl"
    run("enjoy", "--algo", "ppo", "--env", "Pendulum-v1", "-f", tmp_path, "--no-render", "-n", 200)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "ppp", "--env", "CartPole-v1"], "Did you mean 'ppo'"),
        (["--algo", "ppo", "--env", "CartPole-v2"], "Did you mean 'CartPole-v1'"),
        (["--algo", "dqn", "--env", "Pendulum-v1"], "dqn cannot learn with a Box action space"),
        (["--algo", "ppo", "--env", "CartPole-v1", "-params", "n_stepz:8"], "key 'n_stepz'"),
        (["--algo", "ppo_mask", "--env", "CartPole-v1"], "action_masks()"),
    ],
)
def test_bad_input_is_reported_before_training(tmp_path, args, message):
    output = run("train", *args, "-f", tmp_path, "-n", 64, expect=2)
    assert message in output
    assert not list(tmp_path.rglob("*.zip")), "nothing may be trained on bad input"


def test_missing_optional_dependency_names_the_extra(tmp_path):
    # Box2D is hidden from the import system, as on a machine without the box2d extra.
    code = ("import sys; sys.modules['Box2D'] = None; from rlhub.cli import main; "
            f"main(['train', '--algo', 'ppo', '--env', 'LunarLander-v3', '-n', '64', '-f', r'{tmp_path}'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "pip install 'rlhub[box2d]'" in result.stderr


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_training_saves_the_model(tmp_path, signal_number):
    process = subprocess.Popen(
        [sys.executable, "-m", "rlhub.cli", "train", "--algo", "ppo", "--env", "CartPole-v1", "-n", "10000000",
         "-f", str(tmp_path), "--eval-freq", "-1", "--save-freq", "500", "--n-envs", "1",
         "-params", "n_steps:64", "batch_size:64", "n_epochs:1", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    run_dir = tmp_path / "ppo" / "CartPole-v1_1"
    deadline = time.time() + 120
    while not list(run_dir.glob("rl_model_*_steps.zip")) and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal_number)
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 128 + signal_number, stderr  # 130 / 143: scripts can tell it was stopped
    assert "Interrupted: model saved" in stdout
    from stable_baselines3 import PPO

    saved = PPO.load(run_dir / "CartPole-v1.zip")
    assert 500 <= saved.num_timesteps < 10_000_000
    assert list(run_dir.glob("rl_model_*_steps.zip")), "the last checkpoint is kept"


def test_plot_draws_several_runs(trained_run, tmp_path):
    import matplotlib.image as mpimg

    logs, _ = trained_run
    run("train", "--algo", "a2c", "--env", "CartPole-v1", "-n", 2000, "-f", logs, "--eval-freq", -1, "-q")
    output_png = tmp_path / "curves.png"
    output = run("plot", "-f", logs, "--env", "CartPole-v1", "-o", output_png)
    assert "plotted to" in output
    image = mpimg.imread(output_png)
    assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0


def test_plot_with_no_runs_is_a_clear_error(tmp_path):
    assert "no run folders" in run("plot", "-f", tmp_path, expect=2)


def test_benchmark_quick_writes_a_table_and_curves(tmp_path):
    suite = tmp_path / "suite.yml"
    suite.write_text("rows:\n  - {algo: ppo, env: CartPole-v1, timesteps: 1e5, seeds: [0, 1], bar: 475, peer: a2c}\n")
    output = run("benchmark", suite, "-o", tmp_path / "out", "--quick")
    assert "| ppo | CartPole-v1 | 2048 | 1 |" in output  # quick: budget cut to 2000 (PPO rounds up to a rollout)
    assert "| a2c (peer of ppo) | CartPole-v1 |" in output and "smoke only" in output
    assert (tmp_path / "out" / "results.md").is_file() and (tmp_path / "out" / "curves_CartPole-v1.png").is_file()


def test_benchmark_stops_a_seed_at_the_bar_and_names_rows_by_label(tmp_path):
    # A bar a random CartPole policy already passes: every seed stops at its first evaluation.
    suite = tmp_path / "suite.yml"
    suite.write_text("rows:\n  - {algo: a2c, label: a2c (to 9), env: CartPole-v1, timesteps: 1e5, seeds: [0, 1],"
                     " bar: 9, eval_freq: 400, stop_at_bar: true, eval_episodes: 2}\n")
    output = run("benchmark", suite, "-o", tmp_path / "out")
    row = next(line for line in output.splitlines() if line.startswith("| a2c (to 9) |"))
    header = next(line for line in output.splitlines() if line.startswith("| algo |"))
    cells = dict(zip((cell.strip() for cell in header.split("|")[1:-1]), (cell.strip() for cell in row.split("|")[1:-1])))
    assert int(cells["timesteps"]) <= 1000  # stopped, not 1e5 steps
    assert cells["met"] == "yes" and cells["steps to bar"] == "400 (median of 2/2; seeds: 400, 400)"
    assert cells["data mean"] == "-"  # it learns online
    assert (tmp_path / "out" / "curves_CartPole-v1.png").is_file()


def test_benchmark_rejects_a_malformed_suite(tmp_path):
    suite = tmp_path / "suite.yml"
    suite.write_text("rows:\n  - {algo: ppo, env: CartPole-v1, timestep: 1000}\n")
    assert "unknown key(s) timestep" in run("benchmark", suite, "-o", tmp_path, expect=2)


def test_steps_to_bar_reads_the_evaluations(tmp_path):
    from rlhub.benchmark import _steps_to_bar

    np.savez(tmp_path / "evaluations.npz", timesteps=np.array([100, 200, 300]),
             results=np.array([[10.0, 20.0], [480.0, 460.0], [500.0, 500.0]]))
    assert _steps_to_bar(tmp_path, 470) == 200
    assert _steps_to_bar(tmp_path, 600) is None


@pytest.mark.parametrize("args, message", [
    (["--seed", -1], "--seed"),
    (["--eval-episodes", 0], "--eval-episodes"),
    (["--device", "banana"], "'banana' is not a device"),
])
def test_bad_option_values_are_refused_before_anything_is_written(tmp_path, args, message):
    output = run("train", "--algo", "ppo", "--env", "CartPole-v1", "-n", 64, "-f", tmp_path / "logs", *args, expect=2)
    assert message in output and "Traceback" not in output
    assert not (tmp_path / "logs").exists()


def test_cuda_without_a_gpu_says_it_runs_on_the_cpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = CliRunner().invoke(main, ["train", "--algo", "ppo", "--env", "CartPole-v1", "-n", 64, "-f",
                                       str(tmp_path), "--device", "cuda", "--eval-freq", -1, "-q"])
    assert result.exit_code == 0, result.output
    assert "no CUDA GPU is available here, so rlhub runs on the CPU" in result.output


def test_a_damaged_model_gets_a_clear_error(trained_run, tmp_path):
    import shutil

    logs, _ = trained_run
    damaged = tmp_path / "CartPole-v1_1"
    shutil.copytree(logs / "ppo" / "CartPole-v1_1", damaged)
    model = damaged / "CartPole-v1.zip"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])  # cut in half, as by a full disk
    output = run("enjoy", "-f", damaged, "--no-render", "-n", 10, expect=2)
    assert "CartPole-v1.zip" in output and "Traceback" not in output
    assert "is not a readable zip file" in output or "not a Stable-Baselines3 model" in output
    model.write_bytes(b"not a zip at all")
    output = run("train", "--algo", "ppo", "--env", "CartPole-v1", "-n", 64, "-i", model, "-f", tmp_path / "logs",
                  expect=2)
    assert "is not a readable zip file" in output and not (tmp_path / "logs").exists()


def test_saves_are_atomic(tmp_path):
    from rlhub.run_folder import write_atomically

    path = tmp_path / "CartPole-v1.zip"
    path.write_bytes(b"the previous model")

    def disk_full(scratch):
        scratch.write_bytes(b"half a mod")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, disk_full)
    assert path.read_bytes() == b"the previous model" and [p.name for p in tmp_path.iterdir()] == [path.name]
    write_atomically(path, lambda scratch: scratch.write_bytes(b"the new model"))
    assert path.read_bytes() == b"the new model" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_run_that_fails_before_learning_leaves_no_folder(tmp_path):
    from rlhub.experiment import TrainOptions, train

    # SB3's PPO refuses batch_size 1 in its constructor, after the run folder was made.
    with pytest.raises(Exception, match="batch_size"):
        train(TrainOptions("ppo", "CartPole-v1", n_timesteps=64, log_folder=tmp_path, eval_freq=-1, verbose=0,
                           hyperparams={"batch_size": 1}))
    assert list((tmp_path / "ppo").iterdir()) == []  # enjoy's "latest run" stays the latest complete one


def run_in_terminal(*args, cwd):
    """``rlhub ARGS`` with its stdout on a pseudo-terminal, as a user's shell runs it; returns its output."""
    import pty

    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "rlhub.cli", *map(str, args)], cwd=cwd, stdin=subprocess.DEVNULL,
                               stdout=terminal, stderr=terminal, env={**os.environ, "COLUMNS": "100"})
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the process closed its end of the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert process.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("flags, bar, tables", [((), True, False), (("-q",), True, False), (("-v",), True, True),
                                                (("--no-progress",), False, False)])
def test_a_terminal_gets_a_progress_bar_and_no_log_tables_unless_asked(tmp_path, flags, bar, tables):
    output = run_in_terminal("train", "--algo", "a2c", "--env", "CartPole-v1", "-n", 3000, "--eval-freq", 1000,
                             "--eval-episodes", 2, "--seed", 0, "-f", tmp_path, *flags, cwd=tmp_path)
    assert ("steps/s" in output.split("Trained")[0]) == bar  # the bar's rate column, before the summary line
    assert ("Logging to" in output) == tables  # SB3 speaks (and prints its log tables) only at -v
    assert ("Eval num_timesteps" in output) == ("-q" not in flags)
    assert "Evaluation (deterministic)" in output


def test_piped_output_has_no_bar_and_stays_short(tmp_path):
    result = subprocess.run([sys.executable, "-m", "rlhub.cli", "train", "--algo", "a2c", "--env", "CartPole-v1",
                             "-n", "3000", "--seed", "0", "-f", tmp_path], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) < 10 and not any("steps/s" in line and "━" in line for line in lines), result.stdout


def test_a_model_naming_a_class_that_has_moved_is_rebuilt_not_lost(tmp_path, monkeypatch):
    """A run trained by an older rlhub whose policy class has since moved (as rlhub.common.tabular did)."""
    import base64
    import pickle
    import types
    import zipfile

    from rlhub import trust

    run("train", "--algo", "q_learning", "--env", "FrozenLake-v1", "-n", 2000, "-f", tmp_path / "logs", "-q")
    run_dir = tmp_path / "logs" / "q_learning" / "FrozenLake-v1_1"
    model = run_dir / "FrozenLake-v1.zip"
    with zipfile.ZipFile(model) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    old_home = types.ModuleType("rlhub_old_home")
    moved = type("TabularPolicy", (), {"__module__": old_home.__name__})
    old_home.TabularPolicy = moved
    monkeypatch.setitem(sys.modules, old_home.__name__, old_home)
    data = json.loads(files["data"])
    data["policy_class"][":serialized:"] = base64.b64encode(pickle.dumps(moved)).decode()
    files["data"] = json.dumps(data).encode()
    monkeypatch.delitem(sys.modules, old_home.__name__)  # the class is gone from this rlhub
    with zipfile.ZipFile(model, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    trust.sign(run_dir)
    with pytest.warns(UserWarning, match="no longer has"):
        output = run("enjoy", "-f", run_dir, "--no-render", "--n-episodes", 2)
    assert "mean return" in output


def _readme_commands() -> list[list[str]]:
    """Every ``rlhub ...`` command in the README's shell blocks, as arguments (comments and ``&&`` split off)."""
    import re
    import shlex

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(re.sub(r"\[(-[^\]]*)\]", r"\1", part), comments=True)  # [--flag]: optional
                if words[:1] == ["rlhub"]:
                    commands.append(words[1:])
    return commands


@pytest.mark.parametrize("args", _readme_commands(), ids=lambda args: " ".join(args)[:60])
def test_every_command_in_the_readme_names_a_command_and_options_rlhub_has(args):
    """The README's commands parse: a renamed option or command fails here (files they name need not exist)."""
    context = click.Context(main, info_name="rlhub")
    command = main.get_command(context, args[0])
    assert command is not None, f"rlhub has no command {args[0]!r}"
    try:
        command.make_context(args[0], list(args[1:]), parent=context)
    except (click.NoSuchOption, click.BadOptionUsage, click.UsageError) as error:
        if not isinstance(error, click.BadParameter):  # a file that does not exist here is fine
            raise
