"""GAIL's throughput against plain PPO with the same PPO settings, side by side in one process.

    python benchmarks/imitation_speed.py [--steps 50000] [--dataset rlhub/CartPole-v1/ppo-expert10-v0]

Both train on CartPole-v1 with 8 environments and GAIL's zoo settings for its PPO generator
(zoo_configs/gail.yml); the bar is GAIL's steps per CPU second >= 0.6 of PPO's. Prints steps per
wall-clock second and per CPU second of this process (the second is the one to compare on a
machine shared with other work), and their ratio. One torch thread, as the benchmarks run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch as th
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env


def measure(model, steps: int) -> tuple[float, float]:
    """(steps per wall-clock second, per CPU second) of ``model.learn(steps)`` after a warm-up."""
    model.learn(2048)
    wall, cpu = time.perf_counter(), time.process_time()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - wall), steps / (time.process_time() - cpu)


def main() -> None:
    from rlhub_imitation.gail import GAIL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--dataset", default="rlhub/CartPole-v1/ppo-expert10-v0")
    args = parser.parse_args()
    th.set_num_threads(1)
    config = yaml.safe_load((Path(__file__).parents[1] / "zoo_configs" / "gail.yml").read_text())["CartPole-v1"]
    generator_kwargs = dict(config["generator_kwargs"], learning_rate=float(config["generator_kwargs"]["learning_rate"]))
    rows = {
        "ppo": PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=8, seed=0), seed=0, device="cpu",
                   **generator_kwargs),
        "gail": GAIL("MlpPolicy", make_vec_env("CartPole-v1", n_envs=8, seed=0), dataset=args.dataset, seed=0,
                     device="cpu", generator_kwargs=generator_kwargs, n_disc_updates=config["n_disc_updates"],
                     disc_batch_size=config["disc_batch_size"], disc_net_arch=config["disc_net_arch"]),
    }
    rates = {}
    print(f"{'algo':<8}{'steps':>8}{'steps/s (wall)':>16}{'steps/s (cpu)':>15}")
    for name, model in rows.items():
        rates[name] = measure(model, args.steps)
        print(f"{name:<8}{args.steps:>8}{rates[name][0]:>16.0f}{rates[name][1]:>15.0f}", flush=True)
    print(f"gail / ppo: {rates['gail'][0] / rates['ppo'][0]:.2f} (wall), {rates['gail'][1] / rates['ppo'][1]:.2f} (cpu); "
          "bar: >= 0.6 per CPU second")


if __name__ == "__main__":
    main()
