"""Learned tabular policies against the optimal ones, exactly, on FrozenLake-v1 (slippery) and Taxi-v4.

A 100-episode evaluation is noisy (on the slippery lake the standard error of a success rate is
0.044) and Taxi's reward threshold of 8 is above what the optimal policy earns (7.93 in expectation
with the course's 99-step episodes). So, next to the 100 seeded episodes, this script evaluates each
learned greedy policy exactly with the environment's model ``P`` (finite-horizon dynamic
programming over the episode's step limit), and gives the optimal policy's numbers on the same
seeded starts.

    python benchmarks/tabular_optimality.py [--seeds 3] [--algo q_learning]
    python benchmarks/tabular_optimality.py --run-dir benchmark/tabular/runs/q_learning/Taxi-v4_1 ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np

#: The Hugging Face course's Taxi evaluation seeds ("DO NOT MODIFY").
COURSE_TAXI_SEEDS = [
    16, 54, 165, 177, 191, 191, 120, 80, 149, 178, 48, 38, 6, 125, 174, 73, 50, 172, 100, 148, 146, 6, 25, 40, 68,
    148, 49, 167, 9, 97, 164, 176, 61, 7, 54, 55, 161, 131, 184, 51, 170, 12, 120, 113, 95, 126, 51, 98, 36, 135,
    54, 82, 45, 95, 89, 59, 95, 124, 9, 113, 58, 85, 51, 134, 121, 169, 105, 21, 30, 11, 50, 65, 12, 43, 82, 145, 152,
    97, 106, 55, 31, 85, 38, 112, 102, 168, 123, 97, 21, 83, 158, 26, 80, 63, 5, 81, 32, 11, 28, 148,
]
HORIZON = 99  # the course's max_steps, as in the zoo configs


def finite_horizon_values(env_id: str, env_kwargs: dict, policy: np.ndarray | None, horizon: int) -> np.ndarray:
    """Expected undiscounted return within ``horizon`` steps from every state, for the deterministic
    ``policy`` (one action per state) or, with None, for the optimal policy."""
    from rlhub_tabular.common import TransitionModel

    unwrapped = gym.make(env_id, **env_kwargs).unwrapped
    n_states, n_actions = unwrapped.observation_space.n, unwrapped.action_space.n
    model = TransitionModel(unwrapped.P, n_states, n_actions)
    values = np.zeros(n_states)
    rows = np.arange(n_states)
    for _ in range(horizon):
        q = model.q_values(values, 1.0)
        values = q.max(axis=1) if policy is None else q[rows, policy]
    return values


def seeded_returns(model, env_id: str, env_kwargs: dict, seeds: list[int]) -> list[float]:
    """Returns of the greedy policy on episodes reset with each seed (at most HORIZON steps)."""
    env = gym.make(env_id, max_episode_steps=HORIZON, **env_kwargs)
    returns = []
    for seed in seeds:
        state, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(state, deterministic=True)
            state, reward, terminated, truncated, _ = env.step(int(action))
            total += reward
            done = terminated or truncated
        returns.append(total)
    return returns


def start_states(env_id: str, env_kwargs: dict, seeds: list[int]) -> list[int]:
    env = gym.make(env_id, **env_kwargs)
    return [int(env.reset(seed=seed)[0]) for seed in seeds]


def report(model, env_id: str, env_kwargs: dict, label: str) -> None:
    q_table = model.policy.table("q_table")
    learned = finite_horizon_values(env_id, env_kwargs, q_table.argmax(axis=1), HORIZON)
    optimal = finite_horizon_values(env_id, env_kwargs, None, HORIZON)
    unwrapped = gym.make(env_id, **env_kwargs).unwrapped
    initial = np.asarray(unwrapped.initial_state_distrib)
    lines = [f"{label}: exact expected return {initial @ learned:.4f} (optimal {initial @ optimal:.4f})"]
    seed_sets = {"seeds 0-99": list(range(100))}
    if env_id.startswith("Taxi"):
        seed_sets["the course's eval seeds"] = COURSE_TAXI_SEEDS
    for name, seeds in seed_sets.items():
        returns = seeded_returns(model, env_id, env_kwargs, seeds)
        starts = start_states(env_id, env_kwargs, seeds)
        lines.append(f"    100 episodes on {name}: mean {np.mean(returns):.2f} (expected {np.mean(learned[starts]):.3f}, "
                     f"optimal policy expected {np.mean(optimal[starts]):.3f})")
    print("\n".join(lines), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--algo", default="q_learning")
    parser.add_argument("--run-dir", type=Path, nargs="*", default=None, help="Analyse these run folders instead.")
    args = parser.parse_args()

    from rlhub.run_folder import load_agent

    if args.run_dir:
        for run_dir in args.run_dir:
            agent = load_agent(run_dir, device="cpu")
            report(agent.model, agent.manifest.env_id, agent.manifest.env_kwargs, str(run_dir))
        return
    from rlhub.experiment import TrainOptions, train

    for env_id in ("FrozenLake-v1", "Taxi-v4"):
        for seed in range(args.seeds):
            result = train(TrainOptions(args.algo, env_id, seed=seed, log_folder="logs/tabular_optimality",
                                        eval_freq=-1, verbose=0, device="cpu"))
            report(result.model, env_id, {}, f"{args.algo} {env_id} seed {seed} ({result.timesteps} steps, "
                   f"{result.model._episode_num} episodes)")


if __name__ == "__main__":
    main()
