"""The DQN family (issue 18, in progress): one implementation, :class:`~rlhub_dqn_family.rainbow.RainbowDQN`,
whose presets (:mod:`.presets`: ``DoubleDQN``, ``DuelingDQN``, ``PrioritizedDQN``, ``C51``, ``Rainbow``)
turn its components on, and prioritized experience replay.

:class:`~rlhub_dqn_family.common.prioritized_replay.PrioritizedReplayBuffer` is a drop-in
``replay_buffer_class`` for SB3's DQN, QR-DQN, SAC, TD3 and DDPG; attach
:class:`~rlhub_dqn_family.common.priority_updates.PrioritizedReplayCallback` to ``learn`` (or build
:class:`~rlhub_dqn_family.common.priority_updates.PriorityUpdates`) so their TD errors set the
priorities and importance weights scale their critic gradients. Not yet an rlhub plugin (no entry
point): its registration, zoo configs and benchmark come with the rest of the issue.
"""

from rlhub_dqn_family.common.prioritized_replay import PrioritizedReplayBuffer, PrioritizedReplayBufferSamples
from rlhub_dqn_family.common.priority_updates import PrioritizedReplayCallback, PriorityUpdates
from rlhub_dqn_family.common.sum_tree import SumTree

__all__ = ["PrioritizedReplayBuffer", "PrioritizedReplayBufferSamples", "PrioritizedReplayCallback", "PriorityUpdates",
           "SumTree"]
