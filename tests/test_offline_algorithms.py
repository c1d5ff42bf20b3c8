"""The offline family (rlhub_offline): BC and CQL's update rules against hand-computed numbers, the
gradient-step loop (callbacks, logging, save/load), and short learning checks on heuristic data."""

from __future__ import annotations

import dataclasses
import math
import platform

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from rlhub_offline.bc import BC, pretrain
from rlhub_offline.common import TransitionTensors
from rlhub_offline.cql import (
    CQL,
    best_sampled_actions,
    continuous_conservative_penalty,
    discrete_conservative_penalty,
    double_dqn_targets,
)

from rlhub.datasets import OfflineData, perturbed, play_to_memory

# --------------------------------------------------------------------------------------------
# Data from heuristic controllers


def cartpole_controller(observation: np.ndarray) -> int:
    """Push towards where the pole falls: balances CartPole-v1 for the full 500 steps mostly."""
    return int(observation[2] + observation[3] > 0)


def pendulum_controller(observation: np.ndarray) -> np.ndarray:
    """Energy pumping to swing up, a PD law near the top (theta'' = 15 sin(theta) + 3u on Pendulum-v1)."""
    cos_theta, sin_theta, velocity = observation
    angle = math.atan2(sin_theta, cos_theta)
    if cos_theta > 0.85:
        torque = -(10.0 * angle + 2.0 * velocity)
    else:
        energy = 0.5 * velocity**2 + 15.0 * cos_theta
        torque = 0.5 * (15.0 - energy) * np.sign(velocity or 1.0)
    return np.array([np.clip(torque, -2.0, 2.0)], dtype=np.float32)


def collect(env_id: str, controller, n_transitions: int, *, noise: float = 0.0, seed: int = 0) -> OfflineData:
    """Transitions of ``controller`` in ``env_id``: epsilon-random actions (Discrete) or Gaussian
    noise of scale ``noise`` times the bound (Box); the last of the episodes cut at ``n_transitions``."""
    env = gym.make(env_id)
    noise_kind = "epsilon" if isinstance(env.action_space, gym.spaces.Discrete) else "action_noise"
    policy = perturbed(controller, env.action_space, np.random.default_rng(seed), **{noise_kind: noise})
    data = play_to_memory(env, policy, n_steps=n_transitions, seed=seed, dataset_id=f"test/{env_id}-noise-{noise}")
    env.close()
    return data


def episode_returns(data: OfflineData) -> np.ndarray:
    bounds = [*data.episode_starts, len(data.rewards)]
    return np.array([data.rewards[start:end].sum() for start, end in zip(bounds[:-1], bounds[1:])])


def evaluate(model, env_id: str, n_episodes: int = 5, seed: int = 100) -> float:
    env = gym.make(env_id)
    returns = []
    for episode in range(n_episodes):
        observation, _ = env.reset(seed=seed + episode)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(observation, deterministic=True)
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


@pytest.fixture(scope="module")
def cartpole_expert() -> OfflineData:
    return collect("CartPole-v1", cartpole_controller, 5000)


@pytest.fixture(scope="module")
def cartpole_noisy() -> OfflineData:
    return collect("CartPole-v1", cartpole_controller, 10000, noise=0.3)


@pytest.fixture(scope="module")
def pendulum_noisy() -> OfflineData:
    return collect("Pendulum-v1", pendulum_controller, 2000, noise=0.3)


# --------------------------------------------------------------------------------------------
# Update rules against hand-computed numbers


def test_double_dqn_targets_use_the_online_argmax_and_the_target_value():
    rewards = th.tensor([1.0, 0.5])
    terminations = th.tensor([0.0, 1.0])
    next_q_online = th.tensor([[1.0, 3.0], [2.0, 0.0]])  # picks action 1, then action 0
    next_q_target = th.tensor([[10.0, 4.0], [7.0, 9.0]])
    targets = double_dqn_targets(rewards, terminations, next_q_online, next_q_target, gamma=0.9)
    # 1 + 0.9 * Q_target(s', 1) = 1 + 0.9 * 4; the second terminated: its reward alone
    th.testing.assert_close(targets, th.tensor([4.6, 0.5]))


def test_discrete_conservative_penalty_is_logsumexp_minus_the_data_value():
    q_values = th.tensor([[0.0, 0.0], [1.0, 2.0]])
    actions = th.tensor([1, 0])
    # state 1: log(e^0 + e^0) - 0 = log 2; state 2: log(e^1 + e^2) - 1 = 1 + log(1 + e)
    expected = (math.log(2.0) + math.log(1.0 + math.e)) / 2
    th.testing.assert_close(discrete_conservative_penalty(q_values, actions), th.tensor(expected))


