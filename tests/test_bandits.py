"""Bandit algorithms and the k-armed bandit environments (plugin rlhub_bandits)."""

from __future__ import annotations

import numpy as np
import pytest
from rlhub_bandits.envs import BernoulliBanditEnv, GaussianBanditEnv
from rlhub_bandits.epsilon_greedy import EpsilonGreedyBandit
from rlhub_bandits.gradient_bandit import GradientBandit
from rlhub_bandits.thompson import ThompsonSampling
from rlhub_bandits.ucb import UCB
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure

from rlhub.envs import ensure_registered

BERNOULLI = "rlhub/BernoulliBandit-v0"
GAUSSIAN = "rlhub/GaussianBandit-v0"
EASY = [0.2, 0.3, 0.8, 0.4]  # arm 2 is best by a wide margin


@pytest.fixture(autouse=True, scope="module")
def registered() -> None:
    ensure_registered(BERNOULLI)


def test_bandit_envs_are_one_step_fixed_and_seedable():
    env = BernoulliBanditEnv(n_arms=10, arms_seed=7)
    np.testing.assert_array_equal(env.means, BernoulliBanditEnv(arms_seed=7).means)  # arms fixed by arms_seed
    assert not np.array_equal(env.means, BernoulliBanditEnv(arms_seed=8).means)
    observation, _ = env.reset(seed=0)
    assert observation == 0 and env.observation_space.n == 1 and env.action_space.n == 10
    _, reward, terminated, truncated, info = env.step(3)
    assert terminated and not truncated and reward in (0.0, 1.0)
    assert info["regret"] == pytest.approx(env.means.max() - env.means[3])
    assert info["expected_reward"] == env.means[3] and info["is_optimal"] == (3 == env.best_arm)

    def rewards(seed: int) -> list[float]:
        bandit = BernoulliBanditEnv(arms_seed=7)
        bandit.reset(seed=seed)
        return [bandit.step(arm % 10)[1] for arm in range(200)]

    assert rewards(1) == rewards(1) and rewards(1) != rewards(2)  # reward draws follow the env's seed
    drawn = BernoulliBanditEnv(arms_seed=None)
    drawn.reset(seed=3)
    other = BernoulliBanditEnv(arms_seed=None)
    other.reset(seed=4)
    assert not np.array_equal(drawn.means, other.means)  # arms_seed=None: each env seed its own problem
    gaussian = GaussianBanditEnv(means=[0.0, 1.0], reward_std=0.5)
    gaussian.reset(seed=0)
    draws = [gaussian.step(1)[1] for _ in range(2000)]
    assert np.mean(draws) == pytest.approx(1.0, abs=0.05) and np.std(draws) == pytest.approx(0.5, abs=0.05)
    with pytest.raises(ValueError, match="probabilities"):
        BernoulliBanditEnv(means=[0.5, 1.5])
    assert gaussian.render() is None and BernoulliBanditEnv(render_mode="rgb_array").render().ndim == 3


@pytest.mark.parametrize("algo_class, kwargs", [
    (EpsilonGreedyBandit, {"exploration_initial_eps": 0.1, "exploration_final_eps": 0.1}),
    (UCB, {}),
    (ThompsonSampling, {}),
    (GradientBandit, {"learning_rate": 0.2}),
])
def test_each_bandit_finds_the_best_arm(algo_class, kwargs):
    env = make_vec_env(BERNOULLI, env_kwargs={"means": EASY}, seed=0)
    model = algo_class("BanditPolicy", env, seed=0, **kwargs)
    model.learn(1500)
    assert model.n_pulls == 1500
    best, _ = model.predict(0, deterministic=True)
    assert int(best) == 2
    pulls = model.policy.table("pull_counts")[0]
    assert pulls.sum() == 1500 and pulls.argmax() == 2
    assert 0 < model.cumulative_regret < 0.25 * 1500  # far below always pulling a random arm


def test_ucb_pulls_every_arm_first_and_logs_regret(tmp_path):
    env = make_vec_env(BERNOULLI, env_kwargs={"means": EASY}, seed=0)
    model = UCB("BanditPolicy", env, seed=0)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(4, log_interval=1)
    np.testing.assert_array_equal(model.policy.table("pull_counts")[0], [1, 1, 1, 1])
    model.learn(200, reset_num_timesteps=False)
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    assert "rollout/cumulative_regret" in header and "rollout/ep_rew_mean" in header
    regrets = 0.8 - np.asarray(EASY)
    counts = model.policy.table("pull_counts")[0]
    assert model.cumulative_regret == pytest.approx(float(counts @ regrets))


