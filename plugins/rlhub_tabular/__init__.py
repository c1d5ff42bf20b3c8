"""Built-in plugin: tabular TD, Monte Carlo and planning methods (Q-learning, SARSA, Dyna-Q, value iteration, ...).

Also registers ``rlhub/Cliff-v0``, the 4x12 cliff of the course notes (see :mod:`rlhub_tabular.cliff`).
"""

from __future__ import annotations

from rlhub.hookspecs import hookimpl
from rlhub.spec import AlgorithmSpec

#: Observation spaces of every tabular algorithm: Tuple means a Tuple of Discrete (checked by the class).
_TABULAR_OBSERVATIONS = ("Discrete", "Tuple")
_DISCRETE = ("Discrete",)


def _spec(algo_id: str, class_path: str, summary: str, kind: str = "tabular", **extra: object) -> AlgorithmSpec:
    return AlgorithmSpec(algo_id, f"rlhub_tabular.{class_path}", _DISCRETE, _TABULAR_OBSERVATIONS, kind=kind,
                         summary=summary, **extra)  # type: ignore[arg-type]


@hookimpl
def rlhub_algorithms() -> list[AlgorithmSpec]:
    return [
        _spec("q_learning", "q_learning:QLearning", "Tabular Q-learning (off-policy TD control)"),
    ]


@hookimpl
def rlhub_register_envs() -> None:
    import gymnasium as gym

    if "rlhub/Cliff-v0" not in gym.registry:
        gym.register("rlhub/Cliff-v0", entry_point="rlhub_tabular.cliff:CliffEnv", max_episode_steps=1000)
