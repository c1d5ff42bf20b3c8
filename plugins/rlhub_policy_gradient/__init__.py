"""Built-in plugin: policy-gradient methods SB3 lacks (REINFORCE, ACER).

One subpackage per algorithm, its policies, buffers (and ACER's update rules) beside it:
:mod:`.reinforce`, :mod:`.acer`; what both share, the rollout and the time-limit bootstrap, in
:mod:`.common.rollout`. The hook implementations name classes by import path, so listing
algorithms imports no torch.
"""

from __future__ import annotations

from rlhub.hookspecs import hookimpl
from rlhub.spec import AlgorithmSpec

_NON_DICT_OBSERVATIONS = ("Box", "Discrete", "MultiDiscrete", "MultiBinary")


@hookimpl
def rlhub_algorithms() -> list[AlgorithmSpec]:
    return [
        AlgorithmSpec(
            "reinforce", "rlhub_policy_gradient.reinforce:REINFORCE", ("Box", "Discrete", "MultiDiscrete", "MultiBinary"),
            _NON_DICT_OBSERVATIONS, kind="on-policy",
            summary="REINFORCE: Monte-Carlo policy gradient on whole episodes, optional learned baseline",
        ),
        AlgorithmSpec(
            "acer", "rlhub_policy_gradient.acer:ACER", ("Discrete", "Box"), _NON_DICT_OBSERVATIONS, kind="off-policy",
            summary="ACER: actor-critic with experience replay, Retrace and an efficient trust region",
        ),
    ]


@hookimpl
def rlhub_hyperparameter_samplers() -> dict[str, str]:
    return {algo_id: f"rlhub_policy_gradient.samplers:sample_{algo_id}" for algo_id in ("acer", "reinforce")}
