"""The curiosity modules' building blocks: an observation encoder (a CNN for images, an MLP for
vectors) and the running observation statistics that feed it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import NatureCNN
from torch import nn


def mlp(sizes: list[int], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for index, (width_in, width_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(width_in, width_out))
        if index < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


#: NatureCNN's three convolutions (8, 4 and 3 wide, strides 4, 2, 1) need this many pixels a side.
NATURE_CNN_MIN_SIDE = 36


def encoder(observation_space: spaces.Space[Any], net_arch: list[int], features_dim: int) -> nn.Module:
    """Observations (normalised, batch first) to ``features_dim`` features: SB3's NatureCNN for an
    image (channels first, as SB3's VecTransposeImage gives it), else an MLP over the flat vector (a
    vector, or an image too small for NatureCNN, such as MiniGrid's 7x7 view)."""
    if (is_image_space(observation_space, check_channels=False)
            and min(observation_space.shape[1:]) >= NATURE_CNN_MIN_SIDE):
        return NatureCNN(observation_space, features_dim=features_dim, normalized_image=True)
    size = int(np.prod(observation_space.shape))
    return nn.Sequential(nn.Flatten(), mlp([size, *net_arch, features_dim]))


class ObservationNormalizer(nn.Module):
    """Standardises observations with running statistics and clips them to [-clip, clip], as RND's
    networks see them (without it a random network's output barely varies with a small input).

    The statistics are buffers, so they are saved and loaded with the module.
    """

    def __init__(self, shape: tuple[int, ...], clip: float = 5.0) -> None:
        super().__init__()
        self.clip = clip
        self.register_buffer("mean", th.zeros(shape))
        self.register_buffer("var", th.ones(shape))
        self.register_buffer("count", th.zeros(()))

    @th.no_grad()
    def update(self, batch: th.Tensor) -> None:
        """Merge a batch's statistics (Chan et al.'s parallel algorithm, as SB3's RunningMeanStd)."""
        batch = batch.float()
        batch_mean, batch_var, batch_count = batch.mean(dim=0), batch.var(dim=0, unbiased=False), batch.shape[0]
        total = self.count + batch_count
        delta = batch_mean - self.mean
        self.mean += delta * batch_count / total
        self.var.copy_((self.var * self.count + batch_var * batch_count
                        + delta.pow(2) * self.count * batch_count / total) / total)
        self.count.copy_(total)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return ((observations.float() - self.mean) / th.sqrt(self.var + 1e-8)).clamp(-self.clip, self.clip)
