"""Built-in plugin: curiosity-driven exploration (RND, ICM) for any registered algorithm.

One subpackage per algorithm (:mod:`.rnd`, :mod:`.icm`); the loop around the base algorithm, the
intrinsic-reward environment, the networks and RND's two-stream PPO in :mod:`.common`.
"""

from __future__ import annotations

from rlhub.hookspecs import hookimpl
from rlhub.spec import AlgorithmSpec


@hookimpl
def rlhub_algorithms() -> list[AlgorithmSpec]:
    return [
        AlgorithmSpec(
            "rnd", "rlhub_curiosity.rnd:RND", ("Discrete", "Box"), ("Box",),
            summary="Random network distillation: a base algorithm (PPO) plus a novelty bonus",
        ),
        AlgorithmSpec(
            "icm", "rlhub_curiosity.icm:ICM", ("Discrete", "Box"), ("Box",),
            summary="Intrinsic curiosity module: a base algorithm (PPO) plus a forward-model error bonus",
        ),
    ]
