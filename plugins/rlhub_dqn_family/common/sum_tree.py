"""A sum tree over replay priorities, vectorised over batches (no Python loop per sample)."""

from __future__ import annotations

from typing import Any

import numpy as np


class SumTree:
    """
    Non-negative priorities in a complete binary tree held in one array: leaf ``i`` at
    ``leaf_count + i``, node ``k``'s children at ``2k`` and ``2k + 1``, the total at node 1.

    Updating a batch of leaves recomputes their ancestors level by level; sampling walks a batch of
    prefix sums down the tree together, one vectorised step per level (20 levels for 1M leaves).

    :param capacity: Number of leaves
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a sum tree needs a capacity of at least 1, got {capacity}")
        self.capacity = capacity
        self.depth = max(1, int(np.ceil(np.log2(capacity))))
        self.leaf_count = 1 << self.depth
        self.nodes = np.zeros(2 * self.leaf_count, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    def __getitem__(self, indices: np.ndarray) -> np.ndarray:
        return self.nodes[self.leaf_count + np.asarray(indices)]

    def update(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set the priorities of leaves ``indices`` (a repeated index keeps one of its priorities)."""
        indices = np.asarray(indices, dtype=np.int64)
        priorities = np.asarray(priorities, dtype=np.float64)
        if indices.size == 0:
            return
        if indices.min() < 0 or indices.max() >= self.capacity:
            raise IndexError(f"sum tree indices must be in [0, {self.capacity}), got {indices.min()}..{indices.max()}")
        if not np.all(np.isfinite(priorities)) or priorities.min() < 0:
            raise ValueError("priorities must be finite and non-negative")
        nodes = self.leaf_count + indices
        self.nodes[nodes] = priorities
        for _ in range(self.depth):  # repeated parents just recompute the same sum
            nodes = nodes >> 1
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]

    def find(self, prefix_sums: np.ndarray) -> np.ndarray:
        """The leaf each prefix sum falls in: the smallest ``i`` with ``sum(p[:i + 1]) > value``."""
        values = np.array(prefix_sums, dtype=np.float64)
        nodes = np.ones(values.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * nodes
            left_sums = self.nodes[left]
            # Rounding can leave a value just above the left sum where the right subtree is empty:
            # stay left then, so a zero-priority leaf is never drawn.
            go_right = (values >= left_sums) & (self.nodes[left + 1] > 0)
            values = np.where(go_right, values - left_sums, values)
            nodes = left + go_right
        return nodes - self.leaf_count

    def sample(self, batch_size: int, rng: Any) -> np.ndarray:
        """``batch_size`` leaves drawn in proportion to priority, one from each of ``batch_size``
        equal strata of the total (stratified, as Schaul et al. sample)."""
        if self.total <= 0:
            raise ValueError("cannot sample from a sum tree whose priorities are all zero")
        bounds = (np.arange(batch_size) + rng.random(batch_size)) * (self.total / batch_size)
        return self.find(bounds)