def test_thompson_posteriors():
    env = make_vec_env(BERNOULLI, env_kwargs={"means": [0.0, 1.0]}, seed=0)
    beta = ThompsonSampling("BanditPolicy", env, seed=0)
    beta.learn(100)
    alpha, failures, pulls = (beta.policy.table(name)[0] for name in ("beta_alpha", "beta_beta", "pull_counts"))
    np.testing.assert_array_equal(alpha, [1.0, 1.0 + pulls[1]])  # arm 1 always pays, arm 0 never
    np.testing.assert_array_equal(failures, [1.0 + pulls[0], 1.0])
    np.testing.assert_allclose(beta.policy.table("q_table")[0], alpha / (alpha + failures))

    gaussian_env = make_vec_env(GAUSSIAN, env_kwargs={"means": [0.0, 2.0, 1.0]}, seed=0)
    gaussian = ThompsonSampling("BanditPolicy", gaussian_env, prior="gaussian", seed=0)
    gaussian.learn(300)
    assert int(gaussian.predict(0, deterministic=True)[0]) == 1
    precision = gaussian.policy.table("posterior_precision")[0]
    np.testing.assert_allclose(precision, 1.0 + gaussian.policy.table("pull_counts")[0])

    with pytest.raises(ValueError, match="prior='gaussian'"):
        ThompsonSampling("BanditPolicy", make_vec_env(GAUSSIAN, seed=0), seed=0).learn(5)


def test_gradient_bandit_update_follows_sutton_and_barto():
    env = make_vec_env(BERNOULLI, env_kwargs={"means": EASY}, seed=0)
    model = GradientBandit("BanditPolicy", env, learning_rate=0.5, seed=0)
    preferences = model.policy.table("preferences")[0]
    preferences[:] = [0.0, 1.0, 0.0, 0.0]
    model.policy.table("reward_baseline")[0] = 0.25
    model.policy.table("baseline_count")[0] = 4
    probabilities = np.exp([0.0, 1.0, 0.0, 0.0]) / np.exp([0.0, 1.0, 0.0, 0.0]).sum()
    model._counts[0, 2] += 1
    model._update(0, 2, 1.0)
    expected = np.array([0.0, 1.0, 0.0, 0.0]) - 0.5 * 0.75 * probabilities
    expected[2] += 0.5 * 0.75
    np.testing.assert_allclose(preferences, expected)
    assert model.policy.table("reward_baseline")[0] == pytest.approx(0.25 + 0.75 / 5)
    actions, _ = model.predict(np.zeros(2000, dtype=np.int64))
    frequencies = np.bincount(actions, minlength=4) / 2000
    softmax = np.exp(expected) / np.exp(expected).sum()
    np.testing.assert_allclose(frequencies, softmax, atol=0.04)


def test_epsilon_greedy_optimistic_start_and_save_load(tmp_path):
    env = make_vec_env(BERNOULLI, env_kwargs={"means": EASY}, seed=0)
    model = EpsilonGreedyBandit("BanditPolicy", env, initial_value=5.0, exploration_initial_eps=0.0,
                                exploration_final_eps=0.0, learning_rate=0.1, seed=0)
    model.learn(4)
    # Optimism: each arm looks best until pulled, so the first pulls try every arm.
    assert (model.policy.table("pull_counts")[0] == 1).all()
    model.learn(300, reset_num_timesteps=False)
    model.save(tmp_path / "bandit")
    loaded = EpsilonGreedyBandit.load(tmp_path / "bandit")
    np.testing.assert_array_equal(loaded.policy.table("q_table"), model.policy.table("q_table"))
    assert loaded.cumulative_regret == model.cumulative_regret


@pytest.mark.parametrize("algo_class", [EpsilonGreedyBandit, ThompsonSampling, GradientBandit])
def test_a_seed_fixes_pulls_and_predictions_whatever_the_global_numpy_stream(algo_class):
    """Stochastic predict draws from the policy's seeded generator, not from ``np.random``."""

    def run(global_seed: int) -> tuple[np.ndarray, np.ndarray]:
        model = algo_class("BanditPolicy", make_vec_env(BERNOULLI, env_kwargs={"means": [0.4, 0.5, 0.6]}, seed=0),
                           seed=0)
        np.random.seed(global_seed)
        model.learn(100)
        np.random.seed(global_seed + 1)
        actions, _ = model.predict(np.zeros(200, dtype=np.int64), deterministic=False)
        return model.policy.table("pull_counts").copy(), actions

    pulls, actions = run(0)
    same_pulls, same_actions = run(777)
    np.testing.assert_array_equal(pulls, same_pulls)
    np.testing.assert_array_equal(actions, same_actions)
    assert len(set(actions.tolist())) > 1  # the draws are random, not a fixed arm
