"""Bandits: 10 Bernoulli arms, 5000 pulls, 30 seeds (each seed its own arms and its own learning seed).

The bar (issue 4): Thompson sampling has the lowest mean regret; epsilon-greedy, UCB1 and Thompson
each collect at least 0.97 of the best arm's expected reward (collected reward / (pulls * best
mean), averaged over seeds). Hyperparameters are the zoo configs' ``rlhub/BernoulliBandit-v0``
sections; regret is the expected (pseudo-)regret the environment reports per pull.

    python benchmarks/bandits.py [--seeds 30] [--pulls 5000] [--env rlhub/GaussianBandit-v0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

ALGOS = ("epsilon_greedy", "ucb", "thompson", "gradient_bandit")
COLLECT_BAR = 0.97


class RewardTotals(BaseCallback):
    """Sums the rewards and the pulled arms' expected rewards."""

    def __init__(self) -> None:
        super().__init__()
        self.reward = 0.0
        self.expected = 0.0

    def _on_step(self) -> bool:
        self.reward += float(np.sum(self.locals["rewards"]))
        self.expected += sum(info.get("expected_reward", 0.0) for info in self.locals["infos"])
        return True


def run(algo_id: str, env_id: str, seed: int, pulls: int) -> tuple[float, float, float]:
    """(cumulative regret, collected / best expected, expected collected / best expected)."""
    from rlhub.config import load_zoo_config
    from rlhub.envs import make_vec_env
    from rlhub.registry import get_algorithm

    spec = get_algorithm(algo_id)
    algo_class = spec.load()
    config = load_zoo_config(algo_id, env_id, algo_class)
    env = make_vec_env(env_id, n_envs=1, seed=seed, env_kwargs={"arms_seed": seed})
    model = algo_class(config.policy, env, seed=seed, **config.hyperparams)
    totals = RewardTotals()
    model.learn(pulls, callback=totals)
    best = pulls * env.get_attr("best_mean")[0]
    env.close()
    return model.cumulative_regret, totals.reward / best, totals.expected / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--pulls", type=int, default=5000)
    parser.add_argument("--env", default="rlhub/BernoulliBandit-v0")
    args = parser.parse_args()

    print(f"{args.env}, 10 arms, {args.pulls} pulls, {args.seeds} seeds (arms_seed = seed)")
    print("| algo | mean regret | std | collected / best (mean, min) | expected collected / best | wall time |")
    print("|---|---|---|---|---|---|")
    regrets = {}
    fractions = {}
    for algo_id in ALGOS:
        started = time.perf_counter()
        results = np.array([run(algo_id, args.env, seed, args.pulls) for seed in range(args.seeds)])
        regrets[algo_id] = results[:, 0].mean()
        fractions[algo_id] = results[:, 1].mean()
        print(f"| {algo_id} | {results[:, 0].mean():.1f} | {results[:, 0].std():.1f} | "
              f"{results[:, 1].mean():.4f}, {results[:, 1].min():.4f} | {results[:, 2].mean():.4f} | "
              f"{time.perf_counter() - started:.1f} s |", flush=True)
    if args.env == "rlhub/BernoulliBandit-v0":
        lowest = min(regrets, key=regrets.get)
        collect = all(fractions[algo] >= COLLECT_BAR for algo in ("epsilon_greedy", "ucb", "thompson"))
        print(f"lowest mean regret: {lowest} (bar: thompson) -> {'met' if lowest == 'thompson' else 'NOT met'}")
        print(f"epsilon_greedy, ucb, thompson collect >= {COLLECT_BAR} of the best arm: {'met' if collect else 'NOT met'}")


if __name__ == "__main__":
    main()
