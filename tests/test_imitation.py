"""The imitation family (rlhub_imitation): GAIL with any on-policy generator, learning from a
heuristic controller's demonstrations; the conformance suite; what TensorBoard gets."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from rlhub_imitation.gail import GAIL
from stable_baselines3.common.evaluation import evaluate_policy

from rlhub.datasets import OfflineData, play_to_memory


def cartpole_controller(observation: np.ndarray) -> int:
    """Push towards where the pole falls: 500 steps on CartPole-v1 mostly."""
    return int(observation[2] + observation[3] > 0)


@pytest.fixture(scope="module")
def demonstrations() -> OfflineData:
    """Ten episodes of the controller."""
    env = gym.make("CartPole-v1")
    data = play_to_memory(env, cartpole_controller, n_episodes=10, seed=0, dataset_id="test/CartPole-v1/heuristic-v0")
    env.close()
    return data


def true_return(model, n_episodes: int = 10) -> float:
    env = gym.make("CartPole-v1")
    env.reset(seed=123)
    mean, _ = evaluate_policy(model, env, n_eval_episodes=n_episodes, deterministic=True, warn=False)
    env.close()
    return float(mean)


GENERATOR = {"n_steps": 256, "batch_size": 64, "learning_rate": 4e-4, "gamma": 0.95, "n_epochs": 5, "ent_coef": 0.0}


def test_gail_imitates_the_controller_from_ten_episodes(demonstrations):
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = GAIL("MlpPolicy", env, dataset=demonstrations, generator="ppo", generator_kwargs=GENERATOR,
                 n_disc_updates=8, disc_batch_size=1024, disc_net_arch=[32, 32], seed=0, device="cpu")
    model.learn(40_000)
    assert true_return(model) >= 475


def test_gail_passes_the_conformance_suite(tmp_path, monkeypatch):
    from rlhub.testing import check_algorithm

    monkeypatch.delenv("MINARI_DATASETS_PATH", raising=False)
    check_algorithm("gail", tmp_path)


def test_tensorboard_gets_the_discriminator_and_both_returns(demonstrations, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = GAIL("MlpPolicy", "CartPole-v1", dataset=demonstrations, generator_kwargs={"n_steps": 256}, seed=0,
                 device="cpu", tensorboard_log=str(tmp_path))
    model.learn(1024)
    events = EventAccumulator(str(next(tmp_path.rglob("events.out.tfevents.*")).parent))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for tag in ("discriminator/loss", "discriminator/expert_accuracy", "discriminator/generator_accuracy",
                "discriminator/expert_d", "discriminator/generator_d", "imitation/learned_ep_return",
                "imitation/true_ep_return", "rollout/ep_rew_mean"):
        assert tag in tags, (tag, sorted(tags))
    accuracy = [event.value for event in events.Scalars("discriminator/expert_accuracy")]
    assert all(0.0 <= value <= 1.0 for value in accuracy)


@pytest.mark.parametrize("generator", ["a2c", "trpo", "reinforce", "acer"])
def test_any_on_policy_algorithm_can_generate(generator, demonstrations, tmp_path):
    model = GAIL("MlpPolicy", "CartPole-v1", dataset=demonstrations, generator=generator, seed=0, device="cpu")
    model.learn(300)
    assert type(model.generator).__name__.lower() == generator
    assert model.num_timesteps >= 300 and model._n_updates > 0  # the discriminator trained after rollouts
    model.save(tmp_path / "gail.zip")
    loaded = GAIL.load(tmp_path / "gail.zip", env=gym.make("CartPole-v1"), device="cpu")
    observations = demonstrations.observations[:50]
    assert np.array_equal(loaded.predict(observations, deterministic=True)[0],
                          model.predict(observations, deterministic=True)[0])
    for name, tensor in model.discriminator.state_dict().items():
        assert np.array_equal(loaded.discriminator.state_dict()[name].numpy(), tensor.numpy()), name


def test_a_loaded_imitator_continues_with_its_step_count(demonstrations, tmp_path):
    model = GAIL("MlpPolicy", "CartPole-v1", dataset=demonstrations, generator_kwargs={"n_steps": 64}, seed=0,
                 device="cpu")
    model.learn(128).save(tmp_path / "gail.zip")
    loaded = GAIL.load(tmp_path / "gail.zip", env=gym.make("CartPole-v1"), device="cpu", dataset=demonstrations)
    assert loaded.num_timesteps == 128
    loaded.learn(128, reset_num_timesteps=False)  # as `rlhub train -i`
    assert loaded.num_timesteps == 256 and loaded.generator.num_timesteps == 256


def test_generator_and_demonstrations_errors(demonstrations):
    with pytest.raises(ValueError, match="learn by playing its environment .*, and q_learning is tabular"):
        GAIL("MlpPolicy", "CartPole-v1", generator="q_learning")
    with pytest.raises(ValueError, match="observation space"):
        GAIL("MlpPolicy", "Pendulum-v1", dataset=demonstrations)
    with pytest.raises(ValueError, match="reward must be one of"):
        GAIL("MlpPolicy", "CartPole-v1", reward="D")
    with pytest.raises(ValueError, match="no demonstrations"):
        GAIL("MlpPolicy", "CartPole-v1").learn(100)


@pytest.mark.parametrize("bc_epochs", [0, 50])
def test_bc_epochs_start_the_generator_as_the_demonstrator(bc_epochs, demonstrations):
    model = GAIL("MlpPolicy", "CartPole-v1", dataset=demonstrations, bc_epochs=bc_epochs,
                 generator_kwargs={"n_steps": 64, "n_epochs": 1}, seed=0, device="cpu")
    model.learn(64)  # one rollout: too little for PPO alone to act as the demonstrator
    actions, _ = model.predict(demonstrations.observations, deterministic=True)
    agreement = np.mean(actions == demonstrations.actions)
    assert agreement >= 0.95 if bc_epochs else agreement < 0.9


@pytest.mark.parametrize("key, value, refusal", [("generator_kwargs", {"n_steps": 10**12}, "rollout buffer"),
                                                 ("disc_net_arch", [10**6, 10**6], "network larger than")])
def test_a_downloaded_imitator_cannot_size_its_networks_or_buffers(key, value, refusal, demonstrations, tmp_path):
    import json
    import zipfile

    from hostile_files import rewrite_zip

    from rlhub.safe_loading import ResourceLimitError, UnsafeAgentError, load_model

    model = GAIL("MlpPolicy", "CartPole-v1", dataset=demonstrations, generator_kwargs={"n_steps": 64}, seed=0,
                 device="cpu")
    path = tmp_path / "gail.zip"
    model.save(path)
    loaded = load_model(GAIL, path, model.get_env(), device="cpu")  # untrusted, as a download: it loads
    assert loaded.generator.n_steps == 64
    with zipfile.ZipFile(path) as archive:
        data = json.loads(archive.read("data"))
    data[key] = value
    rewrite_zip(path, data=json.dumps(data).encode())
    with pytest.raises((ResourceLimitError, UnsafeAgentError), match=refusal):
        load_model(GAIL, path, model.get_env(), device="cpu")


# --------------------------------------------------------------------------------------------
# AIRL and learned rewards


def test_airl_learns_cartpole_from_the_controller(demonstrations):
    from rlhub_imitation.airl import AIRL
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("CartPole-v1", n_envs=8, seed=1)
    model = AIRL("MlpPolicy", env, dataset=demonstrations, generator_kwargs=GENERATOR, n_disc_updates=8,
                 disc_batch_size=1024, disc_net_arch=[32, 32], reward="-log(1-D)", seed=1, device="cpu")
    before = true_return(model)
    model.learn(30_000)
    assert before < 20 and true_return(model) >= 300


def test_airl_passes_the_conformance_suite(tmp_path, monkeypatch):
    from rlhub.testing import check_algorithm

    monkeypatch.delenv("MINARI_DATASETS_PATH", raising=False)
    check_algorithm("airl", tmp_path)


def test_a_learned_reward_is_exported_and_trains_another_algorithm(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from rlhub.cli import main
    from rlhub.common.learned_reward import RewardModel

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))

    def run(*args):
        result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    run("collect", "--algo", "random", "--env", "CartPole-v1", "--n-steps", 500, "--dataset-id", "t/CartPole-v1/r-v0")
    output = run("train", "--algo", "airl", "--env", "CartPole-v1", "--dataset", "t/CartPole-v1/r-v0", "-n", 512,
                 "-f", tmp_path / "logs", "-params", "generator_kwargs:dict(n_steps=64)", "--eval-freq", -1, "-q")
    exported = tmp_path / "logs" / "airl" / "CartPole-v1_1" / "reward_model.pt"
    assert f"-params reward_model:{exported}" in output
    reward = RewardModel.load(exported)
    output = run("train", "--algo", "ppo", "--env", "CartPole-v1", "-n", 256, "-f", tmp_path / "logs",
                 "-params", f"reward_model:{exported}", "-params", "n_steps:64", "--eval-freq", -1, "-q")
    assert "Trained" in output and "Learned reward" not in output  # PPO learns on it, learns none
    assert f"reward_model: {exported}" in (tmp_path / "logs" / "ppo" / "CartPole-v1_1" / "config.yml").read_text()
    assert reward.inputs == "state_action" and reward.output == "-log(1-D)"  # airl.yml's CartPole form
    output = CliRunner().invoke(main, ["train", "--algo", "ppo", "--env", "Pendulum-v1", "-n", 64, "-f",
                                       str(tmp_path / "logs"), "-params", f"reward_model:{exported}"]).output
    assert "reward_model" in output and "not this environment" in output and "Traceback" not in output


def test_the_reward_env_rewards_with_the_model_and_keeps_the_true_return():
    import torch as th
    from stable_baselines3.common.env_util import make_vec_env

    from rlhub.common.learned_reward import RewardModel, RewardVecEnv, Transitions

    venv = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = RewardModel(venv.observation_space, venv.action_space, "state_action", [8])
    seen = []

    def reward(step: Transitions) -> np.ndarray:
        seen.append(step)
        with th.no_grad():
            return model(step.to_tensors(venv.action_space, "cpu")).numpy()

    env = RewardVecEnv(venv, reward)
    observations = env.reset()
    true_returns = []
    for _ in range(100):
        actions = np.array([env.action_space.sample() for _ in range(2)])
        next_observations, rewards, dones, infos = env.step(actions)
        step = seen[-1]
        assert np.array_equal(step.observations, observations) and np.array_equal(step.actions, actions)
        assert np.allclose(rewards, model(step.to_tensors(venv.action_space, "cpu")).detach().numpy())
        true_returns += [info["episode"]["r"] for info in infos if "episode" in info]
        observations = next_observations
    assert true_returns and all(value == int(value) for value in true_returns)  # CartPole's own: 1 per step
    assert len(env.episode_learned_returns) == len(true_returns)


def test_reward_model_files_are_read_as_data(tmp_path):
    import torch as th

    from rlhub.common.learned_reward import RewardModel, RewardModelError

    space = gym.make("CartPole-v1")
    model = RewardModel(space.observation_space, space.action_space, "state", [8])
    path = model.save(tmp_path / "reward.pt")
    assert th.equal(RewardModel.load(path).net[0].weight, model.net[0].weight)
    with pytest.raises(RewardModelError, match="does not exist"):
        RewardModel.load(tmp_path / "none.pt")
    (tmp_path / "text.pt").write_text("not torch")
    with pytest.raises(RewardModelError, match="is not a reward model file"):
        RewardModel.load(tmp_path / "text.pt")
    stored = th.load(path, weights_only=True)
    for change, refusal in ((dict(net_arch=[10**6, 10**6]), "net_arch"), (dict(net_arch=[4096] * 8), "larger than"), (dict(format="x"), "no rlhub reward model"),
                            (dict(inputs="code"), "inputs must be one of"), (dict(output="exec"), "output must be")):
        th.save({**stored, **change}, tmp_path / "bad.pt")
        with pytest.raises(RewardModelError, match=refusal):
            RewardModel.load(tmp_path / "bad.pt")
    with pytest.raises(RewardModelError, match="not this environment"):
        RewardModel.load(path).check_fits(gym.make("Pendulum-v1").observation_space, gym.spaces.Discrete(2), "it")


def test_gail_with_box_actions_and_a_state_only_discriminator(tmp_path):
    from rlhub.datasets import random_policy

    env = gym.make("Pendulum-v1")
    data = play_to_memory(env, random_policy(env.action_space, 0), n_steps=600, seed=0, dataset_id="t/Pendulum")
    model = GAIL("MlpPolicy", "Pendulum-v1", dataset=data, state_only=True, gradient_penalty=1.0,
                 generator_kwargs={"n_steps": 128}, seed=0, device="cpu", tensorboard_log=str(tmp_path))
    model.learn(512)
    assert model.discriminator.inputs == "state_next_state" and model._n_updates == 4 * 4
    actions, _ = model.predict(data.observations[:20], deterministic=True)
    assert env.action_space.contains(actions[0]) and np.all(np.abs(actions) <= 2.0)
