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
        _spec("sarsa", "sarsa:SARSA", "Tabular SARSA (on-policy TD control)"),
        _spec("expected_sarsa", "expected_sarsa:ExpectedSARSA", "Tabular Expected SARSA"),
        _spec("sarsa_lambda", "sarsa_lambda:SARSALambda",
              "Tabular SARSA(lambda) with accumulating or replacing eligibility traces"),
        _spec("mc_control", "mc_control:MonteCarloControl",
              "On-policy Monte Carlo control (first- or every-visit, epsilon-soft)"),
        _spec("value_iteration", "value_iteration:ValueIteration",
              "Value iteration on the environment's model env.unwrapped.P", kind="planning"),
        _spec("policy_iteration", "policy_iteration:PolicyIteration",
              "Policy iteration on the environment's model env.unwrapped.P", kind="planning"),
        _spec("dyna_q", "dyna_q:DynaQ", "Dyna-Q: Q-learning plus planning on a learned model"),
        _spec("dyna_q_plus", "dyna_q_plus:DynaQPlus", "Dyna-Q+: Dyna-Q with the kappa*sqrt(tau) exploration bonus"),
    ]


@hookimpl
def rlhub_register_envs() -> None:
    import gymnasium as gym

    if "rlhub/Cliff-v0" not in gym.registry:
        gym.register("rlhub/Cliff-v0", entry_point="rlhub_tabular.cliff:CliffEnv", max_episode_steps=1000)
