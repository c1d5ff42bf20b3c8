"""ACER's policies: a policy head and a Q head for discrete actions; a Gaussian policy with a
stochastic dueling network (a state value and an action advantage) for continuous actions. Both
keep an exponential moving average of the network for the trust region."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    FlattenExtractor,
    MlpExtractor,
    NatureCNN,
    create_mlp,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn


class DiscreteActorQNetwork(nn.Module):
    """A categorical policy ``pi(.|x)`` and the action values ``Q(x, .)``, on one features extractor."""

    def __init__(self, features_extractor: BaseFeaturesExtractor, net_arch: dict[str, list[int]],
                 activation_fn: type[nn.Module], n_actions: int) -> None:
        super().__init__()
        self.features_extractor = features_extractor
        self.mlp_extractor = MlpExtractor(features_extractor.features_dim, net_arch, activation_fn)
        self.action_net = nn.Linear(self.mlp_extractor.latent_dim_pi, n_actions)
        self.q_net = nn.Linear(self.mlp_extractor.latent_dim_vf, n_actions)

    def action_probs(self, observations: th.Tensor) -> th.Tensor:
        latent_pi = self.mlp_extractor.forward_actor(self.features_extractor(observations))
        return th.softmax(self.action_net(latent_pi), dim=-1)

    def forward(self, observations: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Return the action probabilities and the Q-values, both of shape (batch, n_actions)."""
        latent_pi, latent_vf = self.mlp_extractor(self.features_extractor(observations))
        q_values: th.Tensor = self.q_net(latent_vf)
        return th.softmax(self.action_net(latent_pi), dim=-1), q_values


