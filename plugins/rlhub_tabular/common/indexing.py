"""Observations to table rows and back, and the check that actions are table columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

from rlhub.spec import SpaceMismatchError


class StateIndexer:
    """Maps observations of a ``Discrete`` or ``Tuple``-of-``Discrete`` space to table rows.

    A ``Tuple`` (e.g. Blackjack's ``(player sum, dealer card, usable ace)``) is flattened in
    row-major order, as ``numpy.ravel_multi_index`` does; ``start`` offsets are removed.

    :param space: the observation space
    :param algo_name: named in the error for an unsupported space
    """

    def __init__(self, space: spaces.Space, algo_name: str = "this algorithm") -> None:
        if isinstance(space, spaces.Discrete):
            self.sizes: tuple[int, ...] = (int(space.n),)
            self.starts: tuple[int, ...] = (int(space.start),)
        elif isinstance(space, spaces.Tuple) and space.spaces and len(
            members := [member for member in space.spaces if isinstance(member, spaces.Discrete)]
        ) == len(space.spaces):
            self.sizes = tuple(int(member.n) for member in members)
            self.starts = tuple(int(member.start) for member in members)
        else:
            hint = ""
            if isinstance(space, spaces.Tuple):
                hint = " (every member of a Tuple must be Discrete)"
            raise SpaceMismatchError(
                f"{algo_name} learns a table indexed by the observation, so it needs a Discrete observation space "
                f"or a Tuple of Discrete spaces{hint}; got {space}. Discretise the observations (e.g. with a "
                "gymnasium ObservationWrapper) or pick a neural algorithm (see `rlhub algos`)."
            )
        self.space = space
        self.is_tuple = isinstance(space, spaces.Tuple)
        strides = []
        stride = 1
        for size in reversed(self.sizes):
            strides.append(stride)
            stride *= size
        self.strides = tuple(reversed(strides))
        self.n_states = stride
        #: ``index(observation) -> int`` for one observation, as fast as Python allows
        self.index: Callable[[Any], int] = self._make_index()

    def _make_index(self) -> Callable[[Any], int]:
        if not self.is_tuple:
            start = self.starts[0]
            if start == 0:
                return int
            return lambda observation: int(observation) - start
        offset = sum(start * stride for start, stride in zip(self.starts, self.strides))
        strides = self.strides
        return lambda observation: sum(int(value) * stride for value, stride in zip(observation, strides)) - offset

    def indices(self, observation: Any) -> tuple[np.ndarray, bool]:
        """Row indices of one observation or a batch, and whether it was a batch (as SB3's
        ``is_vectorized_observation`` decides: a scalar is one observation, a 1-D array a batch)."""
        if not self.is_tuple:
            values = np.asarray(observation)
            if values.ndim > 1:
                raise ValueError(f"a batch of Discrete observations must be 1-D, got shape {values.shape}")
            vectorized = values.ndim == 1
            rows = values.reshape(-1).astype(np.int64) - self.starts[0]
        else:
            components = self._tuple_components(observation)
            vectorized = components[0].ndim == 1
            rows = np.zeros(components[0].shape, dtype=np.int64)
            for values, start, stride in zip(components, self.starts, self.strides):
                rows += (values.astype(np.int64) - start) * stride
            rows = rows.reshape(-1)
        for_check = self._tuple_components(observation) if self.is_tuple else [rows + self.starts[0]]
        for values, size, start in zip(for_check, self.sizes, self.starts):
            if np.any(values < start) or np.any(values >= start + size):
                raise ValueError(f"observation {observation!r} is outside the observation space {self.space}")
        return rows, vectorized

    def observations(self, rows: np.ndarray) -> Any:
        """The batch of observations (VecEnv form: an array, or a tuple of arrays) of these rows."""
        components = np.unravel_index(np.asarray(rows, dtype=np.int64), self.sizes)
        values = [component + start for component, start in zip(components, self.starts)]
        return tuple(values) if self.is_tuple else values[0]

    def _tuple_components(self, observation: Any) -> list[np.ndarray]:
        n = len(self.sizes)
        if isinstance(observation, (tuple, list)) and len(observation) == n:
            components = [np.asarray(value) for value in observation]
        else:
            array = np.asarray(observation)
            if array.ndim == 1 and array.shape[0] == n:
                components = [np.asarray(value) for value in array]
            elif array.ndim == 2 and array.shape[1] == n:
                components = [array[:, k] for k in range(n)]
            else:
                raise ValueError(f"cannot read {observation!r} as an observation of {self.space}")
        if len({value.shape for value in components}) != 1 or components[0].ndim > 1:
            raise ValueError(f"the members of a Tuple observation must have one shape, got {observation!r}")
        return components


def check_action_space(space: spaces.Space, algo_name: str) -> spaces.Discrete:
    """``space`` if it is ``Discrete``; else raise :class:`~rlhub.spec.SpaceMismatchError`."""
    if not isinstance(space, spaces.Discrete):
        raise SpaceMismatchError(
            f"{algo_name} keeps one table column per action, so it needs a Discrete action space; got {space}. "
            "Pick an algorithm for continuous actions (see `rlhub algos`)."
        )
    return space
