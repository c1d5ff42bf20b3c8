"""rlhub collect, rlhub.datasets and training offline algorithms on a dataset (issue 13)."""

import json
import sys
import types

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from click.testing import CliRunner
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from rlhub import datasets
from rlhub.cli import main
from rlhub.datasets import DatasetError, load_dataset


def run(*args, expect=0):
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    assert result.exit_code == expect, f"rlhub {' '.join(map(str, args))} exited {result.exit_code}:\n{result.output}"
    return result.output


@pytest.fixture
def minari_root(tmp_path, monkeypatch):
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


@pytest.fixture
def random_cartpole(minari_root):
    run("collect", "--algo", "random", "--env", "CartPole-v1", "--n-steps", 600, "--dataset-id",
        "test/CartPole-v1/random-v0")
    return "test/CartPole-v1/random-v0"


def test_random_collect_round_trip(random_cartpole, minari_root):
    import minari

    assert (minari_root / random_cartpole / "data" / "metadata.json").is_file()  # MINARI_DATASETS_PATH honoured
    data = load_dataset(random_cartpole)
    assert data.n_transitions == 600 and data.observations.shape == (600, 4) and data.actions.dtype == np.int64
    assert data.observations.dtype == np.float32 and data.rewards.dtype == np.float32
    assert data.env_spec_id == "CartPole-v1" and len(data.content_hash) == 64
    # terminations and truncations apart: random CartPole falls (terminates); the step budget truncates the last
    assert data.terminations.sum() == data.n_episodes - 1 and data.truncations[-1] and data.truncations.sum() == 1
    np.testing.assert_array_equal(data.observations[1:5], data.next_observations[:4])
    assert np.isclose(data.episode_returns().sum(), data.rewards.sum())
    batch = data.sample(32, np.random.default_rng(0))
    assert set(batch) == set(datasets.TRANSITION_FIELDS) and batch["observations"].shape == (32, 4)

    dataset = minari.load_dataset(random_cartpole)
    assert dataset.total_steps == 600 and dataset.total_episodes == data.n_episodes
    episodes = list(dataset.iterate_episodes())  # Minari reads what rlhub wrote, as rlhub does
    np.testing.assert_array_equal(np.concatenate([episode.observations[:-1] for episode in episodes]),
                                  data.observations)
    np.testing.assert_array_equal(np.concatenate([episode.truncations for episode in episodes]), data.truncations)
    assert [episode.id for episode in episodes] == list(range(data.n_episodes))
    metadata = list(dataset.storage.get_episode_metadata(range(2)))
    assert metadata[0]["total_steps"] == data.episode_lengths()[0] and "seed" in metadata[0]
    env = dataset.recover_environment()
    assert env.spec.id == "CartPole-v1"
    env.close()
    assert load_dataset(minari_root / random_cartpole).content_hash == data.content_hash  # by path too


def test_collect_prints_a_summary_and_refuses_an_existing_id(random_cartpole):
    output = run("collect", "--algo", "random", "--env", "CartPole-v1", "--n-episodes", 3, "--dataset-id",
                 "test/CartPole-v1/random-v1")
    assert "in 3 episodes" in output and "mean return" in output and "written to" in output
    output = run("collect", "--algo", "random", "--env", "CartPole-v1", "--n-steps", 10, "--dataset-id",
                 random_cartpole, expect=2)
    assert "exists already" in output and "-v1" in output


def test_collect_plays_a_trained_agent_with_epsilon(ppo_cartpole_run, minari_root):
    run("collect", "--algo", "ppo", "-f", ppo_cartpole_run, "--n-steps", 300, "--dataset-id", "test/CartPole-v1/ppo-v0")
    run("collect", "--algo", "ppo", "-f", ppo_cartpole_run, "--n-steps", 300, "--epsilon", 1.0, "--dataset-id",
        "test/CartPole-v1/ppo-eps1-v0")
    greedy, random = load_dataset("test/CartPole-v1/ppo-v0"), load_dataset("test/CartPole-v1/ppo-eps1-v0")
    assert "ppo" in greedy.metadata["algorithm_name"]
    from rlhub.run_folder import load_agent

    agent = load_agent(ppo_cartpole_run, device="cpu")
    predicted, _ = agent.model.predict(greedy.observations, deterministic=True)
    agent.env.close()
    assert np.array_equal(predicted, greedy.actions)  # the deterministic agent's own actions
    predicted, _ = agent.model.predict(random.observations, deterministic=True)
    assert 0.3 < np.mean(predicted != random.actions) < 0.7  # epsilon 1: uniformly random