class GaussianDuelingNetwork(nn.Module):
    """A Gaussian policy (state-dependent mean, learned state-independent log std) and the two
    streams of a stochastic dueling network: ``V(x)`` and an advantage ``A(x, a)``."""

    def __init__(self, features_extractor: BaseFeaturesExtractor, net_arch: dict[str, list[int]],
                 activation_fn: type[nn.Module], action_dim: int, log_std_init: float) -> None:
        super().__init__()
        self.features_extractor = features_extractor
        self.mlp_extractor = MlpExtractor(features_extractor.features_dim, net_arch, activation_fn)
        self.mean_net = nn.Linear(self.mlp_extractor.latent_dim_pi, action_dim)
        self.log_std = nn.Parameter(th.full((action_dim,), float(log_std_init)))
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        self.advantage_net = nn.Sequential(
            *create_mlp(features_extractor.features_dim + action_dim, 1, net_arch["vf"], activation_fn)
        )

    def policy_params(self, observations: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        latent_pi = self.mlp_extractor.forward_actor(self.features_extractor(observations))
        mean: th.Tensor = self.mean_net(latent_pi)
        return mean, self.log_std.expand_as(mean)

    def forward(self, observations: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
        """Return the policy's mean and log std (batch, action_dim), ``V`` (batch,) and the features."""
        features: th.Tensor = self.features_extractor(observations)
        latent_pi, latent_vf = self.mlp_extractor(features)
        mean: th.Tensor = self.mean_net(latent_pi)
        return mean, self.log_std.expand_as(mean), self.value_net(latent_vf).squeeze(-1), features

    def values(self, observations: th.Tensor) -> th.Tensor:
        """``V(x)`` (batch,)."""
        latent_vf = self.mlp_extractor.forward_critic(self.features_extractor(observations))
        values: th.Tensor = self.value_net(latent_vf).squeeze(-1)
        return values

    def advantage(self, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """``A(x, a)`` for features of shape (batch, F) and actions of shape (..., batch, action_dim)."""
        features = features.expand(*actions.shape[:-1], features.shape[-1])
        advantages: th.Tensor = self.advantage_net(th.cat([features, actions], dim=-1)).squeeze(-1)
        return advantages


ACERNetwork = DiscreteActorQNetwork | GaussianDuelingNetwork


class ACERPolicy(BasePolicy):
    """
    Policy of ACER: the actor-critic network being trained and its exponential moving average
    (the "average policy network" of the trust region).

    :param observation_space: Observation space
    :param action_space: Action space (Discrete: policy and Q heads; Box: Gaussian policy and a
        stochastic dueling network)
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: Hidden layers of the actor (``pi``) and the critic (``vf``, also the advantage
        stream): a list for both, or ``dict(pi=[...], vf=[...])``
    :param activation_fn: Activation function
    :param log_std_init: Initial log standard deviation of the Gaussian policy (continuous actions)
    :param features_extractor_class: Features extractor to use
    :param features_extractor_kwargs: Keyword arguments to pass to the features extractor
    :param normalize_images: Whether to normalize images or not, dividing by 255.0 (True by default)
    :param optimizer_class: The optimizer to use, ``th.optim.Adam`` by default (ACER sets RMSprop
        unless told otherwise)
    :param optimizer_kwargs: Additional keyword arguments, excluding the learning rate, to pass to the optimizer
    """

    network: ACERNetwork
    average_network: ACERNetwork

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        log_std_init: float = 0.0,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor_class,
            features_extractor_kwargs,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )
        if net_arch is None:
            net_arch = [64, 64]
        self.net_arch = net_arch
        self.activation_fn = activation_fn
        self.log_std_init = log_std_init
        if not isinstance(action_space, spaces.Box | spaces.Discrete):
            raise ValueError(f"ACER supports Discrete and Box action spaces, not {action_space}")
        self.continuous = isinstance(action_space, spaces.Box)
        self._build(lr_schedule)

    @property
    def behaviour_dim(self) -> int:
        """Length of the behaviour policy's description of one step (see ``act``)."""
        if isinstance(self.action_space, spaces.Box):
            return 2 * int(self.action_space.shape[0])
        assert isinstance(self.action_space, spaces.Discrete)
        return int(self.action_space.n)

    def _make_network(self) -> ACERNetwork:
        arch = self.net_arch if isinstance(self.net_arch, dict) else {"pi": self.net_arch, "vf": self.net_arch}
        arch = {"pi": list(arch.get("pi", [])), "vf": list(arch.get("vf", []))}
        extractor = self.make_features_extractor()
        if isinstance(self.action_space, spaces.Box):
            action_dim = int(self.action_space.shape[0])
            return GaussianDuelingNetwork(extractor, arch, self.activation_fn, action_dim, self.log_std_init)
        assert isinstance(self.action_space, spaces.Discrete)
        return DiscreteActorQNetwork(extractor, arch, self.activation_fn, int(self.action_space.n))

    def _build(self, lr_schedule: Schedule) -> None:
        self.network = self._make_network()
        self.average_network = self._make_network()
        self.average_network.load_state_dict(self.network.state_dict())
        self.average_network.requires_grad_(False)
        optimizer_kwargs = {"lr": lr_schedule(1), **self.optimizer_kwargs}
        self.optimizer = self.optimizer_class(self.network.parameters(), **optimizer_kwargs)

    def preprocess(self, observations: PyTorchObs) -> th.Tensor:
        """Observations as the networks take them (images scaled, discrete ones one-hot)."""
        preprocessed = preprocess_obs(observations, self.observation_space, normalize_images=self.normalize_images)
        if not isinstance(preprocessed, th.Tensor):
            raise TypeError("ACER supports no dict observations")
        return preprocessed

    def distribution(self, observations: PyTorchObs) -> th.distributions.Normal | th.distributions.Categorical:
        """The current policy's action distribution."""
        obs = self.preprocess(observations)
        if isinstance(self.network, GaussianDuelingNetwork):
            mean, log_std = self.network.policy_params(obs)
            return th.distributions.Normal(mean, log_std.exp())
        return th.distributions.Categorical(probs=self.network.action_probs(obs))

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        distribution = self.distribution(observation)
        actions: th.Tensor
        if isinstance(distribution, th.distributions.Normal):
            actions = distribution.mean if deterministic else distribution.sample()
        else:
            actions = distribution.probs.argmax(dim=-1) if deterministic else distribution.sample()
        return actions

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic=deterministic)

    def act(self, observations: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """Sample actions and describe the behaviour policy that chose them: its probability vector
        (discrete) or its mean and log std concatenated (continuous)."""
        distribution = self.distribution(observations)
        actions: th.Tensor
        if isinstance(distribution, th.distributions.Normal):
            actions = distribution.sample()
            return actions, th.cat([distribution.mean, distribution.stddev.log()], dim=-1)
        actions = distribution.sample()
        return actions, distribution.probs

    def predict_values(self, observations: PyTorchObs) -> th.Tensor:
        """``V(x)`` of the current network: the value stream (continuous) or ``sum_a pi(a|x) Q(x, a)``
        (discrete)."""
        obs = self.preprocess(observations)
        if isinstance(self.network, GaussianDuelingNetwork):
            return self.network.values(obs)
        probs, q_values = self.network(obs)
        values: th.Tensor = (probs * q_values).sum(dim=-1)
        return values

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            log_std_init=self.log_std_init,
            lr_schedule=self._dummy_schedule,
        )
        return data


class ACERCnnPolicy(ACERPolicy):
    """ACER's policy with the Nature DQN CNN as features extractor (image observations)."""

    def __init__(self, observation_space: spaces.Space[Any], action_space: spaces.Space[Any], lr_schedule: Schedule,
                 net_arch: list[int] | dict[str, list[int]] | None = None, activation_fn: type[nn.Module] = nn.Tanh,
                 log_std_init: float = 0.0, features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN,
                 features_extractor_kwargs: dict[str, Any] | None = None, normalize_images: bool = True,
                 optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
                 optimizer_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(observation_space, action_space, lr_schedule, net_arch, activation_fn, log_std_init,
                         features_extractor_class, features_extractor_kwargs, normalize_images, optimizer_class,
                         optimizer_kwargs)


MlpPolicy = ACERPolicy
CnnPolicy = ACERCnnPolicy
