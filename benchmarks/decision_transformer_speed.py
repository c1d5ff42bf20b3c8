"""Gradient steps per second of the Decision Transformer on a CartPole-v1 dataset, one torch thread.

The bar (issue 13): >= 38.5 gradient steps/s, five times d3rlpy's 7.7. The dataset is 20k transitions
of a heuristic controller (``action = obs[2] + obs[3] > 0``, 30% random actions); the speed does not
depend on what the data holds, only on its episode lengths (padding). Each configuration is timed
over ``--steps`` gradient steps of ``learn`` (sampling, forward, backward, AdamW step, clipping,
logging) after a warm-up, ``--rounds`` times; the median is printed. Arithmetic to keep in mind: one
step of (embed 64, 3 layers, batch 64, K 20) is 3,840 tokens through 3 blocks, about 3.4 GFLOP
forward and backward, so 38.5 steps/s asks ~130 GFLOP/s of one core.

    python benchmarks/decision_transformer_speed.py [--steps 100] [--rounds 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlhub.datasets import OfflineData, perturbed, play_to_memory

#: (name, batch_size, context_length, policy_kwargs)
CONFIGURATIONS = (
    ("d3rlpy-comparison: embed 64, 3 layers, 1 head, batch 64, K 20", 64, 20,
     {"embed_dim": 64, "n_layers": 3, "n_heads": 1}),
    ("authors' gym defaults: embed 128, 3 layers, 1 head, batch 64, K 20", 64, 20,
     {"embed_dim": 128, "n_layers": 3, "n_heads": 1}),
    ("zoo config CartPole-v1: embed 32, 2 layers, 1 head, batch 32, K 20", 32, 20,
     {"embed_dim": 32, "n_layers": 2, "n_heads": 1}),
)


def heuristic_cartpole(n_transitions: int, epsilon: float = 0.3, seed: int = 0) -> OfflineData:
    """A balancing controller's CartPole play with epsilon-random actions, kept in memory."""
    env = gym.make("CartPole-v1")
    policy = perturbed(lambda obs: int(obs[2] + obs[3] > 0), env.action_space, np.random.default_rng(seed),
                       epsilon=epsilon)
    return play_to_memory(env, policy, n_steps=n_transitions, seed=seed, dataset_id="heuristic-cartpole")


def steps_per_second(data: OfflineData, batch_size: int, context_length: int, policy_kwargs: dict[str, Any],
                     steps: int, device: str) -> float:
    from rlhub_offline.decision_transformer import DecisionTransformer

    model = DecisionTransformer("MlpPolicy", None, dataset=data, batch_size=batch_size, context_length=context_length,
                                return_scale=100.0, warmup_steps=100, seed=0, device=device,
                                policy_kwargs=policy_kwargs)
    model.learn(10)  # warm-up: allocations, the windows tensor
    started = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = heuristic_cartpole(20_000)
    print(f"dataset: {len(data.observations)} transitions, {len(data.episode_starts)} episodes; "
          f"torch threads: {torch.get_num_threads()}, device: {args.device}")
    for name, batch_size, context_length, policy_kwargs in CONFIGURATIONS:
        rates = [steps_per_second(data, batch_size, context_length, policy_kwargs, args.steps, args.device)
                 for _ in range(args.rounds)]
        print(f"{name}: {statistics.median(rates):.1f} gradient steps/s "
              f"(rounds: {', '.join(f'{rate:.1f}' for rate in rates)}; bar 38.5)")


if __name__ == "__main__":
    main()
