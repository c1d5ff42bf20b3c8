"""Where run folders and figures cannot be written (a file in the way, no permission, a full disk), and
how `rlhub plot` lines up runs of different lengths and continued runs."""

import json
import os
import shutil
import subprocess
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from rlhub.cli import main
from rlhub.plotting import aggregate, collect_runs

TRAIN = ("train", "--algo", "ppo", "--env", "CartPole-v1", "--eval-freq", -1, "-q", "--device", "cpu")
AS_ROOT = os.geteuid() == 0
needs_modes = pytest.mark.skipif(AS_ROOT, reason="runs as root, and root writes into any folder whatever its mode")


def run(*args, expect=0):
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    assert result.exit_code == expect, f"rlhub {' '.join(map(str, args))} exited {result.exit_code}:\n{result.output}"
    return " ".join(result.output.split())  # click wraps long messages


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(kB)``: a folder on a tmpfs of that size. Mounting one needs root (and a container
    allowed to mount); elsewhere the test is skipped."""
    mounted = []

    def mount(size_kb):
        if not AS_ROOT or not shutil.which("mount"):
            pytest.skip("a small file system to fill needs root and `mount` to mount a tmpfs")
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)],
                                capture_output=True, text=True)
        if result.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:  # lazily: a file the failed run left open must not keep the mount
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


@pytest.fixture
def read_only(tmp_path):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o500)
    yield folder
    folder.chmod(0o700)


def test_train_into_a_folder_under_a_file_says_so(tmp_path):
    (tmp_path / "notes").write_text("not a folder")
    output = run(*TRAIN, "-n", 100, "-f", tmp_path / "notes" / "logs", expect=2)
    assert f"{tmp_path / 'notes'} is a file, not a folder" in output and "-f" in output


@needs_modes
def test_train_into_an_unwritable_folder_says_so(read_only):
    output = run(*TRAIN, "-n", 100, "-f", read_only / "logs", expect=2)
    assert "is not writable" in output and str(read_only) in output


def test_train_onto_a_full_disk_is_refused_before_training(small_disk):
    disk = small_disk(256)
    output = run(*TRAIN, "-n", 100, "-f", disk / "logs", expect=2)
    assert "kB are free" in output and str(disk / "logs") in output
    assert not list(disk.rglob("rlhub.json"))


def test_a_disk_filled_by_checkpoints_ends_in_a_clear_error_and_keeps_the_last_save(small_disk, tmp_path):
    from stable_baselines3 import PPO

    disk = small_disk(1600)  # a run folder and some 25 checkpoints of 55 kB; a checkpoint every step fills it
    output = run(*TRAIN, "-n", 1000, "--save-freq", 8, "--seed", 0, "-f", disk / "logs", "-tb", tmp_path / "tb",
                 expect=2)
    run_dir = disk / "logs" / "ppo" / "CartPole-v1_1"
    assert f"No space left on {run_dir}: the last complete save is" in output
    last = output.split("the last complete save is ")[1].split(". ")[0]
    assert PPO.load(last).num_timesteps > 0
    for save in run_dir.glob("*.zip"):  # a truncated zip under a real name would fail here
        assert not save.name.startswith("."), f"{save.name}: a scratch file was left behind"
        assert zipfile.ZipFile(save).testzip() is None, f"{save.name} is damaged"


def test_plot_refuses_a_format_matplotlib_cannot_write_before_reading_runs(tmp_path):
    output = run("plot", "-f", tmp_path / "no_runs_here", "-o", tmp_path / "curves.xyz", expect=2)
    assert "cannot write '.xyz' files" in output and ".png" in output and ".svg" in output


def test_plot_refuses_an_output_under_a_file(tmp_path):
    (tmp_path / "notes").write_text("not a folder")
    output = run("plot", "-f", tmp_path, "-o", tmp_path / "notes" / "curves.png", expect=2)
    assert f"{tmp_path / 'notes'} is a file, not a folder" in output


@needs_modes
def test_plot_refuses_an_unwritable_folder(read_only):
    output = run("plot", "-f", read_only, "-o", read_only / "curves.png", expect=2)
    assert f"{read_only} is not writable" in output


def test_plot_of_a_damaged_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "rlhub.json").write_text("{not json")
    assert "is not valid JSON" in run("plot", "-f", tmp_path, "-o", tmp_path / "curves.png", expect=2)


def write_run(folder, lengths, returns, initial_timesteps=None):
    """A run folder as ``rlhub train`` leaves it, its monitor file written by hand (SB3's format)."""
    folder.mkdir(parents=True)
    manifest = {"algo_id": "ppo", "env_id": "CartPole-v1", "model_file": "CartPole-v1.zip"}
    if initial_timesteps is not None:
        manifest["initial_timesteps"] = initial_timesteps
    (folder / "rlhub.json").write_text(json.dumps(manifest))
    rows = "".join(f"{r},{length},{i + 1}.0\n" for i, (length, r) in enumerate(zip(lengths, returns)))
    (folder / "0.monitor.csv").write_text('#{"t_start": 0.0, "env_id": "CartPole-v1"}\nr,l,t\n' + rows)
    return folder


def test_a_continued_run_starts_at_its_initial_timesteps(tmp_path):
    write_run(tmp_path / "ppo" / "CartPole-v1_1", [10, 20, 30], [1.0, 2.0, 3.0])
    write_run(tmp_path / "ppo" / "CartPole-v1_2", [10, 20], [4.0, 5.0], initial_timesteps=60)
    fresh, continued = collect_runs([tmp_path])
    np.testing.assert_array_equal(fresh.timesteps, [10, 30, 60])
    np.testing.assert_array_equal(continued.timesteps, [70, 90])  # carries on where its parent ended


def test_runs_of_different_lengths_each_count_up_to_their_own_end():
    short = (np.array([0.0, 100.0]), np.array([0.0, 100.0]))
    long = (np.array([0.0, 400.0]), np.array([10.0, 10.0]))
    curves = aggregate([short[0], long[0]], [short[1], long[1]], points=5)  # grid 0, 100, ..., 400
    np.testing.assert_array_equal(curves.grid, [0, 100, 200, 300, 400])
    np.testing.assert_array_equal(curves.count, [2, 2, 1, 1, 1])
    np.testing.assert_allclose(curves.mean, [5, 55, 10, 10, 10])
    np.testing.assert_allclose(curves.low, [0, 10, 10, 10, 10])
    np.testing.assert_allclose(curves.high, [10, 100, 10, 10, 10])


def test_a_gap_between_runs_is_left_empty():
    curves = aggregate([np.array([0.0, 100.0]), np.array([300.0, 400.0])],
                       [np.array([1.0, 1.0]), np.array([2.0, 2.0])], points=5)
    np.testing.assert_array_equal(curves.count, [1, 1, 0, 1, 1])
    assert np.isnan(curves.mean[2]) and np.isnan(curves.low[2])
    np.testing.assert_allclose(curves.mean[[0, 1, 3, 4]], [1, 1, 2, 2])
