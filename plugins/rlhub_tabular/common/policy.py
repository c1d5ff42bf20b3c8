"""The tabular policy: tables kept as torch buffers, acting greedily or with the behaviour policy."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import Schedule

from rlhub_tabular.common.indexing import StateIndexer, check_action_space

#: ``name -> (shape, dtype, fill value, persistent)`` of the tables an algorithm keeps in its policy.
TableSpecs = dict[str, tuple[tuple[int, ...], str, float, bool]]

_DTYPES = {"float64": th.float64, "int64": th.int64, "bool": th.bool}


class TabularPolicy(BasePolicy):
    """A policy whose state is a set of tables (torch buffers), acting on ``q_table``.

    Tables are buffers so that SB3's ``save``/``load`` and Hub packaging need no special case.
    ``deterministic=True`` takes the greedy action (the first of equal values, so that it is
    reproducible); otherwise the behaviour policy acts: epsilon-greedy with the ``exploration_rate``
    buffer, ties broken at random. Its draws come from :attr:`rng`, never from the global
    ``np.random``; the algorithm seeds it. Subclasses (bandit policies) override
    :meth:`behaviour_actions` and :meth:`greedy_actions`.

    :param observation_space: ``Discrete`` or ``Tuple`` of ``Discrete``
    :param action_space: ``Discrete``
    :param tables: ``name -> (shape, dtype, fill value, persistent)`` of the algorithm's tables;
        ``q_table`` of shape ``(n_states, n_actions)`` and the scalar ``exploration_rate`` are
        always there. Non-persistent tables (e.g. eligibility traces) are not saved.
    :param lr_schedule: unused; accepted because SB3 passes it to policies
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        tables: TableSpecs | None = None,
        lr_schedule: Schedule | None = None,
    ) -> None:
        super().__init__(observation_space, action_space)
        self.indexer = StateIndexer(observation_space, type(self).__name__)
        actions = check_action_space(action_space, type(self).__name__)
        self.n_states = self.indexer.n_states
        self.n_actions = int(actions.n)
        self.action_start = int(actions.start)
        self.tables: TableSpecs = {
            "q_table": ((self.n_states, self.n_actions), "float64", 0.0, True),
            "exploration_rate": ((), "float64", 0.0, True),
            **(tables or {}),
        }
        for name, (shape, dtype, fill, persistent) in self.tables.items():
            self.register_buffer(name, th.full(tuple(shape), fill, dtype=_DTYPES[dtype]), persistent=persistent)
        #: the generator of the behaviour policy's draws (unseeded until an algorithm seeds it)
        self.rng = np.random.default_rng()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(tables=self.tables)
        return data

    def table(self, name: str) -> np.ndarray:
        """A numpy view of a table: writing to it writes the buffer."""
        tensor = getattr(self, name)
        if tensor.device.type != "cpu":
            raise RuntimeError("tabular policies keep their tables on the CPU")
        return tensor.numpy()

    # Acting

    def greedy_actions(self, rows: np.ndarray) -> np.ndarray:
        """The greedy action of each row (first of equal values)."""
        return self.table("q_table")[rows].argmax(axis=1)

    def behaviour_actions(self, rows: np.ndarray) -> np.ndarray:
        """The behaviour policy's action of each row: epsilon-greedy, ties broken at random."""
        values = self.table("q_table")[rows]
        best = values == values.max(axis=1, keepdims=True)
        greedy = (best * self.rng.random(values.shape)).argmax(axis=1)  # ties broken at random
        explore = self.rng.random(len(rows)) < float(self.table("exploration_rate"))
        return np.where(explore, self.rng.integers(self.n_actions, size=len(rows)), greedy)

    def predict(
        self,
        observation: Any,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """As SB3's ``BasePolicy.predict``: a batch of observations gives a batch of actions, one
        observation gives a 0-d array."""
        if isinstance(observation, tuple) and len(observation) == 2 and isinstance(observation[1], dict):
            raise ValueError(
                "predict() got (observation, info): pass the observation only (Gymnasium's reset() returns both)."
            )
        rows, vectorized = self.indexer.indices(observation)
        actions = self.greedy_actions(rows) if deterministic else self.behaviour_actions(rows)
        actions = actions.astype(np.int64) + self.action_start
        if not vectorized:
            actions = actions.squeeze(axis=0)
        return actions, state

    def _predict(self, observation: Any, deterministic: bool = False) -> th.Tensor:
        if isinstance(observation, th.Tensor):
            observation = observation.cpu().numpy()
        elif isinstance(observation, (tuple, list)):
            observation = tuple(o.cpu().numpy() if isinstance(o, th.Tensor) else o for o in observation)
        actions, _ = self.predict(observation, deterministic=deterministic)
        return th.as_tensor(np.atleast_1d(actions))

    def forward(self, observation: Any, deterministic: bool = False) -> th.Tensor:
        return self._predict(observation, deterministic=deterministic)
