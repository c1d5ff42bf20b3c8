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


@pytest.mark.parametrize("generator", ["a2c", "reinforce", "acer"])
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
