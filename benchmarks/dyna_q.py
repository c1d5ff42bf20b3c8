"""Dyna-Q on the notes' cliff: episodes until the greedy policy is optimal, for n = 0, 5, 20, 50
planning steps per real step (n = 0 is Q-learning), over 20 seeds.

The bar (issue 4): with n = 20 the median is at most 40 episodes, against at least 150 for
Q-learning; more planning steps, fewer episodes. Settings are the notes': alpha 0.1, gamma 0.9,
epsilon 0.1, episodes starting at a random row of column 0. "Optimal" means the greedy policy walks
from the classic start (row 3, column 0) to the goal in 13 steps (return -13), checked after every
episode.

    python benchmarks/dyna_q.py [--seeds 20] [--max-episodes 1000] [--algo dyna_q_plus]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

OPTIMAL_RETURN = -13.0


class EpisodesToOptimal(BaseCallback):
    """Stops training at the first episode end where the greedy return from (3, 0) is optimal."""

    def __init__(self, max_episodes: int) -> None:
        super().__init__()
        self.max_episodes = max_episodes
        self.episodes = 0
        self.reached: int | None = None

    def _on_step(self) -> bool:
        from rlhub_tabular.cliff import greedy_return

        finished = int(np.sum(self.locals["dones"]))
        if not finished:
            return True
        self.episodes += finished
        if greedy_return(self.model.policy.table("q_table")) == OPTIMAL_RETURN:
            self.reached = self.episodes
            return False
        return self.episodes < self.max_episodes


def episodes_to_optimal(algo_class: type, n_planning_steps: int, seed: int, max_episodes: int) -> int | None:
    model = algo_class("TabularPolicy", "rlhub/Cliff-v0", learning_rate=0.1, gamma=0.9, n_planning_steps=n_planning_steps,
                       exploration_initial_eps=0.1, exploration_final_eps=0.1, seed=seed)
    callback = EpisodesToOptimal(max_episodes)
    model.learn(10**9, callback=callback)
    return callback.reached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--max-episodes", type=int, default=1000)
    parser.add_argument("--algo", choices=["dyna_q", "dyna_q_plus"], default="dyna_q")
    parser.add_argument("--planning-steps", type=int, nargs="+", default=[0, 5, 20, 50])
    args = parser.parse_args()

    from rlhub.envs import ensure_registered
    from rlhub.registry import get_algorithm

    ensure_registered("rlhub/Cliff-v0")
    algo_class = get_algorithm(args.algo).load()
    print(f"{args.algo} on rlhub/Cliff-v0 (alpha 0.1, gamma 0.9, epsilon 0.1), {args.seeds} seeds: "
          f"episodes until the greedy return from (3, 0) is {OPTIMAL_RETURN:g}")
    print("| n_planning_steps | median episodes | mean | min | max | seeds reached | wall time |")
    print("|---|---|---|---|---|---|---|")
    medians = {}
    for n in args.planning_steps:
        started = time.perf_counter()
        episodes = [episodes_to_optimal(algo_class, n, seed, args.max_episodes) for seed in range(args.seeds)]
        reached = [count for count in episodes if count is not None]
        # A seed that never got there counts as max_episodes + 1 (the median stays honest).
        counted = [count if count is not None else args.max_episodes + 1 for count in episodes]
        medians[n] = statistics.median(counted)
        print(f"| {n} | {medians[n]:g} | {np.mean(counted):.1f} | {min(counted)} | {max(counted)} | "
              f"{len(reached)}/{args.seeds} | {time.perf_counter() - started:.1f} s |", flush=True)
    if 0 in medians and 20 in medians:
        met = medians[20] <= 40 and medians[0] >= 150
        print(f"bar (n=20 median <= 40, n=0 median >= 150): {'met' if met else 'NOT met'}")
    ordered = [medians[n] for n in sorted(medians)]
    print(f"more planning, fewer episodes: {'yes' if all(a >= b for a, b in itertools.pairwise(ordered)) else 'no'}")


if __name__ == "__main__":
    main()
