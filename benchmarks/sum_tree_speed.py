"""Speed of prioritized replay's sum tree: sampling and updating a batch of 256 among 1M priorities.

The bar (issue 18): sampling a batch of 256 from 1M entries in well under a millisecond. Prints the
median over rounds of each operation, the whole ``PrioritizedReplayBuffer.sample`` (tree walk,
importance weights and the transitions' gather) on a CartPole-sized buffer beside it.

    python benchmarks/sum_tree_speed.py [--size 1000000] [--batch 256] [--rounds 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np
from rlhub_dqn_family.common.prioritized_replay import PrioritizedReplayBuffer
from rlhub_dqn_family.common.sum_tree import SumTree


def median_microseconds(operation, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        operation()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    tree = SumTree(args.size)
    tree.update(np.arange(args.size), rng.random(args.size))
    sample = median_microseconds(lambda: tree.sample(args.batch, rng), args.rounds)
    update = median_microseconds(lambda: tree.update(rng.integers(0, args.size, args.batch), rng.random(args.batch)),
                                 args.rounds)

    buffer = PrioritizedReplayBuffer(args.size, gym.spaces.Box(-5, 5, (4,)), gym.spaces.Discrete(2), device="cpu")
    buffer.observations[:] = rng.random(buffer.observations.shape, dtype=np.float32)
    buffer.full = True
    buffer.tree.update(np.arange(args.size), rng.random(args.size))
    buffer_sample = median_microseconds(lambda: buffer.sample(args.batch), args.rounds)

    print(f"sum tree over {args.size:,} priorities, batch {args.batch}, median of {args.rounds} rounds:")
    print(f"  sample: {sample:8.1f} us")
    print(f"  update: {update:8.1f} us")
    print(f"  PrioritizedReplayBuffer.sample (CartPole-sized transitions, as tensors): {buffer_sample:8.1f} us")


if __name__ == "__main__":
    main()
