"""The DQN family's named algorithms: :class:`RainbowDQN` with some components on by default."""

from __future__ import annotations

from typing import Any, ClassVar

from rlhub_dqn_family.rainbow.rainbow import RainbowDQN


class DoubleDQN(RainbowDQN):
    """Double DQN (van Hasselt et al. 2015): :class:`RainbowDQN` with ``double_q`` on."""

    components: ClassVar[dict[str, Any]] = {"double_q": True}


class DuelingDQN(RainbowDQN):
    """Dueling DQN (Wang et al. 2016), with Double DQN targets as in the paper."""

    components: ClassVar[dict[str, Any]] = {"double_q": True, "dueling": True}


class PrioritizedDQN(RainbowDQN):
    """DQN with prioritized replay (Schaul et al. 2015; Double DQN targets, as in the paper)."""

    components: ClassVar[dict[str, Any]] = {"double_q": True, "prioritized": True}


class C51(RainbowDQN):
    """C51 (Bellemare et al. 2017): a categorical distribution over 51 returns."""

    components: ClassVar[dict[str, Any]] = {"n_atoms": 51}


class Rainbow(RainbowDQN):
    """Rainbow (Hessel et al. 2017): all six components (3-step returns, 51 atoms)."""

    components: ClassVar[dict[str, Any]] = {"double_q": True, "dueling": True, "prioritized": True, "noisy": True,
                                            "n_atoms": 51, "n_steps": 3}
