"""Natural-gradient pieces shared by the family: actor parameters, Fisher-vector products, KL.

Conjugate gradient and flat gradients are sb3-contrib's (the ones its TRPO uses), so ``npg`` and
contrib's TRPO differ only in how they step, which is what the benchmark compares.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch as th
from sb3_contrib.common.utils import conjugate_gradient_solver, flat_grad
from stable_baselines3.common.distributions import Distribution, kl_divergence
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

__all__ = [
    "FisherVectorProduct", "actor_parameters", "add_flat_", "conjugate_gradient_solver", "flat_grad",
    "policy_kl", "record_policy_change",
]

# The parameters of SB3's actor-critic policies that only the value function uses.
_CRITIC_PREFIXES = ("value_net.", "mlp_extractor.value_net.", "vf_features_extractor.")


def actor_parameters(policy: ActorCriticPolicy) -> list[nn.Parameter]:
    """The parameters that shape the action distribution (a shared feature extractor included)."""
    return [param for name, param in policy.named_parameters() if not name.startswith(_CRITIC_PREFIXES)]


def policy_kl(old: Distribution, new: Distribution) -> th.Tensor:
    """KL(old || new) per state, summed over the independent action dimensions of a Gaussian."""
    kl = kl_divergence(old, new)
    return kl.sum(dim=-1) if kl.dim() > 1 else kl


class FisherVectorProduct:
    """``v -> (F + damping I) v`` for the policy's Fisher matrix, by double back-propagation of KL.

    At the current parameters the Hessian of ``mean KL(old || new)`` is the Fisher information
    matrix, so no matrix is ever formed: one backward pass per product.
    """

    def __init__(self, mean_kl: th.Tensor, params: Sequence[nn.Parameter], damping: float) -> None:
        self.params = list(params)
        self.damping = damping
        self.kl_gradient = flat_grad(mean_kl, self.params, create_graph=True, retain_graph=True)

    def __call__(self, vector: th.Tensor) -> th.Tensor:
        product = flat_grad((self.kl_gradient * vector).sum(), self.params, retain_graph=True)
        return product + self.damping * vector


@th.no_grad()
def add_flat_(params: Sequence[nn.Parameter], flat_step: th.Tensor) -> None:
    """Add a flat vector (as ``flat_grad`` orders it) to the parameters, in place."""
    start = 0
    for param in params:
        size = param.numel()
        param.add_(flat_step[start:start + size].view_as(param))
        start += size


def record_policy_change(logger, old: Distribution, new: Distribution) -> float:
    """Log how far an update moved the policy (mean and max KL over the batch); return the mean."""
    with th.no_grad():
        kl = policy_kl(old, new)
    mean_kl = kl.mean().item()
    logger.record("train/kl", mean_kl)
    logger.record("train/max_kl", kl.max().item())
    return mean_kl