def test_collect_plays_an_agent_from_the_hub(ppo_cartpole_run, hub_server, minari_root):
    from rlhub import hub
    from rlhub.run_folder import load_agent

    hub.push(ppo_cartpole_run, "alice/ppo-CartPole-v1", n_eval_episodes=1, video_length=0, device="cpu")
    output = run("collect", "--algo", "ppo", "--repo-id", "alice/ppo-CartPole-v1", "--n-episodes", 2, "--dataset-id",
                 "test/CartPole-v1/hub-ppo-v0")
    data = load_dataset("test/CartPole-v1/hub-ppo-v0")
    assert data.n_episodes == 2 and "2 episodes" in output
    agent = load_agent(ppo_cartpole_run, device="cpu")
    predicted, _ = agent.model.predict(data.observations, deterministic=True)
    agent.env.close()
    assert np.array_equal(predicted, data.actions)  # the downloaded agent plays as the original
    output = run("collect", "--algo", "ppo", "--repo-id", "alice/no-such-repo", "--n-steps", 10, "--dataset-id",
                 "test/CartPole-v1/none-v0", expect=2)
    assert "alice/no-such-repo" in output and "Traceback" not in output


def test_action_noise_is_scaled_and_clipped(minari_root):
    space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    centred = datasets.perturbed(lambda observation: np.zeros(1, np.float32), space, np.random.default_rng(0),
                                 action_noise=0.3)
    assert 0.55 < np.std([centred(None) for _ in range(2000)]) < 0.65  # 0.3 of the half range (2)
    near_bound = datasets.perturbed(lambda observation: np.array([1.9], np.float32), space, np.random.default_rng(0),
                                    action_noise=0.3)
    actions = np.array([near_bound(None) for _ in range(2000)])
    assert actions.max() == 2.0 and np.mean(actions == 2.0) > 0.3  # clipped to the bound
    with pytest.raises(DatasetError, match="--epsilon needs a Discrete"):
        datasets.perturbed(lambda observation: 0, space, np.random.default_rng(0), epsilon=0.1)
    run("collect", "--algo", "random", "--env", "Pendulum-v1", "--n-steps", 50, "--action-noise", 0.5,
        "--dataset-id", "test/Pendulum-v1/random-v0")
    data = load_dataset("test/Pendulum-v1/random-v0")
    assert data.actions.shape == (50, 1) and data.actions.dtype == np.float32
    assert np.all(np.abs(data.actions) <= 2.0) and data.truncations[-1] and not data.terminations.any()


def test_unknown_dataset_lists_the_nearest(random_cartpole):
    with pytest.raises(DatasetError, match="Did you mean test/CartPole-v1/random-v0"):
        load_dataset("test/CartPole-v1/randm-v0")


def test_a_folder_that_is_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="not a Minari dataset"):
        load_dataset(tmp_path)


def test_empty_and_truncated_datasets(random_cartpole, minari_root):
    import shutil

    folder = minari_root / random_cartpole / "data"
    metadata = json.loads((folder / "metadata.json").read_text())
    empty = minari_root / "empty" / "data"
    empty.mkdir(parents=True)
    (empty / "metadata.json").write_text(json.dumps({**metadata, "total_episodes": 0, "total_steps": 0}))
    with pytest.raises(DatasetError, match="empty"):
        load_dataset(minari_root / "empty")
    truncated = minari_root / "truncated" / "data"
    shutil.copytree(folder, truncated)
    data_file = truncated / "main_data.hdf5"
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])
    with pytest.raises(DatasetError, match="truncated or damaged"):
        load_dataset(truncated)


def test_a_dataset_over_the_memory_cap_is_refused_before_reading(random_cartpole, monkeypatch):
    from rlhub.safe_loading import ResourceLimitError

    monkeypatch.setenv("RLHUB_SAFE_MAX_DATASET_MB", "0.001")
    with pytest.raises(ResourceLimitError, match="RLHUB_SAFE_MAX_DATASET_MB"):
        load_dataset(random_cartpole)
    monkeypatch.delenv("RLHUB_SAFE_MAX_DATASET_MB")
    assert load_dataset(random_cartpole).n_transitions == 600


def test_dataset_with_an_online_algorithm_is_refused(random_cartpole, tmp_path):
    logs = tmp_path / "logs"
    output = run("train", "--algo", "ppo", "--env", "CartPole-v1", "--dataset", random_cartpole, "-f", logs, expect=2)
    assert "--dataset is for offline and imitation algorithms" in output and "ppo is on-policy" in output
    assert not logs.exists()


