"""Scaling of DPPO's rollout workers, and plain PPO's subprocess envs beside it, on a slow env.

The bar (issue 19): DPPO's env steps/s with 2 workers >= 1.6x its steps/s with 1 worker on
``rlhub/SlowCartPole-v1`` (CartPole sleeping 1 ms a step, so stepping dominates). Each worker steps
4 envs; PPO with ``SubprocVecEnv`` steps 4, then 8, envs in as many processes. Steps/s are counted
from the end of the first iteration to the end (no start-up: Ray's, the processes'), rollouts and
updates included.

    python benchmarks/distributed_scaling.py [--timesteps 30000] [--n-steps 256]
"""

from __future__ import annotations

import argparse
import statistics
import time

from rich.console import Console
from rich.table import Table
from rlhub_distributed.dppo import DPPO
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from rlhub.envs import ensure_registered, make_vec_env

ENV_ID = "rlhub/SlowCartPole-v1"
ENVS_PER_WORKER = 4


class Throughput(BaseCallback):
    """Steps and seconds from the end of the first rollout to the end of training, and DPPO's
    overhead per iteration (its wait beyond the slowest worker's stepping)."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[tuple[float, int]] = []
        self.overheads: list[float] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.marks.append((time.perf_counter(), self.num_timesteps))
        if getattr(self.model, "workers", None) is not None:
            self.overheads.append(self.model.workers.last_overhead)

    def _on_training_end(self) -> None:
        self.marks.append((time.perf_counter(), self.num_timesteps))

    @property
    def steps_per_second(self) -> float:
        (start, first), (end, last) = self.marks[0], self.marks[-1]
        return (last - first) / (end - start)


def measure(model, timesteps: int) -> tuple[float, float | None]:
    """Steps/s, and the median overhead of an iteration in ms (DPPO only)."""
    throughput = Throughput()
    model.learn(timesteps, callback=throughput)
    overhead = statistics.median(throughput.overheads[1:]) * 1000 if len(throughput.overheads) > 1 else None
    return throughput.steps_per_second, overhead


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=30_000)
    parser.add_argument("--n-steps", type=int, default=256)
    args = parser.parse_args()
    gym_id = ensure_registered(ENV_ID)
    ppo_kwargs = dict(n_steps=args.n_steps, batch_size=256, n_epochs=10, device="cpu", seed=0)
    rows = []
    for n_workers in (1, 2):
        model = DPPO("MlpPolicy", gym_id, n_workers=n_workers, envs_per_worker=ENVS_PER_WORKER, **ppo_kwargs)
        rows.append((f"dppo, {n_workers} worker(s) x {ENVS_PER_WORKER} envs", *measure(model, args.timesteps)))
    for n_envs in (ENVS_PER_WORKER, 2 * ENVS_PER_WORKER):
        env = make_vec_env(ENV_ID, n_envs=n_envs, seed=0, vec_env="subproc")  # rlhub train's, as --vec-env makes it
        rows.append((f"ppo, --vec-env subproc, {n_envs} envs", *measure(PPO("MlpPolicy", env, **ppo_kwargs),
                                                                         args.timesteps)))
        env.close()
    table = Table(title=f"{ENV_ID}: env steps/s after the first iteration ({args.timesteps} steps, "
                        f"n_steps {args.n_steps})")
    for column in ("setup", "steps/s", "x the first of its kind", "overhead per iteration (ms)"):
        table.add_column(column)
    for index, (name, speed, overhead) in enumerate(rows):
        baseline = rows[index - index % 2][1]
        table.add_row(name, f"{speed:.0f}", f"{speed / baseline:.2f}", "-" if overhead is None else f"{overhead:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