def test_continuous_conservative_penalty_importance_weights_each_proposal():
    # one critic, one state, N = 1 sample per proposal, 1-D actions: uniform density 0.5
    q_random, q_current, q_next = th.tensor([[[1.0]]]), th.tensor([[[2.0]]]), th.tensor([[[0.5]]])
    log_prob_current, log_prob_next = th.tensor([[-1.0]]), th.tensor([[0.5]])
    q_data = th.tensor([[1.5]])
    penalty = continuous_conservative_penalty(q_random, q_current, q_next, log_prob_current, log_prob_next, q_data,
                                              action_dim=1)
    # log(exp(1 - log 0.5) + exp(2 - (-1)) + exp(0.5 - 0.5)) - 1.5
    expected = math.log(math.exp(1.0 + math.log(2.0)) + math.exp(3.0) + math.exp(0.0)) - 1.5
    th.testing.assert_close(penalty, th.tensor([expected]))


def test_continuous_conservative_penalty_averages_states_per_critic():
    q_random = th.zeros(2, 2, 3)  # two critics, two states, three samples
    q_policy = th.full((2, 2, 3), -50.0)  # negligible beside the uniform samples
    log_probs = th.zeros(2, 3)
    q_data = th.tensor([[1.0, 3.0], [0.0, 0.0]])
    penalty = continuous_conservative_penalty(q_random, q_policy, q_policy, log_probs, log_probs, q_data, action_dim=2)
    # each state: log(3 * exp(0 - log 0.25)) = log 12 (up to the exp(-50) terms); minus the mean data value
    th.testing.assert_close(penalty, th.tensor([math.log(12.0) - 2.0, math.log(12.0)]), atol=1e-6, rtol=0)


def test_best_sampled_actions_take_the_largest_of_the_smaller_critic():
    actions = th.tensor([[[-1.0], [0.0], [1.0]], [[0.2], [0.4], [0.6]]])  # two states, three candidates
    values = th.tensor([[[0.0, 5.0, 2.0], [1.0, 1.0, 3.0]],    # critic 1: state 1, state 2
                        [[0.0, 1.0, 9.0], [4.0, 4.0, 2.0]]])  # critic 2
    # the smaller critic: (0, 1, 2) and (1, 1, 2), the third candidate in both states, where critic 1
    # alone would pick state 1's second (5) and critic 2 alone state 1's third but state 2's first (4)
    th.testing.assert_close(best_sampled_actions(actions, values), th.tensor([[1.0], [0.6]]))


def test_transition_tensors_keep_rows_together(cartpole_noisy):
    transitions = TransitionTensors(cartpole_noisy, "cpu")
    indices = th.tensor([0, 7, len(cartpole_noisy.rewards) - 1])
    batch = transitions.batch(indices)
    rows = indices.numpy()
    np.testing.assert_array_equal(batch.observations.numpy(), cartpole_noisy.observations[rows])
    np.testing.assert_array_equal(batch.next_observations.numpy(), cartpole_noisy.next_observations[rows])
    np.testing.assert_array_equal(batch.actions.numpy(), cartpole_noisy.actions[rows])
    assert batch.actions.dtype == th.int64
    np.testing.assert_array_equal(batch.rewards.numpy(), cartpole_noisy.rewards[rows])
    np.testing.assert_array_equal(batch.terminations.numpy(), cartpole_noisy.terminations[rows].astype(np.float32))


# --------------------------------------------------------------------------------------------
# The loop, the dataset and save/load



@pytest.mark.parametrize("algo_class", [BC, CQL])
def test_learn_counts_gradient_steps_and_calls_back_on_each(algo_class, cartpole_noisy, tmp_path):
    from stable_baselines3.common.callbacks import BaseCallback

    class Count(BaseCallback):
        calls = 0

        def _on_step(self) -> bool:
            Count.calls += 1
            return self.n_calls < 40  # stops after the 40th step

    model = algo_class("MlpPolicy", "CartPole-v1", dataset=cartpole_noisy, batch_size=32, seed=0, device="cpu",
                       tensorboard_log=str(tmp_path))
    model.learn(100, callback=Count(), log_interval=16)
    assert Count.calls == 40 and model.num_timesteps == 40
    assert any(tmp_path.rglob("events.out.tfevents.*"))


def test_learn_logs_the_mean_losses(cartpole_noisy):
    from stable_baselines3.common.logger import Logger

    records = []

    class Recording(Logger):
        def dump(self, step: int = 0) -> None:
            records.append((step, dict(self.name_to_value)))
            super().dump(step)

    model = CQL("MlpPolicy", None, dataset=cartpole_noisy, batch_size=32, seed=0, device="cpu")
    model.set_logger(Recording(folder=None, output_formats=[]))
    model.learn(30, log_interval=20)
    assert [step for step, _ in records] == [20, 30]
    assert {"train/loss", "train/td_loss", "train/conservative_penalty", "time/fps"} <= set(records[0][1])
    assert np.isfinite(records[0][1]["train/loss"])