# --- a minimal offline algorithm, until the offline plugin lands --------------------------------------------------


class TinyPolicy(BasePolicy):
    def __init__(self, observation_space, action_space, lr_schedule=None, **kwargs):
        super().__init__(observation_space, action_space, **kwargs)
        self.logits = th.nn.Linear(int(np.prod(observation_space.shape)), int(action_space.n))

    def _predict(self, observation, deterministic=False):
        return self.logits(observation.float()).argmax(dim=1)


class TinyBC(BaseAlgorithm):
    """Behaviour cloning in a few lines: a linear classifier of the dataset's actions."""

    policy_aliases = {"MlpPolicy": TinyPolicy}

    def __init__(self, policy, env, dataset=None, learning_rate=0.01, batch_size=32, tensorboard_log=None,
                 verbose=0, seed=None, device="auto", _init_setup_model=True):
        super().__init__(policy, env, learning_rate, tensorboard_log=tensorboard_log, verbose=verbose, device=device,
                         seed=seed, supported_action_spaces=(gym.spaces.Discrete,))
        self.dataset = load_dataset(dataset) if isinstance(dataset, str) else dataset
        self.batch_size = batch_size
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self):
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(self.observation_space, self.action_space).to(self.device)
        self.optimizer = th.optim.Adam(self.policy.parameters(), lr=self.lr_schedule(1))

    def learn(self, total_timesteps, callback=None, log_interval=100, tb_log_name="tinybc",
              reset_num_timesteps=True, progress_bar=False):
        total_timesteps, callback = self._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name,
                                                      progress_bar)
        callback.on_training_start(locals(), globals())
        rng = np.random.default_rng(self.seed)
        while self.num_timesteps < total_timesteps:
            batch = self.dataset.sample(self.batch_size, rng)
            logits = self.policy.logits(th.as_tensor(batch["observations"], device=self.device))
            loss = th.nn.functional.cross_entropy(logits, th.as_tensor(batch["actions"], device=self.device))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.num_timesteps += 1
            self.logger.record("train/loss", loss.item())
            if not callback.on_step():
                break
        self.logger.dump(self.num_timesteps)
        callback.on_training_end()
        return self

    def _excluded_save_params(self):
        return [*super()._excluded_save_params(), "dataset"]

    def _get_torch_save_params(self):
        return ["policy", "optimizer"], []


@pytest.fixture
def tiny_bc(tmp_path, monkeypatch):
    from importlib.metadata import EntryPoint

    from rlhub import plugins, registry
    from rlhub.hookspecs import hookimpl
    from rlhub.spec import AlgorithmSpec

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "tiny_bc.yml").write_text("default:\n  n_timesteps: 200\n  policy: MlpPolicy\n")
    module = types.ModuleType("rlhub_test_offline")
    module.TinyBC = TinyBC
    module.rlhub_algorithms = hookimpl(lambda: [AlgorithmSpec("tiny_bc", f"{__name__}:TinyBC", ("Discrete",),
                                                              kind="offline")])
    module.rlhub_zoo_config_dirs = hookimpl(lambda: [configs])
    sys.modules[module.__name__] = module
    monkeypatch.setattr(plugins, "entry_points",
                        lambda group: [EntryPoint("offline", module.__name__, plugins.ENTRY_POINT_GROUP)])
    registry.reset()
    try:
        yield "tiny_bc"
    finally:
        sys.modules.pop(module.__name__, None)
        monkeypatch.undo()
        registry.reset()


def test_train_an_offline_algorithm_on_a_dataset(tiny_bc, random_cartpole, tmp_path):
    from rlhub.run_folder import Manifest, load_agent

    output = run("train", "--algo", tiny_bc, "--env", "CartPole-v1", "--dataset", random_cartpole, "-f",
                 tmp_path / "logs", "--eval-freq", 100, "--eval-episodes", 1, "-q")
    assert "Trained 200 steps" in output
    run_dir = tmp_path / "logs" / "tiny_bc" / "CartPole-v1_1"
    manifest = Manifest.read(run_dir)
    data = load_dataset(random_cartpole)
    assert manifest.dataset == {"id": random_cartpole, "n_transitions": 600, "n_episodes": data.n_episodes,
                                "sha256": data.content_hash, "mean_return": pytest.approx(data.episode_returns().mean())}
    # the model loads without its dataset, trusted and as a download
    for trust_remote_code in (None, False):
        agent = load_agent(run_dir, device="cpu", trust_remote_code=trust_remote_code)
        assert agent.model.dataset is None
        agent.env.close()
    run("enjoy", "-f", run_dir, "--no-render", "-n", 20)


