"""The seeded draws of tabular learners: a fast uniform stream and random tie-breaking."""

from __future__ import annotations

import numpy as np


class RandomStream:
    """Uniform numbers in [0, 1) from a seeded ``numpy.random.Generator``, drawn in blocks.

    One ``Generator.random()`` call costs about as much as a whole tabular update; popping from a
    pre-drawn list costs a tenth of that.

    :param rng: the generator (the algorithm's, so that a seed fixes every draw)
    :param block: how many numbers to draw at once
    """

    def __init__(self, rng: np.random.Generator, block: int = 4096) -> None:
        self.rng = rng
        self.block = block
        self._buffer: list[float] = []

    def uniform(self) -> float:
        """A uniform number in ``[0, 1)``."""
        try:
            return self._buffer.pop()
        except IndexError:
            self._buffer = self.rng.random(self.block).tolist()
            return self._buffer.pop()

    def index(self, n: int) -> int:
        """A uniform integer in ``[0, n)``."""
        return int(self.uniform() * n)


def greedy_with_ties(row: list[float], random: RandomStream) -> int:
    """The index of the largest value, ties broken uniformly at random (so that an all-zero table
    does not always pick action 0)."""
    best = max(row)
    if row.count(best) == 1:
        return row.index(best)
    ties = [action for action, value in enumerate(row) if value == best]
    return ties[random.index(len(ties))]