@pytest.mark.parametrize("algo_class,env_id", [(BC, "CartPole-v1"), (BC, "Pendulum-v1"), (CQL, "CartPole-v1"),
                                               (CQL, "Pendulum-v1")])
def test_save_load_round_trip_without_the_dataset(algo_class, env_id, cartpole_noisy, pendulum_noisy, tmp_path):
    data = cartpole_noisy if env_id == "CartPole-v1" else pendulum_noisy
    kwargs = {"policy_kwargs": {"net_arch": [16, 16]}}
    if algo_class is CQL and env_id == "Pendulum-v1":
        kwargs.update(target_action_gap=1.0, n_action_samples=2)  # the Lagrange multiplier is saved too
    model = algo_class("MlpPolicy", env_id, dataset=data, batch_size=16, seed=0, device="cpu", **kwargs)
    model.learn(20)
    model.save(tmp_path / "model.zip")
    loaded = algo_class.load(tmp_path / "model.zip", device="cpu")
    assert loaded.offline_data is None and loaded.dataset_id == data.dataset_id
    observations = data.observations[:16]
    np.testing.assert_allclose(model.predict(observations, deterministic=True)[0],
                               loaded.predict(observations, deterministic=True)[0], rtol=1e-6)
    for name, state in model.get_parameters().items():
        for key, value in state.items():
            if hasattr(value, "numpy"):
                np.testing.assert_array_equal(value.numpy(), loaded.get_parameters()[name][key].numpy())
    with pytest.raises(ValueError, match="no dataset"):
        loaded.learn(1)
    loaded.set_dataset(data)
    loaded.learn(2)


def test_continuous_actions_stay_in_the_environment_bounds(pendulum_noisy):
    model = CQL("MlpPolicy", "Pendulum-v1", dataset=pendulum_noisy, batch_size=16, seed=0, device="cpu",
                policy_kwargs={"net_arch": [16, 16]}, n_action_samples=2)
    actions, _ = model.predict(pendulum_noisy.observations[:64], deterministic=False)
    assert actions.shape == (64, 1) and np.all(np.abs(actions) <= 2.0)
    learned = model._learned_actions(pendulum_noisy)  # SAC learns in [-1, 1]
    np.testing.assert_allclose(learned, pendulum_noisy.actions / 2.0, atol=1e-6)


def test_a_dataset_from_another_environment_is_a_clear_error(pendulum_noisy):
    with pytest.raises(ValueError, match="supports|space"):
        BC("MlpPolicy", "CartPole-v1", dataset=pendulum_noisy)
    with pytest.raises(ValueError, match="tau"):
        CQL("MlpPolicy", "CartPole-v1", tau=0.0)


def test_without_an_env_the_dataset_gives_the_spaces(cartpole_noisy):
    model = CQL("MlpPolicy", None, dataset=cartpole_noisy, batch_size=16, seed=0, device="cpu")
    assert model.action_space.n == 2 and model.env is None
    model.learn(5)
    assert model.num_timesteps == 5


# --------------------------------------------------------------------------------------------
# Learning (small budgets; the benchmark holds the real rows)


def test_bc_clones_the_heuristic_cartpole_controller(cartpole_expert):
    assert episode_returns(cartpole_expert).mean() > 450
    model = BC("MlpPolicy", "CartPole-v1", dataset=cartpole_expert, seed=0, device="cpu")
    model.learn(1500)
    assert evaluate(model, "CartPole-v1") >= 475


def test_pretrain_fits_a_ppo_policy_in_place(cartpole_expert):
    from stable_baselines3 import PPO

    ppo = PPO("MlpPolicy", "CartPole-v1", seed=0, device="cpu")
    before = pretrain(ppo.policy, cartpole_expert, n_steps=1)["neg_log_likelihood"]
    after = pretrain(ppo.policy, cartpole_expert, n_steps=1500)["neg_log_likelihood"]
    assert before > 0.6 and after < 0.3  # from about log 2 (an untrained categorical policy)
    assert evaluate(ppo, "CartPole-v1") >= 475


def test_discrete_cql_beats_epsilon_noised_data(cartpole_noisy):
    data_mean = episode_returns(cartpole_noisy).mean()
    assert data_mean < 350  # epsilon 0.3 spoils the controller
    model = CQL("MlpPolicy", "CartPole-v1", dataset=cartpole_noisy, learning_rate=1e-3, alpha=1.0, tau=1.0,
                target_update_interval=500, seed=0, device="cpu")
    model.learn(3000)
    assert evaluate(model, "CartPole-v1") >= 475


