"""Built-in plugin: algorithms whose envs are stepped by rollout workers on Ray.

:mod:`.a3c` (asynchronous gradients) and :mod:`.dppo` (synchronous rollouts, SB3's PPO update); the
Ray session and the workers they share in :mod:`.common`. Ray is an extra (``pip install
'rlhub[ray]'``): listing the algorithms imports neither Ray nor torch.
"""

from __future__ import annotations

from rlhub.hookspecs import hookimpl
from rlhub.spec import AlgorithmSpec

SLOW_CARTPOLE = "rlhub/SlowCartPole-v1"

_ACTIONS = ("Box", "Discrete", "MultiDiscrete", "MultiBinary")
_OBSERVATIONS = ("Box", "Discrete", "MultiDiscrete", "MultiBinary")  # a worker's rollout holds arrays, not dicts


@hookimpl
def rlhub_algorithms() -> list[AlgorithmSpec]:
    return [
        AlgorithmSpec("a3c", "rlhub_distributed.a3c:A3C", _ACTIONS, _OBSERVATIONS, kind="on-policy",
                      summary="A3C: Ray workers send n-step actor-critic gradients, applied as they arrive"),
        AlgorithmSpec("dppo", "rlhub_distributed.dppo:DPPO", _ACTIONS, _OBSERVATIONS, kind="on-policy",
                      summary="Distributed PPO: Ray workers collect rollouts, the learner runs PPO's update"),
    ]


@hookimpl
def rlhub_register_envs() -> None:
    import gymnasium as gym

    if SLOW_CARTPOLE not in gym.registry:  # the time limit is CartPole-v1's own, inside
        gym.register(SLOW_CARTPOLE, entry_point="rlhub_distributed.envs:make_slow_cartpole")
