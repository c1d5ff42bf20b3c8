"""``rlhub tune``: studies, their storages, what they write, pruning, failures and Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import postgres_server
import pytest
import yaml
from click.testing import CliRunner
from optuna.trial import TrialState

from rlhub import registry
from rlhub.cli import main
from rlhub.config import load_zoo_config
from rlhub.experiment import TrainOptions
from rlhub.tuning import report
from rlhub.tuning.objective import ERROR_ATTR, HYPERPARAMS_ATTR, RUN_DIR_ATTR, WORKER_ATTR
from rlhub.tuning.study import TuneOptions, open_storage, tune


def small_space(trial: optuna.Trial) -> dict:
    """A2C on a few small rollouts: a trial takes about a second."""
    return {"n_steps": trial.suggest_categorical("n_steps", [5, 8, 16]),
            "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True)}


@pytest.fixture
def quick_sampler(monkeypatch):
    """A2C's search space, made small so the tests' trials are short."""
    sampler = small_space
    monkeypatch.setattr(registry, "hyperparameter_sampler", lambda algo_id: sampler)
    return sampler


def a2c_options(tmp_path, **train):
    return TrainOptions(**{"algo_id": "a2c", "env_id": "CartPole-v1", "n_timesteps": 1000, "n_envs": 2,
                           "log_folder": tmp_path, "eval_episodes": 2, **train})


def test_a_study_writes_its_report_and_the_same_command_resumes_it(tmp_path, quick_sampler):
    options = TuneOptions(a2c_options(tmp_path, seed=3), n_trials=3, sampler="random", n_evaluations=2)
    result = tune(options)
    study_dir = tmp_path / "tune" / "a2c_CartPole-v1"
    assert result.study_dir == study_dir and (study_dir / "study.db").is_file()
    assert [trial.state for trial in result.study.trials] == [TrialState.COMPLETE] * 3  # the pruner waits 10 trials

    written = report.write_report(result.study, study_dir, options.train)
    assert {path.name for path in written} == {"trials.csv", "best.yml", "optimization_history.png",
                                              "param_importances.png"}
    for plot in ("optimization_history.png", "param_importances.png"):
        assert (study_dir / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # best.yml is the best trial's config, ready for `rlhub train -conf`
    best = result.study.best_trial
    config = load_zoo_config("a2c", "CartPole-v1", registry.get_algorithm("a2c").load(),
                             conf_file=study_dir / "best.yml")
    assert config.raw["n_steps"] == best.params["n_steps"] == best.user_attrs[HYPERPARAMS_ATTR]["n_steps"]
    assert config.raw["learning_rate"] == pytest.approx(best.params["learning_rate"])
    assert config.n_timesteps == 1000 and config.n_envs == 2
    # each trial trained in a run folder of its own, with seed + trial number
    for trial in result.study.trials:
        manifest = json.loads((Path(trial.user_attrs[RUN_DIR_ATTR]) / "rlhub.json").read_text())
        assert manifest["seed"] == 3 + trial.number

    assert f"-conf {study_dir / 'best.yml'} --seed {3 + best.number}" in (study_dir / "best.yml").read_text()

    again = tune(options)  # the same options: the same study, three trials more
    assert [trial.number for trial in again.study.trials] == list(range(6))
    with pytest.raises(Exception, match="tunes --algo a2c --env CartPole-v1 with -n 1000"):
        tune(TuneOptions(a2c_options(tmp_path, n_timesteps=2000), n_trials=1))


def test_a_study_another_worker_is_still_recording_is_joined_not_refused(tmp_path):
    from rlhub.tuning.study import _check_identity

    # the moment another worker has written one of the study's identity keys, not yet the others
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="racing")
    study.set_user_attr("env", "CartPole-v1")
    options = a2c_options(tmp_path)
    _check_identity(study, "a2c", options, "sqlite:///study.db")
    assert study.user_attrs == {"algo": "a2c", "env": "CartPole-v1", "n_timesteps": options.n_timesteps}
    study.set_user_attr("env", "Pendulum-v1")  # a finished record of another tuning: refused, naming it
    with pytest.raises(Exception, match="tunes --algo a2c --env Pendulum-v1"):
        _check_identity(study, "a2c", options, "sqlite:///study.db")


def test_trials_run_in_parallel_threads_with_n_jobs(tmp_path, quick_sampler):
    result = tune(TuneOptions(a2c_options(tmp_path), n_trials=4, n_jobs=2, sampler="random", n_evaluations=1))
    assert sorted(trial.number for trial in result.study.trials) == [0, 1, 2, 3]
    assert all(trial.state == TrialState.COMPLETE for trial in result.study.trials)
    assert len({trial.user_attrs[RUN_DIR_ATTR] for trial in result.study.trials}) == 4


def test_max_total_trials_bounds_the_whole_study(tmp_path, quick_sampler):
    options = TuneOptions(a2c_options(tmp_path), n_trials=10, max_total_trials=3, sampler="random", n_evaluations=1)
    assert len(tune(options).study.trials) == 3
    assert len(tune(options).study.trials) == 3  # the study has its trials: the same command runs none


def test_the_table_lists_the_best_trials_first(tmp_path, quick_sampler):
    from rich.console import Console

    result = tune(TuneOptions(a2c_options(tmp_path), n_trials=3, sampler="random", n_evaluations=1))
    console = Console(width=200, record=True)
    console.print(report.top_trials_table(result.study))
    rows = [line for line in console.export_text().splitlines() if line.startswith("│")]
    values = [float(row.split("│")[2]) for row in rows]
    assert len(values) == 3 and values == sorted(values, reverse=True)


def test_the_evaluation_listener_runs_beside_a_return_threshold(tmp_path):
    """TrainOptions.on_evaluation sees each evaluation; with stop_at_return both are asked, and either stops."""
    from rlhub.experiment import train

    seen = []
    result = train(a2c_options(tmp_path, n_timesteps=4000, eval_freq=500, stop_at_return=0.0, verbose=0,
                               on_evaluation=lambda *evaluation: seen.append(evaluation) or True))
    assert [(index, steps) for index, steps, _ in seen] == [(0, 500)]  # any return passes 0: the threshold stops it
    assert result.timesteps < 4000 and seen[0][2] > 0

    seen.clear()
    result = train(a2c_options(tmp_path, n_timesteps=4000, eval_freq=500, verbose=0,
                               on_evaluation=lambda *evaluation: seen.append(evaluation) or len(seen) < 3))
    assert [index for index, _, _ in seen] == [0, 1, 2] and result.timesteps < 4000  # the listener stops it


def test_a_crashing_trial_is_recorded_as_failed_and_the_study_goes_on(tmp_path, monkeypatch):
    def sometimes_broken(trial: optuna.Trial) -> dict:
        # with n_steps 0, A2C's rollout collection crashes
        return {"n_steps": 0 if trial.number == 1 else 8}

    monkeypatch.setattr(registry, "hyperparameter_sampler", lambda algo_id: sometimes_broken)
    result = tune(TuneOptions(a2c_options(tmp_path), n_trials=3, n_evaluations=1))
    states = [trial.state for trial in result.study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert result.study.trials[1].user_attrs[ERROR_ATTR].startswith("UnboundLocalError")


def test_trials_that_fall_behind_are_pruned(tmp_path, monkeypatch):
    def good_or_hopeless(trial: optuna.Trial) -> dict:
        # a learning rate of zero never learns: the median pruner stops it after its first third
        return {"n_steps": 8, "learning_rate": trial.suggest_categorical("learning_rate", [0.0, 0.003])}

    monkeypatch.setattr(registry, "hyperparameter_sampler", lambda algo_id: good_or_hopeless)
    study_storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="pruning", storage=study_storage, direction="maximize")
    for learning_rate in (0.003, 0.003, 0.0, 0.0):
        study.enqueue_trial({"learning_rate": learning_rate})
    result = tune(TuneOptions(a2c_options(tmp_path, n_timesteps=4000, seed=0), n_trials=4, storage=study_storage,
                              study_name="pruning", n_startup_trials=2, n_evaluations=6))
    by_rate = {trial.number: (trial.params["learning_rate"], trial.state) for trial in result.study.trials}
    assert [state for rate, state in by_rate.values() if rate == 0.0] == [TrialState.PRUNED] * 2, by_rate
    pruned = [trial for trial in result.study.trials if trial.state == TrialState.PRUNED]
    assert all(len(trial.intermediate_values) < 6 for trial in pruned)  # stopped before the budget's end


def test_an_algorithm_without_a_search_space_is_refused_naming_the_hook(tmp_path):
    result = CliRunner().invoke(main, ["tune", "--algo", "crossq", "--env", "Pendulum-v1", "-f", tmp_path])
    assert result.exit_code == 2
    assert "rlhub_hyperparameter_samplers()" in result.output and "ppo" in result.output
    assert not (tmp_path / "tune").exists()


def test_a_bad_storage_is_a_clear_error():
    with pytest.raises(Exception, match="neither a database URL"):
        open_storage("somewhere")
    with pytest.raises(Exception, match="cannot open the study storage"):
        open_storage("sqlite:////nonexistent-folder/for/sure/study.db")


def test_a_plugin_algorithm_tunes_through_the_hook(tmp_path):
    """ACER's search space comes from its plugin's rlhub_hyperparameter_samplers()."""
    assert registry.hyperparameter_samplers()["acer"] == "rlhub_policy_gradient.samplers:sample_acer"
    result = CliRunner().invoke(main, ["tune", "--algo", "acer", "--env", "CartPole-v1", "-n", 600, "--n-envs", 2,
                                       "--n-trials", 2, "--n-evaluations", 1, "--eval-episodes", 1, "-f", tmp_path])
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="acer_CartPole-v1",
                              storage=f"sqlite:///{tmp_path / 'tune' / 'acer_CartPole-v1' / 'study.db'}")
    assert [trial.state for trial in study.trials] == [TrialState.COMPLETE] * 2
    assert {"replay_ratio", "delta", "n_steps"} <= set(study.trials[0].params)
    config = yaml.safe_load((tmp_path / "tune" / "acer_CartPole-v1" / "best.yml").read_text())
    assert config["CartPole-v1"]["replay_ratio"] == study.best_trial.params["replay_ratio"]
    assert "Top 2 trials" in result.output and "optuna-dashboard sqlite:///" in result.output


@pytest.mark.parametrize("algo_id", ["a2c", "ppo", "dqn", "qrdqn", "sac", "td3", "ddpg", "tqc", "trpo", "ars",
                                     "ppo_lstm", "reinforce"])
def test_every_search_space_gives_a_config_the_algorithm_accepts(algo_id):
    """Each sampler's values go through the zoo config loader and build the algorithm."""
    import gymnasium as gym

    from rlhub.config import make_action_noise
    from rlhub.experiment import validate_options

    env_id = "Pendulum-v1" if algo_id in ("sac", "td3", "ddpg", "tqc") else "CartPole-v1"
    sampler = registry.hyperparameter_sampler(algo_id)
    for seed in range(3):
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()
        _, config, algo_class = validate_options(TrainOptions(algo_id=algo_id, env_id=env_id,
                                                              hyperparams=sampler(trial)))
        env = gym.make(env_id)
        hyperparams = dict(config.hyperparams)
        if config.noise is not None:
            hyperparams["action_noise"] = make_action_noise(config.noise, env.action_space)
        hyperparams.pop("buffer_size", None)  # a million-transition buffer is not what this checks
        algo_class(config.policy, env, **hyperparams)


