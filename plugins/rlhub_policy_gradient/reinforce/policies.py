"""REINFORCE's policies: SB3's actor-critic ones, whose value head is the optional baseline."""

from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy

MlpPolicy = ActorCriticPolicy
CnnPolicy = ActorCriticCnnPolicy
