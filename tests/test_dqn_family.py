"""The DQN family's one implementation: C51's projection against a brute-force one, noisy layers,
each preset's components, the Double DQN target, and prioritized updates inside RainbowDQN."""

import numpy as np
import pytest
import torch as th
from rlhub_dqn_family.common.prioritized_replay import PrioritizedReplayBuffer
from rlhub_dqn_family.presets import C51, DoubleDQN, DuelingDQN, PrioritizedDQN, Rainbow
from rlhub_dqn_family.rainbow import NoisyLinear, RainbowDQN, project_distribution
from stable_baselines3.common.env_util import make_vec_env


def _brute_force_projection(probs, reward, done, discount, support):
    """Each atom's mass to its two neighbours, one atom at a time."""
    v_min, v_max, spacing = support[0], support[-1], support[1] - support[0]
    projected = np.zeros_like(probs)
    for atom, mass in zip(support, probs, strict=True):
        value = np.clip(reward + (1 - done) * discount * atom, v_min, v_max)
        position = (value - v_min) / spacing
        lower = int(np.floor(position + 1e-9))
        if lower >= len(support) - 1 or abs(position - round(position)) < 1e-9:
            projected[int(round(position))] += mass
            continue
        projected[lower] += mass * (lower + 1 - position)
        projected[lower + 1] += mass * (position - lower)
    return projected


def test_c51_projection_matches_a_brute_force_one():
    rng = np.random.default_rng(0)
    support = np.linspace(-3.0, 3.0, 7)
    probs = rng.dirichlet(np.ones(7), size=6)
    rewards = np.array([0.0, 0.5, -0.25, 10.0, 1.0, -7.0])
    dones = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    discounts = np.array([1.0, 0.9, 0.5, 0.9, 0.9, 0.99])
    projected = project_distribution(th.tensor(probs), th.tensor(rewards)[:, None], th.tensor(dones)[:, None],
                                     th.tensor(discounts)[:, None], th.tensor(support))
    for row in range(6):
        expected = _brute_force_projection(probs[row], rewards[row], dones[row], discounts[row], support)
        np.testing.assert_allclose(projected[row].numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(projected.sum(dim=1).numpy(), 1.0)


def test_noisy_linear_uses_factorised_noise_and_its_means_when_not_noisy():
    th.manual_seed(0)
    layer = NoisyLinear(3, 2)
    inputs = th.randn(4, 3)
    expected_weight = layer.weight_mu + layer.weight_sigma * th.outer(layer.noise_out, layer.noise_in)
    th.testing.assert_close(layer(inputs), inputs @ expected_weight.T + layer.bias_mu + layer.bias_sigma * layer.noise_out)
    noisy_before = layer(inputs)
    layer.reset_noise()
    assert not th.allclose(layer(inputs), noisy_before)
    layer.noisy = False
    th.testing.assert_close(layer(inputs), inputs @ layer.weight_mu.T + layer.bias_mu)


@pytest.mark.parametrize(("preset", "components"), [
    (DoubleDQN, dict(double_q=True, dueling=False, prioritized=False, noisy=False, n_atoms=1)),
    (DuelingDQN, dict(double_q=True, dueling=True, prioritized=False, noisy=False, n_atoms=1)),
    (PrioritizedDQN, dict(double_q=True, dueling=False, prioritized=True, noisy=False, n_atoms=1)),
    (C51, dict(double_q=False, dueling=False, prioritized=False, noisy=False, n_atoms=51)),
    (Rainbow, dict(double_q=True, dueling=True, prioritized=True, noisy=True, n_atoms=51)),
])
def test_each_preset_turns_on_its_components_and_an_argument_overrides_them(preset, components):
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    model = preset("MlpPolicy", env, buffer_size=1000, device="cpu")
    assert {name: getattr(model, name) for name in components} == components
    assert isinstance(model.replay_buffer, PrioritizedReplayBuffer) == components["prioritized"]
    assert (model.exploration_initial_eps, model.exploration_final_eps) == ((0.0, 0.0) if components["noisy"]
                                                                           else (1.0, 0.05))
    assert not preset("MlpPolicy", env, buffer_size=1000, device="cpu", double_q=False).double_q


def test_double_dqn_target_takes_the_online_networks_action_and_the_target_networks_value():
    model = DoubleDQN("MlpPolicy", make_vec_env("CartPole-v1", n_envs=1, seed=0), buffer_size=1000, device="cpu")
    next_observations = th.zeros(1, 4)
    with th.no_grad():
        model.q_net.q_stream[-1].bias.copy_(th.tensor([0.0, 100.0]))  # online prefers action 1
        model.q_net_target.q_stream[-1].bias.copy_(th.tensor([50.0, -50.0]))  # target prefers action 0
        target_q = model.q_net_target(next_observations)
    assert model._next_actions(next_observations, target_q).item() == 1
    model.double_q = False
    assert model._next_actions(next_observations, target_q).item() == 0


def test_prioritized_rainbow_updates_priorities_from_its_losses_and_round_trips(tmp_path):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = Rainbow("MlpPolicy", env, buffer_size=1000, learning_starts=64, batch_size=16, train_freq=4,
                    v_min=0.0, v_max=100.0, seed=0, device="cpu", policy_kwargs=dict(net_arch=[16]))
    model.learn(400)
    leaves = model.replay_buffer.last_batch.leaves
    assert model.replay_buffer.tree[leaves].std() > 0  # no longer all at the initial priority
    assert 0.4 < model.replay_buffer.beta <= 1.0
    model.save(tmp_path / "rainbow")
    loaded = Rainbow.load(tmp_path / "rainbow", device="cpu")
    observations = np.zeros((3, 4), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0],
                                  model.predict(observations, deterministic=True)[0])
    assert loaded.n_atoms == 51 and loaded.noisy


