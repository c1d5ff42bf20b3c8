"""rlhub's overhead over raw Stable-Baselines3, and its start-up latency.

Trains PPO on CartPole-v1 with the same hyperparameters (rlhub's zoo config) through raw SB3 and
through rlhub's training path (`rlhub.experiment.train`, what `rlhub train` runs: zoo config, run
folder, monitor files, TensorBoard), each in a fresh process, alternating, and prints the steps/s
ratio rlhub/raw (bar: >= 0.95). Steps/s is training throughput (over `learn()`, as `rlhub train`
reports it), per wall-clock second and per CPU second of the training process: on a shared machine
the second is the one other processes cannot skew. Then it times `rlhub --help` and `rlhub algos`
(bar: < 1.5 s each), in wall-clock and CPU seconds.

    python benchmarks/overhead.py [--timesteps 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time


def raw_sb3(timesteps: int, seed: int) -> tuple[float, float]:
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
    wall, cpu = time.perf_counter(), time.process_time()
    model.learn(timesteps)
    env.close()
    return model.num_timesteps / (time.perf_counter() - wall), model.num_timesteps / (time.process_time() - cpu)


def rlhub_train(timesteps: int, seed: int) -> tuple[float, float]:
    """rlhub's training path as `rlhub train` runs it, without evaluation (the raw run has none)."""
    from rlhub.experiment import TrainOptions, train

    with tempfile.TemporaryDirectory() as log_folder:
        result = train(TrainOptions("ppo", "CartPole-v1", n_timesteps=timesteps, seed=seed, log_folder=log_folder,
                                    eval_freq=-1, device="cpu", verbose=0))
        return result.steps_per_second, result.timesteps / result.cpu_time


WORKERS = {"raw": raw_sb3, "rlhub": rlhub_train}


def in_fresh_process(worker: str, timesteps: int, seed: int) -> tuple[float, float]:
    """Run a worker in its own process, so both sides pay the same start-up and lazy-import costs."""
    output = subprocess.run([sys.executable, __file__, "--worker", worker, "--timesteps", str(timesteps), "--seed",
                             str(seed)], check=True, capture_output=True, text=True).stdout
    wall, cpu = output.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def seconds(command: list[str], repeats: int = 5) -> tuple[float, float]:
    """Median wall-clock and CPU (user + system) seconds of a command."""
    import resource

    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=100_000, help="the RL Zoo's budget for this config")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(*WORKERS[args.worker](args.timesteps, args.seed))
        return

    results: dict[str, list[tuple[float, float]]] = {"raw": [], "rlhub": []}
    for repeat in range(args.repeats):
        for worker in ("raw", "rlhub"):
            results[worker].append(in_fresh_process(worker, args.timesteps, seed=repeat))
        print(f"repeat {repeat}: " + ", ".join(f"{worker} {wall:.0f} steps/s ({cpu:.0f} per CPU second)"
                                                 for worker, ((wall, cpu), *_) in
                                                 ((w, results[w][-1:]) for w in results)))
    for index, unit in ((0, "wall-clock"), (1, "CPU-time")):
        raw = statistics.median(r[index] for r in results["raw"])
        wrapped = statistics.median(r[index] for r in results["rlhub"])
        ratio = wrapped / raw
        print(f"PPO CartPole-v1, {args.timesteps} steps x {args.repeats}, {unit} medians: raw SB3 {raw:.0f} steps/s, "
              f"rlhub {wrapped:.0f} steps/s, ratio rlhub/raw = {ratio:.3f} "
              f"(bar >= 0.95: {'met' if ratio >= 0.95 else 'NOT met'})")
    for command in (["rlhub", "--help"], ["rlhub", "algos"]):
        wall, cpu = seconds(command)
        print(f"`{' '.join(command)}`: {wall:.2f} s wall-clock, {cpu:.2f} s CPU, medians of 5 "
              f"(bar < 1.5 s: {'met' if wall < 1.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
