"""ACER: Retrace targets and the trust-region projection against hand-computed values, the replay
buffer, a short learning check on CartPole, and the continuous (Pendulum) save/load round trip."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor

from rlhub import registry
from rlhub.testing.conformance import check_train_save_load
from rlhub_policy_gradient.acer import ACER, retrace_targets, trust_region_step
from rlhub_policy_gradient.buffers import SegmentReplayBuffer, Segments


def _retrace(dones):
    row = lambda values: th.tensor([values], dtype=th.float64)  # noqa: E731
    return retrace_targets(
        rewards=row([1.0, 2.0, 3.0]), dones=row(dones), q_taken=row([0.5, 1.0, 1.5]), values=row([0.4, 0.8, 1.2]),
        traces=row([1.0, 0.5, 0.25]), bootstrap=th.tensor([2.0], dtype=th.float64), gamma=0.9,
    )[0].tolist()


def test_retrace_targets_match_hand_computed_values():
    # Q_ret(2) = 3 + 0.9 * 2.0                                  = 4.8
    # Q_ret(1) = 2 + 0.9 * (0.25 * (4.8 - 1.5) + 1.2)            = 3.8225
    # Q_ret(0) = 1 + 0.9 * (0.5 * (3.8225 - 1.0) + 0.8)          = 2.990125
    assert _retrace([0, 0, 0]) == pytest.approx([2.990125, 3.8225, 4.8])


def test_retrace_targets_stop_at_episode_ends():
    # The episode ends after step 1: Q_ret(1) = r_1; step 2 belongs to the next episode.
    # Q_ret(0) = 1 + 0.9 * (0.5 * (2.0 - 1.0) + 0.8) = 2.17
    assert _retrace([0, 1, 0]) == pytest.approx([2.17, 2.0, 4.8])


def test_retrace_with_unit_traces_is_q_opc():
    rewards = th.tensor([[1.0, 1.0]])
    # Q_opc(1) = 1 + 0.5 * 4 = 3; Q_opc(0) = 1 + 0.5 * ((3 - 2) + 1) = 2
    targets = retrace_targets(rewards, th.zeros(1, 2), th.tensor([[9.0, 2.0]]), th.tensor([[9.0, 1.0]]),
                              th.ones(1, 2), th.tensor([4.0]), gamma=0.5)
    assert targets[0].tolist() == pytest.approx([2.0, 3.0])


def test_trust_region_projection_matches_hand_computed_values():
    gradient = th.tensor([[1.0, 2.0], [0.2, 1.0], [3.0, -1.0], [1.0, 1.0]])
    kl_gradient = th.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    projected, scale = trust_region_step(gradient, kl_gradient, delta=0.5)
    # Row 0: k.g = 1 > 0.5, scale (1 - 0.5) / 1 = 0.5, z = [0.5, 2].
    # Row 1: k.g = 0.2 <= 0.5, inside the region: z = g.
    # Row 2: k.g = 2, scale (2 - 0.5) / 2 = 0.75, z = [2.25, -1.75].
    # Row 3: k = 0 (policy equals the average): z = g.
    assert scale.tolist() == pytest.approx([0.5, 0.0, 0.75, 0.0])
    np.testing.assert_allclose(projected.numpy(), [[0.5, 2.0], [0.2, 1.0], [2.25, -1.75], [1.0, 1.0]], rtol=1e-6)
    active = scale > 0  # a projected step changes the KL by exactly delta (first order)
    assert (kl_gradient[active] * projected[active]).sum(-1).tolist() == pytest.approx([0.5, 0.5])


def test_replay_buffer_keeps_the_newest_segments():
    buffer = SegmentReplayBuffer(capacity=12, n_steps=2, n_envs=3, observation_shape=(1,), observation_dtype=np.float32,
                                 action_shape=(), action_dtype=np.int64, behaviour_dim=2)
    assert buffer.n_rollouts == 2
    for index in range(3):
        buffer.add(Segments(observations=np.full((3, 3, 1), index, np.float32), actions=np.zeros((3, 2), np.int64),
                            rewards=np.full((3, 2), index, np.float32), dones=np.zeros((3, 2), np.float32),
                            behaviour=np.full((3, 2, 2), 0.5, np.float32)))
    assert buffer.n_transitions == 12
    sample = buffer.sample(50, np.random.default_rng(0))
    assert sample.observations.shape == (50, 3, 1) and sample.behaviour.shape == (50, 2, 2)
    assert set(np.unique(sample.rewards)) == {1.0, 2.0}  # rollout 0 was overwritten


def test_acer_learns_cartpole_quickly():
    env = make_vec_env("CartPole-v1", n_envs=8, seed=2)
    model = ACER("MlpPolicy", env, learning_rate=1e-3, n_steps=20, replay_ratio=4.0, replay_start=500, seed=2,
                 device="cpu")
    model.learn(4_800)
    eval_env = Monitor(gym.make("CartPole-v1"))
    mean_return, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
    # Measured: 167 with this seed (a random policy gets ~22).
    assert mean_return > 60, f"ACER should beat a random policy (~22) clearly after 4.8k steps, got {mean_return}"


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
@pytest.mark.parametrize("trust_region", [True, False])
def test_every_loss_term_is_logged(tmp_path, env_id, trust_region):
    model = ACER("MlpPolicy", make_vec_env(env_id, n_envs=2, seed=0), n_steps=5, replay_start=10, seed=0,
                 device="cpu", trust_region=trust_region, policy_kwargs=dict(net_arch=[16]))
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(100, log_interval=1)
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    expected = {"train/policy_gradient_loss", "train/bias_correction_loss", "train/entropy_loss", "train/q_loss",
                "train/loss", "train/avg_importance_weight", "train/kl_to_average", "train/grad_norm"}
    if env_id == "Pendulum-v1":
        expected.add("train/v_loss")
    if trust_region:
        expected.add("train/trust_region_scale")
    assert expected <= set(header)


def test_on_policy_acer_without_replay_runs():
    model = ACER("MlpPolicy", "CartPole-v1", n_steps=5, replay_ratio=0.0, seed=0, device="cpu")
    assert model.replay_buffer is None
    model.learn(50)
    assert model.num_timesteps >= 50


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="correction_term"):
        ACER("MlpPolicy", "CartPole-v1", correction_term=0.0)
    with pytest.raises(ValueError, match="alpha"):
        ACER("MlpPolicy", "CartPole-v1", alpha=1.0)


def test_continuous_acer_trains_saves_and_reloads(tmp_path):
    # The conformance suite runs ACER on CartPole (Discrete); this is the Box-action round trip.
    spec = dataclasses.replace(registry.get_algorithm("acer"), test_env_id="Pendulum-v1")
    check_train_save_load(spec, tmp_path, n_timesteps=256)


def test_average_network_follows_the_network_and_is_saved(tmp_path):
    model = ACER("MlpPolicy", "CartPole-v1", n_steps=5, replay_start=10, alpha=0.5, seed=0, device="cpu")
    model.learn(60)
    network = th.nn.utils.parameters_to_vector(model.policy.network.parameters())
    average = th.nn.utils.parameters_to_vector(model.policy.average_network.parameters())
    assert not th.equal(network, average) and (network - average).abs().max() < 1.0
    model.save(tmp_path / "acer.zip")
    loaded = ACER.load(tmp_path / "acer.zip", device="cpu")
    assert th.equal(average, th.nn.utils.parameters_to_vector(loaded.policy.average_network.parameters()))
