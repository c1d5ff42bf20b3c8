"""Curiosity (plugin rlhub_curiosity): RND's and ICM's modules learn what they should, any registered
algorithm can be the base, and the commands work on them. The conformance suite
(tests/test_conformance.py) covers save/load and Hub round trips; MountainCar, MiniGrid and the
overhead are in benchmarks/curiosity.yml."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from click.testing import CliRunner
from rlhub_curiosity.common.two_stream_ppo import TwoStreamPPO
from rlhub_curiosity.icm import ICM
from rlhub_curiosity.rnd import RND
from stable_baselines3.common.env_util import make_vec_env

from rlhub.cli import main
from rlhub.common.learned_reward import Transitions


def run(*args, expect=0):
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    assert result.exit_code == expect, f"rlhub {' '.join(map(str, args))} exited {result.exit_code}:\n{result.output}"
    return result.output


def cartpole_transitions(count: int, seed: int = 0) -> Transitions:
    env = make_vec_env("CartPole-v1", n_envs=1, seed=seed)
    observations, actions, next_observations = [], [], []
    obs = env.reset()
    rng = np.random.default_rng(seed)
    for _ in range(count):
        action = rng.integers(2, size=1)
        next_obs, _, dones, infos = env.step(action)
        observations.append(obs[0])
        actions.append(action[0])
        next_observations.append(infos[0]["terminal_observation"] if dones[0] else next_obs[0])
        obs = next_obs
    return Transitions(np.array(observations), np.array(actions), np.array(next_observations), np.zeros(count))


def train_module(model, data: Transitions, epochs: int) -> None:
    batch = data.to_tensors(model.action_space, model.device)
    model.observation_normalizer.update(batch.observations)
    for _ in range(epochs):
        for indices in th.randperm(len(batch)).split(64):
            minibatch = Transitions(*(getattr(batch, name)[indices] for name in
                                      ("observations", "actions", "next_observations", "terminations")))
            loss = model.module_losses(minibatch)["loss"]
            model.curiosity_optimizer.zero_grad()
            loss.backward()
            model.curiosity_optimizer.step()


def test_rnd_rewards_states_it_has_not_seen_more_than_those_it_has():
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    model = RND("MlpPolicy", env, learning_rate=1e-3, update_proportion=1.0, seed=0, device="cpu")
    seen = cartpole_transitions(2000)
    train_module(model, seen, epochs=30)
    novel = Transitions(*(np.asarray(values).copy() for values in (seen.observations, seen.actions,
                                                                 seen.next_observations, seen.terminations)))
    novel.next_observations[:, 0] += 2.0  # the cart where random play never takes it
    with th.no_grad():
        familiar_reward = model.intrinsic_rewards(seen.to_tensors(model.action_space, "cpu"))
        novel_reward = model.intrinsic_rewards(novel.to_tensors(model.action_space, "cpu"))
    assert novel_reward.mean() > 5 * familiar_reward.mean(), (float(novel_reward.mean()), float(familiar_reward.mean()))
    assert not any(parameter.requires_grad for parameter in model.curiosity.target.parameters())


def test_icm_learns_which_action_was_taken_and_what_follows():
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    model = ICM("MlpPolicy", env, learning_rate=1e-3, seed=0, device="cpu")
    data, held_out = cartpole_transitions(3000), cartpole_transitions(1000, seed=1)
    train_module(model, data, epochs=20)
    test_batch = held_out.to_tensors(model.action_space, "cpu")
    network = model.curiosity
    with th.no_grad():
        features = network.encoder(model.normalize(test_batch.observations))
        next_features = network.encoder(model.normalize(test_batch.next_observations))
        guessed = network.inverse(th.cat([features, next_features], dim=1)).argmax(dim=1)
        accuracy = float((guessed == test_batch.actions).float().mean())
        predicted = network.predicted_features(features, test_batch.actions)
    # CartPole's velocities tell the push apart, so the inverse model can be nearly always right; the
    # forward model explains most of how the features of what follows vary (the features' scale moves
    # as the encoder learns, so the error is measured against their spread).
    assert accuracy > 0.9, accuracy
    unexplained = (predicted - next_features).pow(2).sum() / (next_features - next_features.mean(dim=0)).pow(2).sum()
    assert unexplained < 0.2, float(unexplained)


def test_icm_forward_loss_trains_the_encoder_as_in_the_authors_code():
    # Detached from the forward loss, the encoder's features grow with the inverse model's confidence,
    # and the forward error (the reward) with them: on DoorKey it rose from 0.6 to about 100.
    model = ICM("MlpPolicy", make_vec_env("CartPole-v1", n_envs=1, seed=0), beta=1.0, seed=0, device="cpu")
    batch = cartpole_transitions(256).to_tensors(model.action_space, "cpu")
    model.observation_normalizer.update(batch.observations)
    model.module_losses(batch)["loss"].backward()
    gradients = [parameter.grad for parameter in model.curiosity.encoder.parameters()]
    assert all(gradient is not None for gradient in gradients)
    assert sum(float(gradient.abs().sum()) for gradient in gradients) > 0


def test_two_stream_advantages_keep_the_intrinsic_stream_across_episode_ends():
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    model = TwoStreamPPO("MlpPolicy", env, n_steps=4, batch_size=4, gamma=0.5, intrinsic_gamma=0.5, gae_lambda=1.0,
                         extrinsic_coef=2.0, intrinsic_coef=1.0, device="cpu")
    buffer = model.rollout_buffer
    zeros = th.zeros(1)
    for step in range(4):  # an episode ends after step 1: episode_start at step 2
        buffer.add(np.zeros((1, 4), dtype=np.float32), np.zeros((1, 1)), np.array([1.0]), np.array([step == 2]),
                   zeros, zeros, np.array([1.0]), zeros)
    buffer.compute_returns_and_advantage(zeros, zeros, np.array([False]))
    # Extrinsic returns restart at the episode's end; intrinsic ones run on: 1 + 0.5 + 0.25 + 0.125 at step 0.
    np.testing.assert_allclose(buffer.returns[:, 0], [1.5, 1.0, 1.5, 1.0])
    np.testing.assert_allclose(buffer.intrinsic_returns[:, 0], [1.875, 1.75, 1.5, 1.0])
    np.testing.assert_allclose(buffer.advantages[:, 0], 2 * buffer.returns[:, 0] + buffer.intrinsic_returns[:, 0])


@pytest.mark.parametrize(("algo_id", "base"), [("rnd", "ppo"), ("icm", "a2c"), ("icm", "dqn")])
def test_learns_cartpole_with_any_base_and_logs_its_curiosity(algo_id, base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base_kwargs = {"ppo": "dict(n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0, "
                          "learning_rate=1e-3)",
                   "a2c": "dict(n_steps=8, ent_coef=0.0, learning_rate=7e-4)",
                   "dqn": "dict(learning_starts=1000, exploration_fraction=0.2, target_update_interval=500, "
                          "train_freq=4, gradient_steps=1, learning_rate=1e-3)"}[base]
    budget = {"ppo": 30_000, "a2c": 30_000, "dqn": 4_000}[base]
    run("train", "--algo", algo_id, "--env", "CartPole-v1", "-n", budget, "-f", "logs", "--seed", 0, "--eval-freq", -1,
        "-q", "-params", f"base:{base}", f"base_kwargs:{base_kwargs}", "intrinsic_coef:0.1",
        *(["n_envs:1"] if base == "dqn" else []))
    output = run("enjoy", "--algo", algo_id, "--env", "CartPole-v1", "-f", "logs", "--no-render", "--n-episodes", 5)
    mean_return = float(output.strip().splitlines()[-1].split()[2])
    if base != "dqn":  # DQN's few thousand steps only show that it runs
        assert mean_return >= 150, output
    run("plot", "-f", "logs", "--scalar", "curiosity/intrinsic_reward", "--scalar", "curiosity/extrinsic_ep_return",
        "-o", "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    from rlhub.plotting import collect_scalar_runs

    tags = {curve.series for curve in collect_scalar_runs([tmp_path / "logs"], [
        "curiosity/intrinsic_reward", "curiosity/predictor_loss", "curiosity/forward_loss", "curiosity/inverse_loss",
        "train/intrinsic_value_loss"])}
    expected = ({"curiosity/predictor_loss", "train/intrinsic_value_loss"} if algo_id == "rnd"
                else {"curiosity/forward_loss", "curiosity/inverse_loss"})
    assert expected | {"curiosity/intrinsic_reward"} <= tags, tags


def test_a_base_that_does_not_play_its_environment_is_refused(tmp_path):
    output = run("train", "--algo", "icm", "--env", "CartPole-v1", "-n", 100, "-f", tmp_path, "-params", "base:bc",
                 expect=2)
    assert "the base must learn by playing its environment" in output and "bc is offline" in output


@pytest.mark.parametrize("algo_class", [RND, ICM])
def test_image_observations_get_a_cnn_encoder(algo_class):
    import gymnasium as gym
    from stable_baselines3.common.torch_layers import NatureCNN
    from stable_baselines3.common.vec_env import DummyVecEnv

    def pixels():  # CartPole's 400x600 frames, every eighth pixel: 50x75x3
        env = gym.wrappers.AddRenderObservation(gym.make("CartPole-v1", render_mode="rgb_array"), render_only=True)
        space = gym.spaces.Box(0, 255, (50, 75, 3), np.uint8)
        return gym.wrappers.TransformObservation(env, lambda frame: frame[::8, ::8], space)

    model = algo_class("CnnPolicy", DummyVecEnv([pixels, pixels]), base_kwargs={"n_steps": 64, "batch_size": 64},
                       batch_size=64, normalization_steps=32, seed=0, device="cpu")
    assert any(isinstance(module, NatureCNN) for module in model.curiosity.modules())
    model.learn(256)
    batch = model.intrinsic_env.take_transitions() if model.intrinsic_env.n_kept else None
    assert model.num_timesteps >= 256 and model._n_updates > 0
    if batch is not None:
        with th.no_grad():
            rewards = model.intrinsic_rewards(batch.to_tensors(model.action_space, "cpu"))
        assert th.isfinite(rewards).all()


def test_an_image_too_small_for_a_cnn_gets_an_mlp(tmp_path):
    # MiniGrid's 7x7 view: an image to SB3, too small for NatureCNN's convolutions
    output = run("train", "--algo", "rnd", "--env", "minigrid:MiniGrid-DoorKey-5x5-v0", "-n", 512, "-f", tmp_path,
                 "--eval-freq", -1, "-q", "-params", "env_wrapper:minigrid.wrappers.ImgObsWrapper", "n_envs:2",
                 "base_kwargs:dict(n_steps=64, batch_size=64)", "batch_size:64", "normalization_steps:64")
    assert "Trained" in output


def test_a_downloaded_module_size_is_bounded_by_the_weights_it_ships(tmp_path):
    import json
    import zipfile

    from rlhub import hub
    from rlhub.safe_loading import UnsafeAgentError

    run("train", "--algo", "rnd", "--env", "CartPole-v1", "-n", 300, "-f", tmp_path / "logs", "--eval-freq", -1, "-q")
    folder = tmp_path / "package"
    hub.package(tmp_path / "logs" / "rnd" / "CartPole-v1_1", folder, n_eval_episodes=1, video_length=0, device="cpu")
    model = folder / json.loads((folder / "rlhub.json").read_text())["model_file"]
    with zipfile.ZipFile(model) as original:
        members = {item.filename: original.read(item.filename) for item in original.infolist()}
    data = json.loads(members["data"])
    data["features_dim"] = 10**7  # a 640M-weight layer, built and initialised before any weight is compared
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(model, "w") as planted:
        for name, content in members.items():
            planted.writestr(name, content)
    with pytest.raises(UnsafeAgentError, match="describe a network larger than the"):
        hub.load_agent(folder, device="cpu")