def test_invalid_atoms_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="n_atoms must be 1"):
        RainbowDQN("MlpPolicy", "CartPole-v1", n_atoms=2, device="cpu")


def test_discrete_pendulum_maps_its_11_actions_onto_the_torque_range():
    import gymnasium as gym

    from rlhub.envs import ensure_registered

    env = gym.make(ensure_registered("rlhub/DiscretePendulum-v1"))
    assert env.action_space == gym.spaces.Discrete(11)
    torques = [float(env.get_wrapper_attr("action")(action)[0]) for action in range(11)]
    np.testing.assert_allclose(torques, np.linspace(-2.0, 2.0, 11), atol=1e-6)
    env.reset(seed=0)
    steps = 0
    while True:
        steps += 1
        if any(env.step(10)[2:4]):
            break
    assert steps == 200  # Pendulum's own time limit


def test_rainbow_atari_section_is_the_papers_and_puts_noisy_streams_on_the_nature_cnn(monkeypatch):
    from pathlib import Path

    import gymnasium as gym
    from gymnasium.envs.registration import EnvSpec
    from stable_baselines3.common.envs import FakeImageEnv
    from stable_baselines3.common.torch_layers import NatureCNN

    from rlhub.config import find_config_file, load_zoo_config

    monkeypatch.setitem(gym.registry, "Pongish-v4", EnvSpec("Pongish-v4", entry_point="ale_py.env:AtariEnv"))
    path = find_config_file("rainbow", [Path(__file__).parents[1] / "zoo_configs"])
    config = load_zoo_config("rainbow", "Pongish-v4", Rainbow, conf_file=path)
    hyperparams = config.hyperparams
    assert (config.section, config.policy, config.frame_stack) == ("atari", "CnnPolicy", 4)
    assert (hyperparams["learning_rate"], hyperparams["target_update_interval"], hyperparams["learning_starts"],
            hyperparams["v_min"], hyperparams["v_max"]) == (6.25e-5, 8000, 20000, -10.0, 10.0)
    assert hyperparams["policy_kwargs"] == {"optimizer_kwargs": {"eps": 1.5e-4}}

    small = {**hyperparams, "buffer_size": 200, "learning_starts": 50, "batch_size": 8}
    model = Rainbow(config.policy, FakeImageEnv(screen_height=36, screen_width=36, n_channels=4), seed=0,
                    device="cpu", **small)
    model.learn(120)
    assert isinstance(model.q_net.features_extractor, NatureCNN)
    assert model.policy.optimizer.defaults["eps"] == 1.5e-4 and model.exploration_rate == 0.0
    noisy = [type(layer).__name__ for layer in model.q_net.modules() if isinstance(layer, NoisyLinear)]
    assert len(noisy) == 2 and model._n_updates > 0  # one noisy layer per dueling stream
