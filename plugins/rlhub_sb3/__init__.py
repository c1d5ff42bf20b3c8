"""Built-in plugin: the algorithms of Stable-Baselines3 and sb3-contrib, under the RL Zoo's ids.

HER is not an algorithm of its own in SB3 2.x: set ``replay_buffer_class: HerReplayBuffer`` in the
config of an off-policy algorithm (see zoo_configs).
"""

from __future__ import annotations

from rlhub.hookspecs import hookimpl
from rlhub.spec import NEURAL_OBSERVATION_SPACES, AlgorithmSpec

_ON_POLICY_ACTIONS = ("Box", "Discrete", "MultiDiscrete", "MultiBinary")
_NON_DICT = tuple(space for space in NEURAL_OBSERVATION_SPACES if space != "Dict")


@hookimpl
def rlhub_algorithms() -> list[AlgorithmSpec]:
    sb3 = "stable_baselines3"
    contrib = "sb3_contrib"
    return [
        AlgorithmSpec("a2c", f"{sb3}:A2C", _ON_POLICY_ACTIONS, summary="Advantage Actor-Critic (synchronous A3C)"),
        AlgorithmSpec("ppo", f"{sb3}:PPO", _ON_POLICY_ACTIONS, summary="Proximal Policy Optimization (clipped)"),
        AlgorithmSpec("dqn", f"{sb3}:DQN", ("Discrete",), kind="off-policy", summary="Deep Q-Network"),
        AlgorithmSpec("ddpg", f"{sb3}:DDPG", ("Box",), kind="off-policy", summary="Deep Deterministic Policy Gradient"),
        AlgorithmSpec("td3", f"{sb3}:TD3", ("Box",), kind="off-policy", summary="Twin Delayed DDPG"),
        AlgorithmSpec("sac", f"{sb3}:SAC", ("Box",), kind="off-policy", summary="Soft Actor-Critic"),
        AlgorithmSpec("ars", f"{contrib}:ARS", ("Box", "Discrete"), _NON_DICT, kind="evolution",
                      summary="Augmented Random Search"),
        AlgorithmSpec("crossq", f"{contrib}:CrossQ", ("Box",), kind="off-policy",
                      summary="CrossQ: SAC with batch norm and no target network"),
        AlgorithmSpec("qrdqn", f"{contrib}:QRDQN", ("Discrete",), kind="off-policy", summary="Quantile Regression DQN"),
        AlgorithmSpec("tqc", f"{contrib}:TQC", ("Box",), kind="off-policy",
                      summary="Truncated Quantile Critics"),
        AlgorithmSpec("trpo", f"{contrib}:TRPO", _ON_POLICY_ACTIONS, summary="Trust Region Policy Optimization"),
        AlgorithmSpec("ppo_lstm", f"{contrib}:RecurrentPPO", _ON_POLICY_ACTIONS,
                      summary="PPO with an LSTM policy (RecurrentPPO)"),
        AlgorithmSpec("ppo_mask", f"{contrib}:MaskablePPO", ("Discrete", "MultiDiscrete", "MultiBinary"),
                      summary="PPO with invalid-action masking", requires_action_masks=True,
                      test_env_id="rlhub/InvalidActionEnvDiscrete-v0"),
    ]


@hookimpl
def rlhub_register_envs() -> None:
    import gymnasium as gym

    # sb3-contrib's test env with action masks, so MaskablePPO has something to run on by id.
    if "rlhub/InvalidActionEnvDiscrete-v0" not in gym.registry:
        gym.register(
            "rlhub/InvalidActionEnvDiscrete-v0",
            entry_point="sb3_contrib.common.envs:InvalidActionEnvDiscrete",
            kwargs={"dim": 10, "n_invalid_actions": 3},
            max_episode_steps=100,
        )


@hookimpl
def rlhub_hyperparameter_samplers() -> dict[str, str]:
    # The RL Zoo's search spaces; maskable PPO and CrossQ have none there.
    tuned = ("a2c", "ppo", "ppo_lstm", "trpo", "dqn", "qrdqn", "sac", "tqc", "td3", "ddpg", "ars")
    return {algo_id: f"rlhub_sb3.samplers:sample_{algo_id}" for algo_id in tuned}
