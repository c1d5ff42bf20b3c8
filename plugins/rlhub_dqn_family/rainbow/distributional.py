"""C51's projection of a shifted and scaled return distribution back onto the fixed support."""

from __future__ import annotations

import torch as th


def project_distribution(next_probs: th.Tensor, rewards: th.Tensor, dones: th.Tensor, discounts: th.Tensor | float,
                         support: th.Tensor) -> th.Tensor:
    """The distribution of ``r + discount * (1 - done) * Z`` projected onto ``support`` (Bellemare et
    al. 2017, algorithm 1): each atom's mass goes to its two neighbours on the support, in proportion
    to how close it lands, after clipping to ``[v_min, v_max]``.

    :param next_probs: ``[batch, atoms]`` probabilities of the next state's return
    :param rewards: ``[batch, 1]``
    :param dones: ``[batch, 1]``, 1 where the episode ended (no bootstrap)
    :param discounts: ``[batch, 1]`` or a number: the discount of the bootstrap (gamma^n for n-step)
    :param support: ``[atoms]``, evenly spaced
    :return: ``[batch, atoms]`` probabilities
    """
    n_atoms = support.shape[0]
    v_min, v_max = float(support[0]), float(support[-1])
    spacing = (v_max - v_min) / (n_atoms - 1)
    shifted = (rewards + (1.0 - dones) * discounts * support[None, :]).clamp(v_min, v_max)
    position = (shifted - v_min) / spacing  # in [0, n_atoms - 1]
    lower, upper = position.floor().long(), position.ceil().long()
    # An atom landing exactly on the support would give its mass to neither side: move one bound.
    on_atom = lower == upper
    lower = th.where(on_atom & (upper > 0), lower - 1, lower)
    upper = th.where(on_atom & (lower == upper), upper + 1, upper)
    projected = th.zeros_like(next_probs)
    projected.scatter_add_(1, lower, next_probs * (upper.to(position.dtype) - position))
    projected.scatter_add_(1, upper, next_probs * (position - lower.to(position.dtype)))
    return projected
