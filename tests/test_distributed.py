"""A3C and DPPO on a real Ray cluster: `ray start --head` started and stopped here, learning, a worker
killed mid-run, a resumed run, and the errors a user meets."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch as th
from click.testing import CliRunner
from stable_baselines3.common.callbacks import BaseCallback
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlhub.cli import main
from rlhub.run_folder import load_agent

ray = pytest.importorskip("ray", reason="the distributed algorithms need Ray: pip install 'rlhub[ray]'")

from rlhub_distributed.a3c import A3C  # noqa: E402
from rlhub_distributed.common.cluster import import_ray  # noqa: E402
from rlhub_distributed.dppo import DPPO  # noqa: E402

# One cluster for the module: under pytest-xdist (--dist loadgroup) its tests run in one worker.
pytestmark = pytest.mark.xdist_group("ray_cluster")

CLUSTER_CPUS = 2


def run(*args, expect=0):
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    assert result.exit_code == expect, f"rlhub {' '.join(map(str, args))} exited {result.exit_code}:\n{result.output}"
    return result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """The address of a Ray head node (2 CPUs: room for 2 workers) started with `ray start --head`,
    with token authentication (its ports are Ray's to bind); its processes are stopped afterwards."""
    token = secrets.token_hex(32)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    port = _free_port()
    log_path = Path(temp_dir) / "head.log"
    ray_cli = Path(sys.executable).with_name("ray")
    with open(log_path, "w") as log:
        head = subprocess.Popen(
            [str(ray_cli), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
             f"--num-cpus={CLUSTER_CPUS}", "--include-dashboard=false", f"--temp-dir={temp_dir}",
             "--disable-usage-stats"],
            env={**os.environ, **auth}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in log_path.read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"`ray start --head` did not start here: {log_path.read_text()[-1500:]}")
            time.sleep(0.5)
        with pytest.MonkeyPatch.context() as patch:
            for name, value in auth.items():
                patch.setenv(name, value)
            patch.delenv("RAY_ADDRESS", raising=False)
            _reload_ray_auth()
            try:
                yield f"127.0.0.1:{port}"
            finally:
                patch.undo()
                _reload_ray_auth()
    finally:
        _stop_process_group(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _reload_ray_auth() -> None:
    """Ray reads its authentication settings once per process; its own tests reload them like this."""
    from ray._private.authentication_test_utils import reset_auth_token_state

    reset_auth_token_state()


def _stop_process_group(process: subprocess.Popen) -> None:
    """`ray stop` would stop every Ray on the machine (other test workers' too): end this head's own."""
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
            deadline = time.monotonic() + grace  # its children (gcs_server, raylet) may outlive it
            while _group_alive(process.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if not _group_alive(process.pid):
                return
        except subprocess.TimeoutExpired:
            continue


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _last_scalar(run_dir: Path, tag: str) -> float:
    events = EventAccumulator(str(next((run_dir / "tensorboard").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    return events.Scalars(tag)[-1].value


# Neither run is fixed by its seed: A3C applies gradients in the order they arrive, and DPPO's batch
# holds the workers' rollouts in the order they arrive. Each is judged on its best of 5 evaluations
# (final policies swing: an A3C run of 50k ended at 101.8 and a DPPO run of 30k at 115.7, both having
# passed 150 on the way); A3C gets the longer budget.
@pytest.mark.parametrize("algo_id, budget", [("dppo", 30_000), ("a3c", 50_000)])
def test_learns_cartpole_with_two_workers_on_the_cluster(algo_id, budget, ray_cluster, tmp_path):
    run("train", "--algo", algo_id, "--env", "CartPole-v1", "-n", budget, "--seed", 0, "-f", tmp_path,
        "--ray-address", ray_cluster, "--eval-freq", budget // 5, "--eval-episodes", 10, "-q")
    run_dir = tmp_path / algo_id / "CartPole-v1_1"
    means = np.load(run_dir / "evaluations.npz")["results"].mean(axis=1)
    assert len(means) == 5 and means.max() >= 150, f"{algo_id}'s evaluations over {budget} steps: {means.round(1)} " \
                                                    "(random play: about 22)"
    # The 2 workers' 4 envs each wrote their monitor files beside the learner's env's (rank 0).
    assert sorted(int(path.name.split(".")[0]) for path in run_dir.glob("*.monitor.csv")) == list(range(9))
    for index in (0, 1):
        assert _last_scalar(run_dir, f"workers/steps_per_second_{index}") > 0
    assert _last_scalar(run_dir, "workers/restarts") == 0


class KillWorker(BaseCallback):
    """SIGKILL worker 0's process once training passes ``at_step``."""

    def __init__(self, at_step: int) -> None:
        super().__init__()
        self.at_step, self.killed_pid = at_step, None

    def _on_step(self) -> bool:
        if self.killed_pid is None and self.num_timesteps >= self.at_step:
            self.killed_pid = self.model.workers.pids()[0]
            os.kill(self.killed_pid, signal.SIGKILL)
        return True


@pytest.mark.parametrize("algo_class, kwargs", [(DPPO, dict(n_steps=64, batch_size=64, n_epochs=1)),
                                                (A3C, dict(n_steps=5))])
def test_a_worker_killed_mid_run_is_replaced_and_its_lost_steps_are_logged(algo_class, kwargs, ray_cluster,
                                                                           tmp_path):
    # Built in Python, without rlhub train: the workers remake the env from its gymnasium spec.
    model = algo_class("MlpPolicy", "CartPole-v1", n_workers=2, envs_per_worker=2, ray_address=ray_cluster, seed=0,
                       device="cpu", tensorboard_log=str(tmp_path), **kwargs)
    kill = KillWorker(at_step=1500)
    model.learn(4000, callback=kill)
    assert kill.killed_pid is not None and model.num_timesteps >= 4000
    run_dir = tmp_path
    events = EventAccumulator(str(next(run_dir.rglob("events.out.tfevents.*")).parent))
    events.Reload()
    assert events.Scalars("workers/restarts")[-1].value == 1
    assert events.Scalars("workers/lost_steps")[-1].value == kwargs["n_steps"] * 2  # its 2 envs' rollout
    assert model.workers is None  # stopped with learn()
    with pytest.raises(ProcessLookupError):
        os.kill(kill.killed_pid, 0)


def test_a_killed_run_resumes_from_its_last_checkpoint(ray_cluster, tmp_path):
    run("train", "--algo", "dppo", "--env", "CartPole-v1", "-n", 512, "--save-freq", 256, "-f", tmp_path,
        "--ray-address", ray_cluster, "--eval-freq", -1, "-params", "n_epochs:1", "-q")
    parent = tmp_path / "dppo" / "CartPole-v1_1"
    (parent / "CartPole-v1.zip").unlink()
    (parent / "rl_model_512_steps.zip").unlink()  # as if killed after the checkpoint at 256 steps
    run("train", "--resume", parent, "-f", tmp_path, "--ray-address", ray_cluster, "--eval-freq", -1, "-q")
    resumed = load_agent(tmp_path / "dppo" / "CartPole-v1_2", device="cpu")
    assert resumed.model.num_timesteps == 512
    resumed.env.close()


def test_more_workers_than_the_cluster_has_cpus_is_a_clear_error(ray_cluster, tmp_path):
    output = run("train", "--algo", "a3c", "--env", "CartPole-v1", "-f", tmp_path, "--ray-address", ray_cluster,
                 "--n-workers", 3, "-params", "envs_per_worker:1", "-q", expect=2)
    assert f"has {CLUSTER_CPUS} CPUs and each of the 3 workers needs one" in output and "Traceback" not in output


def test_a_local_run_refuses_more_workers_than_the_machine_can_hold(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    output = run("train", "--algo", "dppo", "--env", "CartPole-v1", "-f", tmp_path, "--n-workers", 10**6, "-q", expect=2)
    assert "1000000 workers on a machine of" in output and "--ray-address" in output


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'rlhub\[ray\]'"):
        import_ray()


def test_normalize_is_refused_with_the_reason():
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    with pytest.raises(ValueError, match="each worker would keep statistics of its own"):
        DPPO("MlpPolicy", VecNormalize(make_vec_env("CartPole-v1")), device="cpu")


def test_worker_envs_are_the_learners_envs_remade_from_the_run_config(tmp_path):
    import pickle

    from rlhub.experiment import EnvFactory, TrainOptions, prepare

    options = TrainOptions(algo_id="dppo", env_id="CartPole-v1", env_kwargs={"max_episode_steps": 7})
    _, config, _ = prepare(options)
    factory = pickle.loads(pickle.dumps(EnvFactory(config, options, tmp_path)))  # as Ray ships it
    env = factory(2, seed=0, start_index=3)
    env.reset()
    for _ in range(7):
        env.step(np.zeros(2, dtype=int))
    env.close()
    assert sorted(path.name for path in tmp_path.glob("*.monitor.csv")) == ["3.monitor.csv", "4.monitor.csv"]
    assert all(len((tmp_path / name).read_text().splitlines()) == 3 for name in ("3.monitor.csv", "4.monitor.csv"))


def test_averaged_gradients_leave_every_worker_with_the_same_new_weights(ray_cluster):
    from rlhub_distributed.dppo.gradient_averaging import averaged_iteration

    model = DPPO("MlpPolicy", "CartPole-v1", n_workers=2, envs_per_worker=2, n_steps=32, batch_size=32, n_epochs=2,
                 average_gradients=True, ray_address=ray_cluster, seed=0, device="cpu")
    weights = {name: tensor.detach().clone() for name, tensor in model.policy.state_dict().items()}
    settings = dict(learning_rate=1e-3, batch_size=32, n_epochs=2, gamma=0.99, gae_lambda=0.95,
                    clip_range=model.clip_range, ent_coef=0.0)
    with model.running_workers() as workers:
        updates = averaged_iteration(workers, {"policy": weights, "optimizer": model.policy.optimizer.state_dict()},
                                     32, settings, 1.0)
    first, second = (update.weights for update in updates)
    assert not np.array_equal(updates[0].rollout.observations, updates[1].rollout.observations)  # their own data
    for name, tensor in weights.items():
        assert th.equal(first[name], second[name]), f"{name}: the workers' weights differ"
    assert any(not th.equal(first[name], tensor) for name, tensor in weights.items()), "nothing was learned"
    assert updates[0].logs["train/n_updates"] == updates[1].logs["train/n_updates"] == 2  # SB3 counts epochs


def test_a_worker_killed_while_averaging_is_replaced_and_the_iteration_runs_again(ray_cluster, tmp_path, monkeypatch):
    import rlhub_distributed.dppo.gradient_averaging as averaging

    monkeypatch.setattr(averaging, "BARRIER_TIMEOUT", 3.0)  # the survivor stops waiting for the dead one sooner
    model = DPPO("MlpPolicy", "CartPole-v1", n_workers=2, envs_per_worker=2, n_steps=64, batch_size=64, n_epochs=1,
                 average_gradients=True, ray_address=ray_cluster, seed=0, device="cpu", tensorboard_log=str(tmp_path))
    kill = KillWorker(at_step=600)
    model.learn(1500, callback=kill)
    assert kill.killed_pid is not None and model.num_timesteps >= 1500
    events = EventAccumulator(str(next(tmp_path.rglob("events.out.tfevents.*")).parent))
    events.Reload()
    assert events.Scalars("workers/restarts")[-1].value == 1
    assert events.Scalars("workers/lost_steps")[-1].value == 64 * 2


def test_averaged_gradients_refuse_target_kl():
    with pytest.raises(ValueError, match="target_kl"):
        DPPO("MlpPolicy", "CartPole-v1", average_gradients=True, target_kl=0.01, device="cpu")
