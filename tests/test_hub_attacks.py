"""The five findings of "Downloaded agents are data", and a manifest whose env_kwargs make a huge env, each
re-run through the CLI against the loopback Hub.

Every case runs ``python -m rlhub.cli`` in a subprocess, as a user would, and checks the bars: the
payload never runs, nothing outside the log folder is written or deleted, the process's peak
memory stays under 1 GB, and the hostile file is rejected with a one-paragraph error (exit code 2,
no traceback) within 10 s of CPU time (CPU, not wall time, so that a busy machine cannot fail it).
With ``RLHUB_ATTACK_REPORT=path.jsonl`` each run is also recorded (``benchmarks/hostile_agents.py``).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
import yaml
from hostile_files import (
    bytearray_bomb,
    code_payload,
    model_zip,
    object_array_bomb,
    plant_in_data,
    shared_reference_bomb,
    yaml_alias_bomb,
    zip_bomb_member,
)

from rlhub import trust

PEAK_MEMORY_BYTES = 1 << 30
REJECT_CPU_SECONDS = 10.0


@dataclass
class Outcome:
    command: str
    exit_code: int
    output: str
    peak_memory_mb: float
    cpu_seconds: float
    wall_seconds: float


def rlhub(*args, cwd: Path, timeout: float = 300) -> Outcome:
    """Run the rlhub CLI in a fresh process; its peak memory and CPU time come from ``wait4``."""
    command = [sys.executable, "-m", "rlhub.cli", *map(str, args)]
    started = time.perf_counter()
    log = cwd / f".rlhub-{time.monotonic_ns()}.log"
    with open(log, "w+b") as output:
        process = subprocess.Popen(command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                process.kill()
                pytest.fail(f"rlhub {' '.join(map(str, args))} ran past {timeout} s")
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
        output.seek(0)
        text = output.read().decode(errors="replace")
    log.unlink()
    outcome = Outcome(" ".join(map(str, args)), process.returncode, text, usage.ru_maxrss / 1024,
                      usage.ru_utime + usage.ru_stime, time.perf_counter() - started)
    if os.environ.get("RLHUB_ATTACK_REPORT"):
        with open(os.environ["RLHUB_ATTACK_REPORT"], "a") as report:
            report.write(json.dumps({**asdict(outcome), "output": text.strip().splitlines()[-1:]}) + "\n")
    return outcome


def assert_rejected(outcome: Outcome, *phrases: str) -> None:
    where = f"rlhub {outcome.command}\n{outcome.output}"
    assert outcome.exit_code == 2, f"expected a clear error (exit 2), got {outcome.exit_code}: {where}"
    assert "Traceback" not in outcome.output and "Error:" in outcome.output, where
    for phrase in phrases:
        assert phrase in outcome.output, f"{phrase!r} missing: {where}"
    assert outcome.peak_memory_mb * (1 << 20) < PEAK_MEMORY_BYTES, f"peak memory {outcome.peak_memory_mb:.0f} MB: {where}"
    assert outcome.cpu_seconds < REJECT_CPU_SECONDS, f"took {outcome.cpu_seconds:.1f} s of CPU: {where}"


def upload(folder: Path, repo_id: str) -> str:
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="an innocent agent")
    return repo_id


def tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


# 1. Code runs on `rlhub train -i` --------------------------------------------------------------


def test_train_i_never_unpickles_a_downloaded_model(ppo_cartpole_package, hub_server, tmp_path):
    marker = tmp_path / "payload_ran"
    repo = tmp_path / "repo"
    shutil.copytree(ppo_cartpole_package, repo)
    plant_in_data(model_zip(repo), "policy_class", code_payload(marker))
    upload(repo, "mallory/evil-model")
    assert rlhub("load-from-hub", "--repo-id", "mallory/evil-model", "-f", "rl_trained", cwd=tmp_path).exit_code == 0
    downloaded = tmp_path / "rl_trained" / "ppo" / "CartPole-v1_1" / "ppo-CartPole-v1.zip"

    outcome = rlhub("train", "--algo", "ppo", "--env", "CartPole-v1", "-n", 64, "-i", downloaded, cwd=tmp_path)
    assert_rejected(outcome, "would call builtins.exec", "--trust-remote-code", "none of it ran")
    assert not marker.exists()

    # Statistics next to a clean model are read as data too.
    shutil.copyfile(model_zip(ppo_cartpole_package), downloaded)
    (downloaded.parent / "vec_normalize.pkl").write_bytes(code_payload(marker))
    outcome = rlhub("train", "--algo", "ppo", "--env", "CartPole-v1", "-n", 64, "-i", downloaded, cwd=tmp_path)
    assert_rejected(outcome, "vec_normalize.pkl", "would call builtins.exec")
    assert not marker.exists()

    # The payload is real: the opt-in runs it.
    rlhub("train", "--algo", "ppo", "--env", "CartPole-v1", "-n", 64, "-i", downloaded, "--trust-remote-code",
          cwd=tmp_path)
    assert marker.read_text() == "pwned"


def test_a_downloaded_agent_continues_training_as_data_and_an_own_run_as_saved(ppo_cartpole_package, ppo_cartpole_run, hub_server,
                                                                            tmp_path):
    upload(ppo_cartpole_package, "alice/ppo-CartPole-v1")
    assert rlhub("load-from-hub", "--repo-id", "alice/ppo-CartPole-v1", "-f", "rl_trained", cwd=tmp_path).exit_code == 0
    downloaded = tmp_path / "rl_trained" / "ppo" / "CartPole-v1_1" / "ppo-CartPole-v1.zip"
    assert not trust.is_trusted(downloaded)
    outcome = rlhub("train", "--algo", "ppo", "--env", "CartPole-v1", "-n", 64, "-i", downloaded, "--eval-freq", -1,
                    cwd=tmp_path)
    assert outcome.exit_code == 0, outcome.output

    own = ppo_cartpole_run / "CartPole-v1.zip"
    assert trust.is_trusted(own)  # signed by `rlhub train` on this machine: continues without any flag
    outcome = rlhub("train", "--algo", "ppo", "--env", "CartPole-v1", "-n", 64, "-i", own, "--eval-freq", -1,
                    cwd=tmp_path)
    assert outcome.exit_code == 0 and "Trained" in outcome.output, outcome.output
    continued = sorted((tmp_path / "logs" / "ppo").glob("CartPole-v1_*"))[-1]
    assert trust.is_trusted(continued / "CartPole-v1.zip")


# 2. A downloaded manifest chooses where files are written, and what is deleted ------------------


@pytest.mark.parametrize("field, value, phrase", [
    ("algo_id", "../../outside", "algo_id"),
    ("algo_id", "/tmp/rlhub-victim", "algo_id"),
    ("env_id", "../../../outside", "env_id"),
    ("model_file", "/etc/hostname", "model_file"),
    ("model_file", "../../../../outside.zip", "model_file"),
    ("vec_normalize_file", "/proc/self/environ", "vec_normalize_file"),
])
def test_a_manifest_cannot_choose_paths(ppo_cartpole_package, hub_server, tmp_path, field, value, phrase):
    victim = tmp_path / "victim"
    (victim / "CartPole-v1_1").mkdir(parents=True)
    (victim / "CartPole-v1_1" / "precious.txt").write_text("keep me")
    repo = tmp_path / "repo"
    shutil.copytree(ppo_cartpole_package, repo)
    manifest = json.loads((repo / "rlhub.json").read_text())
    value = str(victim) if value == "/tmp/rlhub-victim" else value
    (repo / "rlhub.json").write_text(json.dumps({**manifest, field: value}))
    upload(repo, "mallory/paths")
    work = tmp_path / "work"
    work.mkdir()
    before = tree(tmp_path)
    for extra in ([], ["--exp-id", 1, "--force"]):
        outcome = rlhub("load-from-hub", "--repo-id", "mallory/paths", "-f", "rl_trained", *extra, cwd=work)
        assert_rejected(outcome, phrase, "nothing was loaded or written")
    assert (victim / "CartPole-v1_1" / "precious.txt").read_text() == "keep me"
    assert tree(tmp_path) - before <= {"work/rl_trained"}, "something was written outside the log folder"
    assert_rejected(rlhub("enjoy", "--repo-id", "mallory/paths", "--no-render", cwd=work), phrase)


def test_force_replaces_only_a_folder_rlhub_made(ppo_cartpole_package, hub_server, tmp_path):
    upload(ppo_cartpole_package, "alice/ppo-CartPole-v1")
    mine = tmp_path / "rl_trained" / "ppo" / "CartPole-v1_1"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("my notes")
    outcome = rlhub("load-from-hub", "--repo-id", "alice/ppo-CartPole-v1", "--exp-id", 1, "--force", cwd=tmp_path)
    assert_rejected(outcome, "not a run folder rlhub made")
    assert (mine / "notes.txt").read_text() == "my notes"

    shutil.rmtree(mine)
    for _ in range(2):  # the second time, --force replaces the folder the first download made
        outcome = rlhub("load-from-hub", "--repo-id", "alice/ppo-CartPole-v1", "--exp-id", 1, "--force", cwd=tmp_path)
        assert outcome.exit_code == 0, outcome.output
    assert trust.made_by_rlhub(mine) and not trust.is_trusted(mine / "ppo-CartPole-v1.zip")


# 3. The restricted reader can be made to exhaust memory or CPU ----------------------------------


def _plant_bytearray(repo: Path) -> None:
    plant_in_data(model_zip(repo), "observation_space", bytearray_bomb())


def _plant_shared_references(repo: Path) -> None:
    plant_in_data(model_zip(repo), "policy_kwargs", shared_reference_bomb())


def _plant_object_array(repo: Path) -> None:
    (repo / "vec_normalize.pkl").write_bytes(object_array_bomb())


def _plant_yaml_bomb(repo: Path) -> None:
    (repo / "config.yml").write_text(yaml_alias_bomb() + (repo / "config.yml").read_text())


def _plant_zip_bomb(repo: Path) -> None:
    zip_bomb_member(model_zip(repo), "policy.pth", size=1 << 30)


@pytest.mark.parametrize("plant", [_plant_bytearray, _plant_shared_references, _plant_object_array, _plant_yaml_bomb,
                                   _plant_zip_bomb], ids=lambda plant: plant.__name__[len("_plant_"):])
def test_hostile_files_cannot_exhaust_memory_or_time(ppo_cartpole_package, hub_server, tmp_path, plant):
    repo = tmp_path / "repo"
    shutil.copytree(ppo_cartpole_package, repo)
    plant(repo)
    upload(repo, "mallory/bomb")
    assert_rejected(rlhub("enjoy", "--repo-id", "mallory/bomb", "--no-render", "-n", 10, cwd=tmp_path))


# 4. Configs can import modules that act on import -----------------------------------------------


@pytest.mark.parametrize("key, value", [
    ("env_wrapper", "torch.utils.model_dump.__main__.X"),
    ("policy_kwargs", "dict(activation_fn=torch.utils.model_dump.__main__.X)"),
    ("policy_kwargs", "dict(optimizer_class=torch.utils.bottleneck.__main__.main)"),
    ("policy", "torch.utils.model_dump.__main__.X"),
])
def test_a_downloaded_config_imports_only_allow_listed_classes(ppo_cartpole_package, hub_server, tmp_path, key, value):
    repo = tmp_path / "repo"
    shutil.copytree(ppo_cartpole_package, repo)
    config = yaml.safe_load((repo / "config.yml").read_text())
    (repo / "config.yml").write_text(yaml.safe_dump({**config, key: value}))
    upload(repo, "mallory/imports")
    outcome = rlhub("enjoy", "--repo-id", "mallory/imports", "--no-render", "-n", 10, cwd=tmp_path)
    assert_rejected(outcome)
    assert "usage:" not in outcome.output  # model_dump's command line never ran


def test_a_downloaded_config_cannot_choose_files_to_learn_from(ppo_cartpole_package, tmp_path):
    from stable_baselines3 import PPO

    from rlhub.safe_loading import load_config

    secret = tmp_path / "secret.pt"
    secret.write_bytes(b"not for the download to read")
    config = yaml.safe_load((ppo_cartpole_package / "config.yml").read_text())
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({**config, "reward_model": str(secret), "dataset": "../../etc"}))
    loaded = load_config(path, "ppo", "CartPole-v1", PPO)
    assert loaded.reward_model is None and "dataset" not in loaded.hyperparams


# 5. Trust fails open ------------------------------------------------------------------------


def test_trust_is_proven_never_presumed(ppo_cartpole_package, ppo_cartpole_run, tmp_path):
    marker = tmp_path / "payload_ran"
    # A repo fetched with `git clone` (no hub_source.json) and put where run folders live.
    cloned = tmp_path / "logs" / "ppo" / "CartPole-v1_1"
    shutil.copytree(ppo_cartpole_package, cloned)
    plant_in_data(model_zip(cloned), "policy_class", code_payload(marker))
    assert_rejected(rlhub("enjoy", "-f", cloned, "--no-render", "-n", 10, cwd=tmp_path), "would call builtins.exec")

    # A forged signature: the right hashes, claiming `rlhub train` made it, without the key.
    trust.sign(cloned)  # signed with this machine's key ...
    signature = json.loads((cloned / trust.SIGNATURE_NAME).read_text())
    signature["mac"] = "0" * 64  # ... and the one thing a download cannot supply removed
    (cloned / trust.SIGNATURE_NAME).write_text(json.dumps(signature))
    assert not trust.is_trusted(model_zip(cloned))
    assert_rejected(rlhub("enjoy", "-f", cloned, "--no-render", "-n", 10, cwd=tmp_path), "would call builtins.exec")

    # A signature made with another machine's key (a run folder copied from elsewhere).
    other_key = tmp_path / "other.key"
    env = {**os.environ, "RLHUB_TRUST_KEY": str(other_key)}
    subprocess.run([sys.executable, "-c", f"from rlhub import trust; trust.sign({str(cloned)!r})"], env=env, check=True)
    assert not trust.is_trusted(model_zip(cloned))
    assert_rejected(rlhub("enjoy", "-f", cloned, "--no-render", "-n", 10, cwd=tmp_path), "would call builtins.exec")

    # An own run whose model was swapped after signing.
    own = tmp_path / "own"
    shutil.copytree(ppo_cartpole_run, own)
    assert trust.is_trusted(own / "CartPole-v1.zip")
    plant_in_data(own / "CartPole-v1.zip", "policy_class", code_payload(marker))
    assert not trust.is_trusted(own / "CartPole-v1.zip")
    assert_rejected(rlhub("enjoy", "-f", own, "--no-render", "-n", 10, cwd=tmp_path), "would call builtins.exec")
    assert not marker.exists()


def test_signing_key_is_private_and_made_once(tmp_path, monkeypatch):
    monkeypatch.setenv("RLHUB_TRUST_KEY", str(tmp_path / "keys" / "trust.key"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.zip").write_bytes(b"weights")
    trust.sign(run_dir)
    assert (tmp_path / "keys" / "trust.key").stat().st_mode & 0o777 == 0o600
    key = (tmp_path / "keys" / "trust.key").read_text()
    assert trust.is_trusted(run_dir / "model.zip") and (tmp_path / "keys" / "trust.key").read_text() == key
    assert not trust.is_trusted(run_dir / "missing.zip")
    trust.sign(run_dir, origin=trust.DOWNLOADED)
    assert trust.made_by_rlhub(run_dir) and not trust.is_trusted(run_dir / "model.zip")


# 6. A manifest's env_kwargs choose the environment's size --------------------------------------


@pytest.fixture(scope="module")
def maddpg_package(tmp_path_factory):
    """A multi-agent agent as push-to-hub uploads it: its env's size is a keyword argument (N agents)."""
    from rlhub import hub
    from rlhub.experiment import TrainOptions, train

    run_dir = train(TrainOptions("maddpg", "mpe2:simple_spread_v3", n_timesteps=64, seed=0, eval_freq=-1, verbose=0,
                                 log_folder=tmp_path_factory.mktemp("own") / "logs", device="cpu")).run_dir
    folder = tmp_path_factory.mktemp("packaged") / "maddpg-simple_spread_v3"
    hub.package(run_dir, folder, n_eval_episodes=1, video_length=0, device="cpu")
    return folder


@pytest.mark.parametrize("env_kwargs, phrases", [
    ({"N": 100_000}, ["RLHUB_SAFE_MAX_ENV_SECONDS", "CPU time"]),  # the constructor alone would run for hours
    ({"N": 3, "max_cycle": 25}, ["takes no argument 'max_cycle'", "Did you mean 'max_cycles'"]),
])
def test_a_manifest_cannot_make_the_environment_exhaust_time(maddpg_package, hub_server, tmp_path, monkeypatch,
                                                             env_kwargs, phrases):
    monkeypatch.setenv("RLHUB_SAFE_MAX_ENV_SECONDS", "2")
    repo = tmp_path / "repo"
    shutil.copytree(maddpg_package, repo)
    manifest = json.loads((repo / "rlhub.json").read_text())
    (repo / "rlhub.json").write_text(json.dumps({**manifest, "env_kwargs": env_kwargs}))
    upload(repo, "mallory/crowd")
    started = time.perf_counter()
    assert_rejected(rlhub("enjoy", "--repo-id", "mallory/crowd", "--no-render", "-n", 10, cwd=tmp_path), *phrases)
    assert time.perf_counter() - started < 60  # the probe's CPU is its child's, so bound the wall time too