def test_the_dashboard_reads_the_study(tmp_path, quick_sampler):
    """optuna-dashboard serves the study from its storage (through its WSGI app, as `optuna-dashboard URL` does)."""
    import io

    from optuna_dashboard import wsgi

    result = tune(TuneOptions(a2c_options(tmp_path), n_trials=2, n_evaluations=1))
    app = wsgi(result.storage_url)

    def get(path: str) -> dict:
        statuses = []
        body = app({"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "wsgi.input": io.BytesIO(),
                    "SERVER_NAME": "localhost", "SERVER_PORT": "80", "wsgi.url_scheme": "http"},
                   lambda status, headers, exc_info=None: statuses.append(status))
        assert statuses == ["200 OK"]
        return json.loads(b"".join(body))

    [summary] = get("/api/studies")["study_summaries"]
    assert summary["study_name"] == "a2c_CartPole-v1"
    trials = get(f"/api/studies/{summary['study_id']}")["trials"]
    assert [trial["state"] for trial in trials] == ["Complete", "Complete"]


def rlhub_tune(*args, cwd):
    return subprocess.Popen([sys.executable, "-m", "rlhub.cli", "tune", *map(str, args)], cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


WORKER_ARGS = ("--algo", "a2c", "--env", "CartPole-v1", "-n", 800, "--n-envs", 2, "--n-trials", 3, "--n-evaluations",
               1, "--eval-episodes", 1, "--sampler", "random", "-params", "n_steps:8")


def check_shared_study(storage: str, name: str, tmp_path: Path) -> None:
    """Two processes on one storage: six trials between them, each once, none left running."""
    workers = [rlhub_tune(*WORKER_ARGS, "--storage", storage, "--study-name", name, "-f", tmp_path / f"worker{index}",
                          cwd=tmp_path) for index in range(2)]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    study = optuna.load_study(study_name=name, storage=open_storage(storage))
    assert sorted(trial.number for trial in study.trials) == list(range(6))
    assert all(trial.state in (TrialState.COMPLETE, TrialState.PRUNED) for trial in study.trials)  # none failed or running
    assert len({trial.user_attrs[WORKER_ATTR] for trial in study.trials}) == 2  # both worked on it
    run_dirs = [trial.user_attrs[RUN_DIR_ATTR] for trial in study.trials]
    assert len(set(run_dirs)) == 6 and all(Path(run_dir, "CartPole-v1.zip").is_file() for run_dir in run_dirs)


def test_two_workers_share_one_sqlite_study(tmp_path):
    check_shared_study(f"sqlite:///{tmp_path / 'shared.db'}", "shared", tmp_path)


def test_a_journal_file_holds_a_study(tmp_path, quick_sampler):
    """Optuna's journal storage (workers on many machines sharing one file), resumed by a second run."""
    options = TuneOptions(a2c_options(tmp_path), n_trials=2, n_evaluations=1, storage=f"journal:{tmp_path / 'study.log'}")
    tune(options)
    study = tune(options).study
    assert [trial.number for trial in study.trials] == [0, 1, 2, 3]
    assert all(trial.state == TrialState.COMPLETE for trial in study.trials)


@pytest.fixture(scope="session")
def postgres_url():
    try:
        with postgres_server.start() as url:
            yield url
    except postgres_server.ServerUnavailable as reason:
        pytest.skip(f"no PostgreSQL server: {reason}")


def test_two_workers_share_one_postgresql_study(tmp_path, postgres_url):
    check_shared_study(postgres_url, "shared", tmp_path)


def test_ctrl_c_finishes_the_current_trial_and_keeps_the_study(tmp_path):
    def args(n_trials):
        return ("--algo", "a2c", "--env", "CartPole-v1", "-n", 2000, "--n-envs", 2, "--n-trials", n_trials,
                "--n-evaluations", 2, "--sampler", "random", "-params", "n_steps:8", "-f", tmp_path)

    process = rlhub_tune(*args(5), cwd=tmp_path)
    first_trial = tmp_path / "tune" / "a2c_CartPole-v1" / "a2c" / "CartPole-v1_1"
    deadline = time.monotonic() + 120
    while not first_trial.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output
    assert "Stopping after the current trial" in output and "the same command resumes it" in output
    storage = f"sqlite:///{tmp_path / 'tune' / 'a2c_CartPole-v1' / 'study.db'}"
    study = optuna.load_study(study_name="a2c_CartPole-v1", storage=storage)
    assert [trial.state for trial in study.trials] == [TrialState.COMPLETE]  # finished, and no trial after it
    assert (tmp_path / "tune" / "a2c_CartPole-v1" / "best.yml").is_file()

    resumed = rlhub_tune(*args(1), cwd=tmp_path)
    output = resumed.communicate(timeout=120)[0]
    assert resumed.returncode == 0, output
    assert len(optuna.load_study(study_name="a2c_CartPole-v1", storage=storage).trials) == 2


def test_a_second_ctrl_c_stops_the_trial_now_and_records_it_failed(tmp_path):
    process = rlhub_tune("--algo", "a2c", "--env", "CartPole-v1", "-n", 200_000, "--n-trials", 2, "-f", tmp_path,
                         cwd=tmp_path)
    first_trial = tmp_path / "tune" / "a2c_CartPole-v1" / "a2c" / "CartPole-v1_1"
    deadline = time.monotonic() + 120
    while not (first_trial / "config.yml").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output
    study = optuna.load_study(study_name="a2c_CartPole-v1",
                              storage=f"sqlite:///{tmp_path / 'tune' / 'a2c_CartPole-v1' / 'study.db'}")
    assert [trial.state for trial in study.trials] == [TrialState.FAIL]
    assert study.trials[0].user_attrs[ERROR_ATTR] == "interrupted (Ctrl-C)"
    assert (first_trial / "CartPole-v1.zip").is_file()  # what it learned is saved, as with rlhub train
