"""One forward pass of an SB3 actor-critic policy that returns the distribution itself."""

from __future__ import annotations

import torch as th
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import PyTorchObs


def distribution_and_values(policy: ActorCriticPolicy, observations: PyTorchObs) -> tuple[Distribution, th.Tensor]:
    """The action distribution and the (flat) values, from one pass through the networks.

    ``evaluate_actions`` gives log-probabilities but not the distribution, which the KL and the
    sampled Fisher need; a second forward pass for it would double the cost of an update.
    """
    features = policy.extract_features(observations)
    if policy.share_features_extractor:
        latent_pi, latent_vf = policy.mlp_extractor(features)
    else:
        pi_features, vf_features = features
        latent_pi = policy.mlp_extractor.forward_actor(pi_features)
        latent_vf = policy.mlp_extractor.forward_critic(vf_features)
    return policy._get_action_dist_from_latent(latent_pi), policy.value_net(latent_vf).flatten()
