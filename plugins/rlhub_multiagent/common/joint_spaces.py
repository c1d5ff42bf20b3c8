"""The agents' spaces laid side by side: what a centralised critic sees.

Every agent's observation is flattened, and its action is written as the networks use it: a
one-hot vector for a Discrete action, the action rescaled to [-1, 1] for a Box one. The joint
observation (the actions) of a step is the agents' concatenated, in the order of the env's Dict
space, so one matrix row holds a whole step and one slice picks an agent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces


@dataclass(frozen=True)
class AgentSlot:
    """One agent's place in the joint vectors."""

    name: str
    observation_space: spaces.Box
    action_space: spaces.Discrete | spaces.Box
    observations: slice
    actions: slice

    @property
    def discrete(self) -> bool:
        return isinstance(self.action_space, spaces.Discrete)

    @property
    def observation_size(self) -> int:
        return self.observations.stop - self.observations.start

    @property
    def action_size(self) -> int:
        return self.actions.stop - self.actions.start


class JointSpaces:
    """The agents of a Dict observation space and a Dict action space with the same keys.

    :raises ValueError: if the keys differ, or an agent's observation space is not a Box or its
        action space neither Discrete nor a bounded Box
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        if not isinstance(observation_space, spaces.Dict) or not isinstance(action_space, spaces.Dict):
            raise ValueError("a multi-agent algorithm needs Dict observation and action spaces keyed by agent "
                             f"(a PettingZoo env, module:env_name), got {observation_space} and {action_space}")
        if list(observation_space.spaces) != list(action_space.spaces):
            raise ValueError(f"the observation and action spaces name different agents: {list(observation_space.spaces)}"
                             f" and {list(action_space.spaces)}")
        slots, observation_start, action_start = [], 0, 0
        for name, observation in observation_space.spaces.items():
            action = action_space.spaces[name]
            if not isinstance(observation, spaces.Box):
                raise ValueError(f"agent {name!r} observes a {type(observation).__name__}; only Box observations are "
                                 "supported")
            if isinstance(action, spaces.Discrete):
                action_size = int(action.n)
            elif isinstance(action, spaces.Box) and action.is_bounded():
                action_size = int(np.prod(action.shape))
            else:
                raise ValueError(f"agent {name!r} acts in {action}; only Discrete and bounded Box actions are supported")
            observation_size = int(np.prod(observation.shape))
            slots.append(AgentSlot(name, observation, action, slice(observation_start, observation_start + observation_size),
                                   slice(action_start, action_start + action_size)))
            observation_start += observation_size
            action_start += action_size
        self.slots: list[AgentSlot] = slots
        self.agents = [slot.name for slot in slots]
        self.observation_size = observation_start
        self.action_size = action_start

    def __len__(self) -> int:
        return len(self.slots)

    def join_observations(self, observations: dict[str, np.ndarray]) -> np.ndarray:
        """``{agent: (n, *shape)}`` to one ``(n, observation_size)`` float32 matrix."""
        return np.concatenate([np.asarray(observations[slot.name], dtype=np.float32).reshape(
            -1, slot.observation_size) for slot in self.slots], axis=1)

    def join_actions(self, actions: dict[str, np.ndarray]) -> np.ndarray:
        """The env's actions ``{agent: (n, ...)}`` as the networks write them, one ``(n, action_size)`` matrix."""
        columns = []
        for slot in self.slots:
            action = np.asarray(actions[slot.name])
            if slot.discrete:
                columns.append(np.eye(slot.action_size, dtype=np.float32)[action.reshape(-1).astype(np.int64)])
            else:
                low, high = slot.action_space.low.reshape(-1), slot.action_space.high.reshape(-1)
                scaled = 2.0 * (action.reshape(len(action), -1) - low) / (high - low) - 1.0
                columns.append(scaled.astype(np.float32))
        return np.concatenate(columns, axis=1)

    def split_actions(self, joint: np.ndarray) -> dict[str, np.ndarray]:
        """Network actions ``(n, action_size)`` back to the env's ``{agent: (n, ...)}``: the index of a
        one-hot (or of the largest entry), a [-1, 1] action scaled to the agent's bounds."""
        actions: dict[str, np.ndarray] = {}
        for slot in self.slots:
            part = joint[:, slot.actions]
            if slot.discrete:
                actions[slot.name] = part.argmax(axis=1).astype(np.int64)
            else:
                low, high = slot.action_space.low.reshape(-1), slot.action_space.high.reshape(-1)
                unscaled = low + 0.5 * (np.clip(part, -1.0, 1.0) + 1.0) * (high - low)
                actions[slot.name] = unscaled.astype(slot.action_space.dtype).reshape(-1, *slot.action_space.shape)
        return actions
