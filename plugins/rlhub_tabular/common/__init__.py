"""Building blocks of tabular algorithms: import these to write one (as :mod:`rlhub_bandits` does).

A tabular algorithm here is an SB3 ``BaseAlgorithm`` whose every learned table (Q-values, models,
counts, traces) is a buffer of a :class:`TabularPolicy`, so SB3's ``save``/``load`` and rlhub's Hub
packaging need no special case. Subclass :class:`TabularAlgorithm` and write the update rule in
``_transition`` (one transition in, the next action out); the base runs the environment loop,
exploration and learning-rate schedules, seeding, callbacks and logs. Planners on a known model
subclass :class:`PlanningAlgorithm` and write ``_sweep``.

Why these live in the tabular plugin and not in ``rlhub.common``: only tabular-style families use
them (this plugin, the bandits, a third party's tabular method), and rlhub's core never does, so
the core neither imports nor names them. The bandit plugin imports them from here exactly as a
third-party plugin would; it only needs ``rlhub_tabular`` installed, which ships with rlhub.

Modules, one job each:

- :mod:`.indexing`: observations (``Discrete``, ``Tuple`` of ``Discrete``) to table rows and back.
- :mod:`.randomness`: the seeded uniform stream and random tie-breaking the learners draw from.
- :mod:`.policy`: :class:`TabularPolicy`, the tables and the greedy and behaviour policies.
- :mod:`.stepping`: stepping the sub-environments (directly, or through any ``VecEnv``).
- :mod:`.algorithm`: :class:`TabularAlgorithm`, setup, schedules, the learning loop and its logs.
- :mod:`.updates`: pieces of update rules several learners share (:func:`td_target`).
- :mod:`.planning`: :class:`TransitionModel` (vectorised Bellman backups on ``env.unwrapped.P``) and
  :class:`PlanningAlgorithm`.
"""

from __future__ import annotations

from rlhub_tabular.common.algorithm import TabularAlgorithm
from rlhub_tabular.common.indexing import StateIndexer, check_action_space
from rlhub_tabular.common.planning import MissingTransitionModelError, PlanningAlgorithm, TransitionModel
from rlhub_tabular.common.policy import TableSpecs, TabularPolicy
from rlhub_tabular.common.randomness import RandomStream, greedy_with_ties
from rlhub_tabular.common.updates import td_target

__all__ = [
    "MissingTransitionModelError",
    "PlanningAlgorithm",
    "RandomStream",
    "StateIndexer",
    "TableSpecs",
    "TabularAlgorithm",
    "TabularPolicy",
    "TransitionModel",
    "check_action_space",
    "greedy_with_ties",
    "td_target",
]
