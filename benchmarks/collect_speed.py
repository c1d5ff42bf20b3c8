"""Speed of ``rlhub collect --algo random`` against the environment itself, on CartPole-v1.

The bar (issue 13): collecting writes >= 20k transitions/s. The ceiling is a bare loop stepping the
same environment with random actions; rounds alternate between the two to share the machine's load,
and the medians are printed, with the time of writing (Minari's HDF5 file) and of reading the
dataset back with :func:`rlhub.datasets.load_dataset` apart. Random CartPole is the worst case for
Minari's layout: its episodes are ~22 steps, and HDF5 costs per episode (a group and five datasets).

    python benchmarks/collect_speed.py [--steps 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import gymnasium as gym

ENV_ID = "CartPole-v1"


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


def collect_rates(steps: int, seed: int, round_index: int) -> tuple[float, float, float, int]:
    """(transitions/s of collect overall, of its play alone, of load_dataset, episodes)."""
    from rlhub import datasets

    env = gym.make(ENV_ID)
    dataset_id = f"bench/{ENV_ID}/random-v{round_index}"
    played = []

    def on_step(transitions: int, episodes: int) -> None:
        if transitions == steps:
            played.append(time.perf_counter())

    started = time.perf_counter()
    result = datasets.collect(env, datasets.random_policy(env.action_space, seed), dataset_id, n_steps=steps,
                              seed=seed, on_step=on_step)
    finished = time.perf_counter()
    data = datasets.load_dataset(dataset_id)
    loaded = time.perf_counter()
    assert data.n_transitions == steps
    return (steps / (finished - started), steps / (played[0] - started), steps / (loaded - finished),
            result.n_episodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ["MINARI_DATASETS_PATH"] = tempfile.mkdtemp(prefix="rlhub-collect-speed-")
    bare, overall, play, load = [], [], [], []
    for round_index in range(args.rounds):
        bare.append(bare_loop_rate(args.steps, round_index))
        total, played, read, episodes = collect_rates(args.steps, round_index, round_index)
        overall.append(total)
        play.append(played)
        load.append(read)
        print(f"round {round_index}: bare {bare[-1]:.0f}/s, collect {total:.0f}/s (playing {played:.0f}/s), "
              f"load {read:.0f}/s, {episodes} episodes")
    print(f"median over {args.rounds} rounds of {args.steps} steps on {ENV_ID}:")
    print(f"  bare env loop (ceiling)    {statistics.median(bare):>9.0f} transitions/s")
    print(f"  rlhub collect --algo random {statistics.median(overall):>8.0f} transitions/s "
          f"({statistics.median(overall) / statistics.median(bare):.2f} of the ceiling; bar: 20000)")
    print(f"    of which playing only    {statistics.median(play):>9.0f} transitions/s")
    print(f"  load_dataset               {statistics.median(load):>9.0f} transitions/s")


if __name__ == "__main__":
    main()
