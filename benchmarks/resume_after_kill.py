"""Killed, then resumed: does `rlhub train --resume` lose what was learned?

For each seed, PPO learns CartPole-v1 with its zoo config (plus `normalize`, so that VecNormalize's
statistics must survive the kill; `--no-normalize` for the config as shipped) twice through
`rlhub train`, each in its own process: once uninterrupted, and once killed with SIGKILL as soon as
a checkpoint at half the budget or later exists, then continued with `rlhub train --resume`. It
checks that the resumed run starts at its checkpoint's steps and statistics, evaluates both final
models (deterministic, with their run's statistics), and prints the mean +/- std across seeds of
each. The bar: the resumed runs' mean within noise of the uninterrupted runs'.

    python benchmarks/resume_after_kill.py [--seeds 0 1 2] [--timesteps 100000] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

N_ENVS = 8  # the zoo config of ppo on CartPole-v1


def rlhub_train(*args: object) -> list[str]:
    return [sys.executable, "-m", "rlhub.cli", "train", *map(str, args), "--eval-freq", "-1", "-q"]


def train_command(folder: Path, args: argparse.Namespace, seed: int) -> list[str]:
    params = ["-params", "normalize:True"] if args.normalize else []
    return rlhub_train("--algo", "ppo", "--env", "CartPole-v1", "-n", args.timesteps, "--seed", seed, "-f", folder,
                       *params)


def uninterrupted(folder: Path, args: argparse.Namespace, seed: int) -> Path:
    subprocess.run(train_command(folder, args, seed), check=True, capture_output=True)
    return folder / "ppo" / "CartPole-v1_1"


def killed_then_resumed(folder: Path, args: argparse.Namespace, seed: int) -> tuple[Path, int]:
    """The resumed run's folder, and the step count of the checkpoint it resumed from."""
    from rlhub.run_folder import checkpoint_steps

    parent = folder / "ppo" / "CartPole-v1_1"
    process = subprocess.Popen(train_command(folder, args, seed), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    while process.poll() is None:
        if any((checkpoint_steps(path) or 0) * 2 >= args.timesteps for path in parent.glob("rl_model_*_steps.zip")):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.1)
    if process.wait() != -signal.SIGKILL:
        raise RuntimeError(f"seed {seed}: the run ended (exit {process.returncode}) before it could be killed")
    start = max(checkpoint_steps(path) for path in parent.glob("rl_model_*_steps.zip"))
    subprocess.run(rlhub_train("--resume", parent, "-f", folder), check=True, capture_output=True)
    return folder / "ppo" / "CartPole-v1_2", start


def check_continuity(parent: Path, child: Path, start: int) -> str:
    """That the resumed run began at its checkpoint's steps and (when normalizing) statistics."""
    from rlhub.run_folder import Manifest, read_model_summary
    from rlhub.safe_loading import read_vec_normalize

    manifest = Manifest.read(child)
    assert (manifest.parent_run, manifest.initial_timesteps) == (str(parent.resolve()), start), manifest
    if not (parent / f"rl_model_vecnormalize_{start}_steps.pkl").is_file():
        return f"from step {start}"
    steps = read_model_summary(child / manifest.model_file).num_timesteps - start
    count = read_vec_normalize(parent / f"rl_model_vecnormalize_{start}_steps.pkl")["obs_rms"]["count"]
    final = read_vec_normalize(child / "vec_normalize.pkl")["obs_rms"]["count"]
    # the checkpoint's count, then the reset's observations and one per env step
    assert abs(final - (count + N_ENVS + steps)) < 1e-3, (final, count, steps)
    return f"from step {start}, VecNormalize count {count:.0f} -> {final:.0f}"


def final_return(run_dir: Path, seed: int, episodes: int) -> float:
    from rlhub.evaluation import evaluate
    from rlhub.run_folder import load_agent

    agent = load_agent(run_dir, device="cpu", seed=seed + 1000)
    try:
        return evaluate(agent.model, agent.env, n_episodes=episodes).mean
    finally:
        agent.env.close()


def summary(returns: list[float]) -> str:
    spread = statistics.stdev(returns) if len(returns) > 1 else 0.0
    return f"{statistics.mean(returns):.1f} +/- {spread:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--timesteps", type=int, default=100_000, help="the RL Zoo's budget for this config")
    parser.add_argument("--episodes", type=int, default=20, help="evaluation episodes per final model")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs trained at once")
    parser.add_argument("--no-normalize", dest="normalize", action="store_false")
    parser.add_argument("--folder", type=Path, default=None, help="keep the runs here (default: a temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = args.folder or Path(scratch)
        started = time.perf_counter()
        with ThreadPoolExecutor(args.jobs) as pool:
            plain = {seed: pool.submit(uninterrupted, root / f"uninterrupted_{seed}", args, seed) for seed in args.seeds}
            resumed = {seed: pool.submit(killed_then_resumed, root / f"killed_{seed}", args, seed)
                       for seed in args.seeds}
            results = {"uninterrupted": [], "killed at ~50% and resumed": []}
            for seed in args.seeds:
                child, start = resumed[seed].result()
                continuity = check_continuity(root / f"killed_{seed}" / "ppo" / "CartPole-v1_1", child, start)
                plain_return = final_return(plain[seed].result(), seed, args.episodes)
                resumed_return = final_return(child, seed, args.episodes)
                results["uninterrupted"].append(plain_return)
                results["killed at ~50% and resumed"].append(resumed_return)
                print(f"seed {seed}: uninterrupted {plain_return:.1f}; resumed {resumed_return:.1f} ({continuity})",
                      flush=True)
    print(f"PPO CartPole-v1 (zoo config{' + normalize' if args.normalize else ''}), {args.timesteps} steps, "
          f"{len(args.seeds)} seeds, final deterministic return over {args.episodes} episodes, mean +/- std across "
          f"seeds ({time.perf_counter() - started:.0f} s):")
    for name, returns in results.items():
        print(f"  {name}: {summary(returns)}")


if __name__ == "__main__":
    main()
