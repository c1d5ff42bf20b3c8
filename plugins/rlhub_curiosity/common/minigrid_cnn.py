"""A features extractor for MiniGrid's symbolic view, for any SB3 policy (``features_extractor_class``).

MiniGrid's ``ImgObsWrapper`` gives the agent's 7x7 view as (object, colour, state) codes per cell, in
a uint8 "image". The codes are categories (a door, 4, is not twice a wall, 2), so each is one-hot
encoded before three 2x2 convolutions: the network of minigrid's own SB3 example and of
rl-starter-files, widened by the one-hot planes. NatureCNN cannot take 7x7, and an MLP over the
flattened codes did not learn DoorKey-8x8 in 1M steps, with or without curiosity.
"""

from __future__ import annotations

import torch as th
from gymnasium import spaces
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from torch.nn import functional as F

#: How many values each of a cell's three codes takes; the third holds the agent's direction (0 to 3)
#: in ``FullyObsWrapper``'s view, else a door's state (open, closed, locked).
CODE_SIZES = (len(OBJECT_TO_IDX), len(COLOR_TO_IDX), max(len(STATE_TO_IDX), 4))


class MiniGridCNN(BaseFeaturesExtractor):
    """MiniGrid's (object, colour, state) view, channels first as SB3 gives images, to ``features_dim``
    features. The policy must leave the codes as they are: ``policy_kwargs: dict(normalize_images=False)``.

    :param observation_space: A (3, height, width) Box of codes (``ImgObsWrapper``, after ``FullyObsWrapper``
        for the whole grid, then SB3's transpose)
    :param features_dim: Width of the linear layer after the convolutions
    """

    def __init__(self, observation_space: spaces.Box, features_dim: int = 128) -> None:
        super().__init__(observation_space, features_dim)
        channels, height, width = observation_space.shape
        if channels != len(CODE_SIZES):
            raise ValueError(f"MiniGridCNN takes MiniGrid's (object, colour, state) view, 3 channels first; "
                             f"got observations of shape {observation_space.shape}. Wrap the env in "
                             "minigrid.wrappers.ImgObsWrapper (and nothing that flattens it).")
        self.cnn = nn.Sequential(
            nn.Conv2d(sum(CODE_SIZES), 16, 2), nn.ReLU(),
            nn.Conv2d(16, 32, 2), nn.ReLU(),
            nn.Conv2d(32, 64, 2), nn.ReLU(),
            nn.Flatten(),
        )
        flat = (height - 3) * (width - 3) * 64
        self.linear = nn.Sequential(nn.Linear(flat, features_dim), nn.ReLU())

    def forward(self, observations: th.Tensor) -> th.Tensor:
        codes = observations.long()
        if not th.equal(codes.float(), observations.float()):
            raise ValueError("MiniGridCNN got fractional codes: the policy scaled the view as pixels. "
                             "Add normalize_images=False to policy_kwargs.")
        planes = [F.one_hot(codes[:, channel].clamp(0, size - 1), size) for channel, size in enumerate(CODE_SIZES)]
        one_hot = th.cat(planes, dim=-1).permute(0, 3, 1, 2).float()  # (batch, sum(CODE_SIZES), height, width)
        return self.linear(self.cnn(one_hot))
