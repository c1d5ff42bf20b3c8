"""Built-in plugin: the family around TRPO (sb3-contrib's TRPO is the reference it is compared to).

One subpackage per algorithm: :mod:`.npg` (natural policy gradient, fixed step), :mod:`.acktr`
(K-FAC natural gradients, with the optimizer in :mod:`.acktr.kfac`), :mod:`.ppo_kl` (PPO's
adaptive KL penalty); what they share, Fisher-vector products and KL diagnostics, in
:mod:`.common`. The hook implementation names classes by import path, so listing algorithms
imports no torch.
"""

from __future__ import annotations

from rlhub.hookspecs import hookimpl
from rlhub.spec import AlgorithmSpec

_ACTIONS = ("Box", "Discrete", "MultiDiscrete", "MultiBinary")


@hookimpl
def rlhub_algorithms() -> list[AlgorithmSpec]:
    return [
        AlgorithmSpec("npg", "rlhub_trust_region.npg:NPG", _ACTIONS, kind="on-policy",
                      summary="Natural policy gradient: conjugate-gradient natural direction, fixed step size"),
        AlgorithmSpec("acktr", "rlhub_trust_region.acktr:ACKTR", _ACTIONS, kind="on-policy",
                      summary="ACKTR: actor-critic with K-FAC natural gradients and a KL-clipped step"),
        AlgorithmSpec("ppo_kl", "rlhub_trust_region.ppo_kl:PPOKL", _ACTIONS, kind="on-policy",
                      summary="PPO with the adaptive KL penalty instead of clipping (Schulman et al. 2017, sec. 4)"),
    ]
