"""BC's policy: SB3's ActorCriticPolicy (categorical on Discrete, diagonal Gaussian on Box actions),
so a cloned policy is the one PPO, A2C or GAIL's generator start from. Its value head is not trained."""

from stable_baselines3.common.policies import ActorCriticPolicy

MlpPolicy = ActorCriticPolicy
