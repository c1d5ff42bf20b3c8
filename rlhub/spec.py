"""What a plugin says about an algorithm, without importing it."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gymnasium as gym
    from stable_baselines3.common.base_class import BaseAlgorithm

#: What an algorithm learns from.
KINDS = ("on-policy", "off-policy", "evolution", "tabular", "planning", "bandit", "offline", "imitation", "multi-agent")

#: Kinds that learn from a dataset (``--dataset``): offline algorithms from it alone, imitation
#: algorithms from its demonstrations and their own play in the environment.
DATASET_KINDS = ("offline", "imitation")

#: Space class names as Gymnasium spells them.
ALL_SPACES = ("Box", "Discrete", "MultiDiscrete", "MultiBinary", "Dict", "Tuple")
NEURAL_OBSERVATION_SPACES = ("Box", "Discrete", "MultiDiscrete", "MultiBinary", "Dict")
#: What each entry of a Dict observation may be: what SB3's vectorised envs can batch (no Text, no nesting).
DICT_ENTRY_SPACES = ("Box", "Discrete", "MultiDiscrete", "MultiBinary")


@dataclass(frozen=True)
class AlgorithmSpec:
    """An algorithm a plugin contributes, described without importing it.

    :param algo_id: unique lowercase id, as used on the command line and in ``zoo_configs``
    :param class_path: ``"package.module:ClassName"`` of a ``BaseAlgorithm`` subclass
    :param action_spaces: Gymnasium action space class names the algorithm supports
    :param observation_spaces: Gymnasium observation space class names the algorithm supports
    :param kind: what the algorithm learns from, one of :data:`KINDS`
    :param summary: one line for ``rlhub algos``
    :param test_env_id: the environment the conformance suite trains it on; by default one is
        picked from the supported spaces
    :param requires_action_masks: the environment must expose ``action_masks()``
    """

    algo_id: str
    class_path: str
    action_spaces: tuple[str, ...]
    observation_spaces: tuple[str, ...] = NEURAL_OBSERVATION_SPACES
    kind: str = "on-policy"
    summary: str = ""
    test_env_id: str | None = None
    requires_action_masks: bool = False
    plugin_name: str = field(default="", compare=False)
    distribution: str = field(default="", compare=False)
    distribution_version: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.algo_id != self.algo_id.lower() or not self.algo_id.replace("_", "").isalnum():
            raise ValueError(f"algo_id {self.algo_id!r} must be lowercase letters, digits and underscores")
        if ":" not in self.class_path:
            raise ValueError(f"class_path {self.class_path!r} of {self.algo_id!r} must look like 'package.module:ClassName'")
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} of {self.algo_id!r} must be one of {', '.join(KINDS)}")
        for name in (*self.action_spaces, *self.observation_spaces):
            if name not in ALL_SPACES:
                raise ValueError(f"space {name!r} of {self.algo_id!r} must be one of {', '.join(ALL_SPACES)}")

    def load(self) -> type[BaseAlgorithm]:
        """Import and return the algorithm class."""
        module_name, _, class_name = self.class_path.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, class_name)

    def check_env(self, env: gym.Env | Any) -> None:
        """Raise :class:`SpaceMismatchError` if the algorithm cannot learn on ``env``'s spaces."""
        for role, space, supported in (
            ("action", env.action_space, self.action_spaces),
            ("observation", env.observation_space, self.observation_spaces),
        ):
            name = type(space).__name__
            if name not in supported:
                raise SpaceMismatchError(
                    f"{self.algo_id} cannot learn with a {name} {role} space ({space}); "
                    f"it supports {role} spaces: {', '.join(supported)}. "
                    f"Pick an algorithm that supports {name} (see `rlhub algos`) or another environment."
                )
        observation_space = env.observation_space
        if type(observation_space).__name__ == "Dict":
            for key, entry in observation_space.spaces.items():
                if type(entry).__name__ not in DICT_ENTRY_SPACES:
                    raise SpaceMismatchError(
                        f"{self.algo_id} cannot learn from the observation entry {key!r}, a "
                        f"{type(entry).__name__} space; a Dict observation's entries must be "
                        f"{', '.join(DICT_ENTRY_SPACES)}. Wrap the env so that the entry goes "
                        "(env_wrapper in the config: for MiniGrid, minigrid.wrappers.ImgObsWrapper keeps the image "
                        "and drops the mission text)."
                    )
        if self.requires_action_masks and not _has_action_masks(env):
            raise SpaceMismatchError(
                f"{self.algo_id} needs an environment with an `action_masks()` method "
                "(wrap it with sb3_contrib.common.wrappers.ActionMasker)."
            )


def _has_action_masks(env: Any) -> bool:
    if hasattr(env, "env_method"):  # a VecEnv: ask the first sub-environment
        try:
            env.env_method("action_masks", indices=[0])
            return True
        except AttributeError:
            return False
    return hasattr(env, "action_masks") or hasattr(getattr(env, "unwrapped", None), "action_masks")


class SpaceMismatchError(ValueError):
    """The algorithm does not support the environment's action or observation space."""
