"""Built-in plugin: adversarial imitation from demonstrations (GAIL, AIRL), any on-policy algorithm as the generator.

One subpackage per algorithm (:mod:`.gail`, :mod:`.airl`); the loop, the reward environment and
the discriminator's inputs they share in :mod:`.common`. Demonstrations are datasets read by
``rlhub.datasets`` (e.g. written by ``rlhub collect``), given with ``--dataset``.
"""

from __future__ import annotations

from rlhub.hookspecs import hookimpl
from rlhub.spec import AlgorithmSpec


@hookimpl
def rlhub_algorithms() -> list[AlgorithmSpec]:
    return [
        AlgorithmSpec(
            "gail", "rlhub_imitation.gail:GAIL", ("Discrete", "Box"), ("Box",), kind="imitation",
            summary="Generative adversarial imitation: an on-policy generator on a discriminator's reward",
        ),
        AlgorithmSpec(
            "airl", "rlhub_imitation.airl:AIRL", ("Discrete", "Box"), ("Box",), kind="imitation",
            summary="Adversarial inverse RL: GAIL with a shaped discriminator whose reward can be exported",
        ),
    ]
