"""rlhub's overhead over raw Stable-Baselines3, and its start-up latency.

Trains PPO on CartPole-v1 with the same hyperparameters (rlhub's zoo config) through raw SB3 and
through `rlhub train`, alternating, and prints the steps/s ratio rlhub/raw (bar: >= 0.95). Then
times `rlhub --help` and `rlhub algos` (bar: < 1.5 s each).

    python benchmarks/overhead.py [--timesteps 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def raw_sb3_steps_per_second(timesteps: int, seed: int) -> float:
    """The RL Zoo config of PPO on CartPole-v1, built by hand with SB3 only."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.utils import LinearSchedule

    torch.set_num_threads(1)  # as `rlhub train` does by default (--num-threads 1)
    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
                learning_rate=LinearSchedule(0.001, 0.0, 1.0), clip_range=LinearSchedule(0.2, 0.0, 1.0), seed=seed,
                device="cpu", verbose=0)
    started = time.perf_counter()
    model.learn(timesteps)
    elapsed = time.perf_counter() - started
    env.close()
    return model.num_timesteps / elapsed


def raw_sb3_in_fresh_process(timesteps: int, seed: int) -> float:
    """Raw SB3 in its own process, so both sides pay the same start-up and lazy-import costs."""
    output = subprocess.run([sys.executable, __file__, "--raw-worker", "--timesteps", str(timesteps), "--seed",
                             str(seed)], check=True, capture_output=True, text=True).stdout
    return float(output.strip().splitlines()[-1])


def rlhub_steps_per_second(timesteps: int, seed: int) -> float:
    """`rlhub train` as a user runs it (TensorBoard and monitor files on, no evaluation, like the raw run)."""
    with tempfile.TemporaryDirectory() as log_folder:
        output = subprocess.run(
            ["rlhub", "train", "--algo", "ppo", "--env", "CartPole-v1", "-n", str(timesteps), "--seed", str(seed),
             "-f", log_folder, "--eval-freq", "-1", "--device", "cpu", "-q"],
            check=True, capture_output=True, text=True,
        ).stdout
    match = re.search(r"\(([\d.]+) steps/s\)", output)
    if match is None:
        sys.exit(f"could not read steps/s from rlhub train's output:\n{output}")
    return float(match.group(1))


def seconds(command: list[str], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=100_000, help="the RL Zoo's budget for this config")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--raw-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_worker:
        print(raw_sb3_steps_per_second(args.timesteps, args.seed))
        return

    raw, wrapped = [], []
    for repeat in range(args.repeats):
        raw.append(raw_sb3_in_fresh_process(args.timesteps, seed=repeat))
        wrapped.append(rlhub_steps_per_second(args.timesteps, seed=repeat))
        print(f"repeat {repeat}: raw SB3 {raw[-1]:.0f} steps/s, rlhub train {wrapped[-1]:.0f} steps/s")
    ratio = statistics.median(wrapped) / statistics.median(raw)
    print(f"PPO CartPole-v1, {args.timesteps} steps x {args.repeats}: raw SB3 median {statistics.median(raw):.0f} "
          f"steps/s, rlhub median {statistics.median(wrapped):.0f} steps/s")
    print(f"overhead ratio rlhub/raw = {ratio:.3f} (bar >= 0.95: {'met' if ratio >= 0.95 else 'NOT met'})")
    for command in (["rlhub", "--help"], ["rlhub", "algos"]):
        elapsed = seconds(command)
        print(f"`{' '.join(command)}`: {elapsed:.2f} s median of 5 (bar < 1.5 s: {'met' if elapsed < 1.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