def test_a_benchmark_row_shows_the_mean_return_of_its_data(random_cartpole, tmp_path):
    suite = tmp_path / "suite.yml"
    suite.write_text("rows:\n  - {algo: bc, env: CartPole-v1, timesteps: 100, eval_episodes: 2, "
                     f"hyperparams: {{dataset: {random_cartpole}}}}}\n  - {{algo: a2c, env: CartPole-v1, timesteps: 100, "
                     "eval_episodes: 2}\n")
    run("benchmark", suite, "-o", tmp_path / "out")
    lines = [line for line in (tmp_path / "out" / "results.md").read_text().splitlines() if line.startswith("| ")]
    header, offline, online = ([cell.strip() for cell in line.split("|")[1:-1]] for line in lines)
    column = header.index("data mean")
    assert offline[column] == f"{load_dataset(random_cartpole).episode_returns().mean():.1f}"
    assert online[column] == "-"


def test_an_offline_agent_continues_with_its_dataset(random_cartpole, tmp_path):
    logs = tmp_path / "logs"
    run("train", "--algo", "bc", "--env", "CartPole-v1", "--dataset", random_cartpole, "-n", 100, "-f", logs, "-q")
    output = run("train", "--algo", "bc", "--env", "CartPole-v1", "--dataset", random_cartpole, "-n", 100, "-f", logs,
                 "-q", "-i", logs / "bc" / "CartPole-v1_1" / "CartPole-v1.zip")
    assert "from step 100" in output and "Trained 100 steps" in output


def test_offline_algorithm_input_errors(tiny_bc, random_cartpole, tmp_path):
    logs = tmp_path / "logs"
    output = run("train", "--algo", tiny_bc, "--env", "CartPole-v1", "-f", logs, expect=2)
    assert "learns offline, from a dataset: give --dataset" in output
    output = run("train", "--algo", tiny_bc, "--env", "CartPole-v1", "--dataset", "test/CartPole-v1/randm-v0", "-f",
                 logs, expect=2)
    assert "Did you mean test/CartPole-v1/random-v0" in output
    output = run("train", "--algo", tiny_bc, "--env", "Acrobot-v1", "--dataset", random_cartpole, "-f", logs, expect=2)
    assert "does not fit Acrobot-v1" in output and "collected on CartPole-v1" in output
    assert not logs.exists() or not any(logs.rglob("rlhub.json"))


def test_the_conformance_suite_runs_offline_algorithms(tiny_bc, tmp_path, monkeypatch):
    from rlhub.testing import check_algorithm

    monkeypatch.delenv("MINARI_DATASETS_PATH", raising=False)
    check_algorithm(tiny_bc, tmp_path)
    assert (tmp_path / "minari" / "conformance" / "CartPole-v1" / "random-v0").is_dir()  # its own, under tmp_path


def test_collect_records_raw_observations_of_a_normalised_agent(tmp_path, minari_root):
    from rlhub.experiment import TrainOptions, train

    run_dir = train(TrainOptions("ppo", "CartPole-v1", n_timesteps=256, log_folder=tmp_path / "logs", seed=0,
                                 eval_freq=-1, verbose=0, device="cpu", hyperparams={"normalize": True})).run_dir
    output = run("collect", "--algo", "ppo", "--env", "CartPole-v1", "-f", tmp_path / "logs", "--n-steps", 200,
                 "--stochastic", "--dataset-id", "test/CartPole-v1/ppo-normalised-v0", "--progress")
    assert "200 transitions" in output
    data = load_dataset("test/CartPole-v1/ppo-normalised-v0")
    # the pole angle as the env reports it (|angle| < 0.21 rad until it falls), not normalised (std 1)
    assert np.abs(data.observations[:, 2]).max() < 0.25
    assert "stochastic" in data.metadata["algorithm_name"] and str(run_dir) in data.metadata["description"]


def test_discrete_observations(minari_root):
    run("collect", "--algo", "random", "--env", "FrozenLake-v1", "--n-episodes", 5, "--dataset-id",
        "test/FrozenLake-v1/random-v0")
    data = load_dataset("test/FrozenLake-v1/random-v0")
    assert data.observations.dtype == np.int64 and data.observations.shape == (data.n_transitions,)
    assert data.n_episodes == 5 and data.observation_space == gym.spaces.Discrete(16)
