"""Built-in plugin: the DQN family (issue 18, in progress).

One implementation, :class:`~rlhub_dqn_family.rainbow.RainbowDQN` (Double, Dueling, prioritized,
n-step, noisy and distributional DQN as options), whose presets in :mod:`.presets` are the family's
algorithm ids. :class:`~rlhub_dqn_family.common.prioritized_replay.PrioritizedReplayBuffer` is also a
drop-in ``replay_buffer_class`` for SB3's DQN, QR-DQN, SAC, TD3 and DDPG: attach
:class:`~rlhub_dqn_family.common.priority_updates.PrioritizedReplayCallback` to ``learn`` (or build
:class:`~rlhub_dqn_family.common.priority_updates.PriorityUpdates`) so that their TD errors set the
priorities and importance weights scale their critic gradients. The hook implementation names
classes by import path, so listing algorithms imports no torch. Through rlhub, a zoo config's
``replay_buffer_class: PrioritizedReplayBuffer`` is enough: the plugin's ``rlhub_training_callbacks``
attaches the priority updates.
"""

from __future__ import annotations

from rlhub.hookspecs import hookimpl
from rlhub.spec import AlgorithmSpec

_PRESETS = "rlhub_dqn_family.presets"
DISCRETE_PENDULUM = "rlhub/DiscretePendulum-v1"


@hookimpl
def rlhub_algorithms() -> list[AlgorithmSpec]:
    def spec(algo_id: str, class_name: str, summary: str) -> AlgorithmSpec:
        return AlgorithmSpec(algo_id, f"{_PRESETS}:{class_name}", ("Discrete",), kind="off-policy", summary=summary)

    return [
        spec("double_dqn", "DoubleDQN", "Double DQN: the online network picks the next action, the target values it"),
        spec("dueling_dqn", "DuelingDQN", "Dueling DQN: value and advantage streams (with Double DQN targets)"),
        spec("per_dqn", "PrioritizedDQN", "DQN with prioritized experience replay (sum tree, importance weights)"),
        spec("c51", "C51", "C51: a categorical distribution over 51 returns"),
        spec("rainbow", "Rainbow", "Rainbow: Double, Dueling, prioritized, 3-step, noisy and distributional DQN"),
    ]


@hookimpl
def rlhub_class_aliases() -> dict[str, str]:
    return {"PrioritizedReplayBuffer": "rlhub_dqn_family.common.prioritized_replay.PrioritizedReplayBuffer"}


@hookimpl
def rlhub_training_callbacks(model) -> list:
    """SB3's DQN, QR-DQN, SAC, TD3 and DDPG with a PrioritizedReplayBuffer get their TD errors fed to it."""
    if type(getattr(model, "replay_buffer", None)).__name__ != "PrioritizedReplayBuffer":
        return []  # decided without importing torch for every other run
    from rlhub_dqn_family.common.priority_updates import PrioritizedReplayCallback, has_loss_shape

    return [PrioritizedReplayCallback()] if has_loss_shape(model) else []


@hookimpl
def rlhub_register_envs() -> None:
    import gymnasium as gym

    if DISCRETE_PENDULUM not in gym.registry:
        # The time limit is Pendulum-v1's own, inside; gymnasium adds none of its own here.
        gym.register(DISCRETE_PENDULUM, entry_point="rlhub_dqn_family.envs:make_discrete_pendulum")
