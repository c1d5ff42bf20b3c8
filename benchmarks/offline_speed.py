"""Gradient steps per second of the offline family (rlhub_offline), one torch thread, batch 256.

    python benchmarks/offline_speed.py [--steps 2000] [--only cql_discrete]

Rows: BC on CartPole-v1, discrete CQL on CartPole-v1 (the default 64x64 Q-network), continuous CQL
on Pendulum-v1 (the default SAC networks, 256x256, and the zoo config's networks and actor). The data are 20k
transitions of a random policy: the speed does not depend on what the data hold. Prints the rate in
wall-clock time and in this process's CPU time; on a machine shared with other work the second is
the one to compare (the wall-clock rate falls with the other processes' load).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym
import torch as th

from rlhub.datasets import OfflineData, play_to_memory, random_policy


def random_transitions(env_id: str, n_transitions: int, seed: int = 0) -> OfflineData:
    """``n_transitions`` of a uniformly random policy, kept in memory."""
    env = gym.make(env_id)
    return play_to_memory(env, random_policy(env.action_space, seed), n_steps=n_transitions, seed=seed,
                          dataset_id=f"random/{env_id}")


def measure(algo_class: type, env_id: str, steps: int, **kwargs: Any) -> tuple[float, float]:
    """(gradient steps per wall-clock second, per CPU second of this process) after a warm-up."""
    model = algo_class("MlpPolicy", None, dataset=random_transitions(env_id, 20_000), batch_size=256, seed=0,
                       device="cpu", **kwargs)
    model.learn(min(100, steps))
    wall, cpu = time.perf_counter(), time.process_time()
    model.learn(steps)
    return steps / (time.perf_counter() - wall), steps / (time.process_time() - cpu)


def main() -> None:
    from rlhub_offline.bc import BC
    from rlhub_offline.cql import CQL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="gradient steps per row (continuous CQL: a tenth)")
    parser.add_argument("--only", help="run one row: bc, cql_discrete, cql_continuous, cql_continuous_zoo")
    args = parser.parse_args()
    th.set_num_threads(1)
    rows: dict[str, tuple[type, str, int, dict[str, Any]]] = {
        "bc": (BC, "CartPole-v1", args.steps, {}),
        "cql_discrete": (CQL, "CartPole-v1", args.steps, {}),
        "cql_continuous": (CQL, "Pendulum-v1", max(args.steps // 10, 20), {}),
        "cql_continuous_zoo": (CQL, "Pendulum-v1", max(args.steps // 10, 20),
                               {"policy_kwargs": {"net_arch": [64, 64]}, "greedy_weight": 10.0}),
    }
    print(f"{'row':<22}{'env':<14}{'steps':>7}{'steps/s (wall)':>16}{'steps/s (cpu)':>15}")
    for name, (algo_class, env_id, steps, kwargs) in rows.items():
        if args.only and name != args.only:
            continue
        wall_rate, cpu_rate = measure(algo_class, env_id, steps, **kwargs)
        print(f"{name:<22}{env_id:<14}{steps:>7}{wall_rate:>16.1f}{cpu_rate:>15.1f}", flush=True)


if __name__ == "__main__":
    main()
