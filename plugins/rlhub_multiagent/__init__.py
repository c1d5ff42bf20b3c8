"""Built-in plugin: multi-agent actor-critics (MADDPG, MATD3) on PettingZoo Parallel environments.

One subpackage per algorithm (:mod:`.maddpg`, :mod:`.matd3`); the joint spaces, replay buffer,
networks and rollout loop they share in :mod:`.common`. rlhub makes the environments
(``--env mpe2:simple_spread_v3``): one Gymnasium env per PettingZoo env, observations and actions
dicts keyed by agent (:mod:`rlhub.parallel_envs`).
"""

from __future__ import annotations

from rlhub.hookspecs import hookimpl
from rlhub.spec import AlgorithmSpec

#: The conformance suite's game: two agents with different observation and action sizes.
_TEST_ENV = "mpe2:simple_speaker_listener_v4"


@hookimpl
def rlhub_algorithms() -> list[AlgorithmSpec]:
    return [
        AlgorithmSpec(
            "maddpg", "rlhub_multiagent.maddpg:MADDPG", ("Dict",), ("Dict",), kind="multi-agent",
            summary="Multi-agent DDPG: decentralised actors, a centralised critic per agent", test_env_id=_TEST_ENV,
        ),
        AlgorithmSpec(
            "matd3", "rlhub_multiagent.matd3:MATD3", ("Dict",), ("Dict",), kind="multi-agent",
            summary="Multi-agent TD3: MADDPG with twin critics, target smoothing and delayed actors",
            test_env_id=_TEST_ENV,
        ),
    ]
