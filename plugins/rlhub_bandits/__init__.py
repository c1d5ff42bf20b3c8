"""Built-in plugin: multi-armed bandit algorithms and the k-armed bandit environments they run on.

Environments: ``rlhub/BernoulliBandit-v0`` and ``rlhub/GaussianBandit-v0`` (10 arms by default, one
pull per episode, the expected regret of each pull in ``info``); see :mod:`rlhub_bandits.envs`.
"""

from __future__ import annotations

from rlhub.hookspecs import hookimpl
from rlhub.spec import AlgorithmSpec

BERNOULLI_BANDIT = "rlhub/BernoulliBandit-v0"
GAUSSIAN_BANDIT = "rlhub/GaussianBandit-v0"


def _spec(algo_id: str, class_path: str, summary: str) -> AlgorithmSpec:
    return AlgorithmSpec(algo_id, f"rlhub_bandits.{class_path}", ("Discrete",), ("Discrete",), kind="bandit",
                         summary=summary, test_env_id=BERNOULLI_BANDIT)


@hookimpl
def rlhub_algorithms() -> list[AlgorithmSpec]:
    return [
        _spec("epsilon_greedy", "epsilon_greedy:EpsilonGreedyBandit", "Epsilon-greedy multi-armed bandit"),
        _spec("ucb", "ucb:UCB", "UCB1 multi-armed bandit (upper confidence bounds)"),
        _spec("thompson", "thompson:ThompsonSampling", "Thompson sampling bandit (Beta-Bernoulli or Gaussian)"),
        _spec("gradient_bandit", "gradient_bandit:GradientBandit", "Gradient bandit (softmax preferences)"),
    ]


@hookimpl
def rlhub_register_envs() -> None:
    import gymnasium as gym

    if BERNOULLI_BANDIT not in gym.registry:
        gym.register(BERNOULLI_BANDIT, entry_point="rlhub_bandits.envs:BernoulliBanditEnv")
    if GAUSSIAN_BANDIT not in gym.registry:
        gym.register(GAUSSIAN_BANDIT, entry_point="rlhub_bandits.envs:GaussianBanditEnv")