def test_the_plugin_registers_the_family_as_offline():
    import rlhub_offline

    specs = {spec.algo_id: spec for spec in rlhub_offline.rlhub_algorithms()}
    assert set(specs) == {"bc", "cql", "decision_transformer"}
    assert all(spec.kind == "offline" and set(spec.action_spaces) == {"Discrete", "Box"} for spec in specs.values())
    assert specs["bc"].load() is BC and specs["cql"].load() is CQL


def test_cql_actor_clones_the_data_for_its_first_bc_steps(pendulum_noisy):
    constant = dataclasses.replace(pendulum_noisy, actions=np.full_like(pendulum_noisy.actions, 1.0))
    model = CQL("MlpPolicy", "Pendulum-v1", dataset=constant, alpha=0.0, bc_steps=300, actor_learning_rate=3e-3,
                policy_kwargs={"net_arch": [32, 32]}, seed=0, device="cpu")
    model.learn(300)
    actions, _ = model.predict(constant.observations[:200], deterministic=True)
    assert np.abs(actions - 1.0).max() < 0.2  # one action in every state: the data's, not the critic's
    with pytest.raises(ValueError, match="bc_steps must be non-negative"):
        CQL("MlpPolicy", "Pendulum-v1", dataset=constant, bc_steps=-1)


def test_cql_clones_actions_on_the_bounds_closely(pendulum_noisy):
    # Pendulum's expert often pushes the full torque; tanh reaches +-1 only at infinity
    on_bound = dataclasses.replace(pendulum_noisy, actions=np.full_like(pendulum_noisy.actions, 2.0))
    model = CQL("MlpPolicy", "Pendulum-v1", dataset=on_bound, alpha=0.0, bc_steps=300, actor_learning_rate=3e-3,
                policy_kwargs={"net_arch": [32, 32]}, seed=0, device="cpu")
    model.learn(300)
    observations = th.as_tensor(on_bound.observations[:200])
    with th.no_grad():
        log_std = model.policy.inner.actor.get_action_dist_params(observations)[1]
    actions, _ = model.predict(on_bound.observations[:200], deterministic=True)
    # Cloned at atanh(1 - 1e-7) = 8.3, the actor widened its spread to fit the outlier (log std 1.1) and
    # its deterministic actions fell to 1.47
    assert actions.min() > 1.75
    assert log_std.mean() < 0.5


def two_peaked_critic(critic: th.nn.Module) -> None:
    """Replace the critics' values by one landscape over actions: a broad peak of 1 at -0.5, where
    gradient ascent from 0 goes, and a narrow peak of 3 at 0.8, flat to the gradient from 0."""
    parameters = list(critic.parameters())

    def values(observations: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        landscape = th.exp(-((actions + 0.5) / 0.3) ** 2) + 3.0 * th.exp(-((actions - 0.8) / 0.15) ** 2)
        tie = sum(p.sum() for p in parameters) * 0.0  # keeps the critic loss differentiable
        return (landscape + tie, landscape + tie)

    critic.forward = values


@pytest.mark.parametrize("greedy_weight", [0.0, 10.0])
def test_greedy_weight_lets_the_actor_leave_a_lower_peak_of_the_critic(pendulum_noisy, greedy_weight):
    # the warm start clones -0.5 (torque -1): the actor starts on the broad, lower peak
    constant = dataclasses.replace(pendulum_noisy, actions=np.full_like(pendulum_noisy.actions, -1.0))
    model = CQL("MlpPolicy", "Pendulum-v1", dataset=constant, greedy_weight=greedy_weight, ent_coef=0.01, bc_steps=300,
                actor_learning_rate=3e-3, policy_kwargs={"net_arch": [32, 32]}, seed=0, device="cpu")
    two_peaked_critic(model.policy.inner.critic)
    model.learn(600)
    actions, _ = model.predict(constant.observations[:200], deterministic=True)
    scaled = actions / 2.0  # Pendulum's torque bounds are +-2
    if greedy_weight:  # the best of the uniform samples lies on the higher peak: the actor follows
        assert np.abs(scaled - 0.8).max() < 0.1
    else:  # SAC's actor alone climbs the peak it stands on
        assert np.abs(scaled + 0.5).max() < 0.1


def test_offline_learning_keeps_freed_memory_in_the_process():
    from rlhub_offline.common.allocator import keep_freed_memory

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's mallopt only")
    assert keep_freed_memory() is True


@pytest.mark.slow
def test_continuous_cql_swings_pendulum_up_from_noisy_data():
    data = collect("Pendulum-v1", pendulum_controller, 20000, noise=0.3)
    model = CQL("MlpPolicy", "Pendulum-v1", dataset=data, learning_rate=1e-3, actor_learning_rate=3e-4, gamma=0.98,
                policy_kwargs={"net_arch": [64, 64]}, seed=0, device="cpu")
    model.learn(5000)
    assert evaluate(model, "Pendulum-v1") >= -350  # random: about -1200; the data: -175
