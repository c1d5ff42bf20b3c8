"""Speed of tabular learning against the environment itself, on FrozenLake-v1.

The bar (issue 4): Q-learning's ``learn`` runs at >= 0.5 of the rate at which a bare loop steps the
same environment with random actions (``gym.make`` + ``env.step(env.action_space.sample())``), both
measured in this one run. The learner's environment is what ``rlhub train`` builds (``Monitor`` in a
``DummyVecEnv``); rounds alternate between the two to share the machine's load fairly, and the
medians are compared.

    python benchmarks/tabular_speed.py [--steps 100000] [--rounds 3] [--algo q_learning]
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym

ENV_ID = "FrozenLake-v1"


def bare_loop_rate(steps: int, seed: int) -> float:
    env = gym.make(ENV_ID)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    started = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - started)


def learn_rate(algo_id: str, steps: int, seed: int) -> float:
    from rlhub.envs import make_vec_env
    from rlhub.registry import get_algorithm

    algo_class = get_algorithm(algo_id).load()
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
    model = algo_class("TabularPolicy", env, seed=seed)
    started = time.perf_counter()
    model.learn(steps)
    rate = model.num_timesteps / (time.perf_counter() - started)
    env.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--algo", default="q_learning")
    args = parser.parse_args()

    learn_rate(args.algo, 1000, 0)  # imports and first-call costs out of the measurement
    bare, learned = [], []
    for round_index in range(args.rounds):
        bare.append(bare_loop_rate(args.steps, round_index))
        learned.append(learn_rate(args.algo, args.steps, round_index))
        print(f"round {round_index}: bare loop {bare[-1]:,.0f} steps/s, {args.algo}.learn {learned[-1]:,.0f} steps/s",
              flush=True)
    ratio = statistics.median(learned) / statistics.median(bare)
    print(f"{ENV_ID}, {args.steps} steps x {args.rounds} rounds (medians): bare loop {statistics.median(bare):,.0f} "
          f"steps/s, {args.algo}.learn {statistics.median(learned):,.0f} steps/s")
    print(f"speed ratio learn / bare loop = {ratio:.2f} (bar >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
