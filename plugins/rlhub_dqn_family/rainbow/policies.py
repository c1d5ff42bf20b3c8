"""Q-networks of the DQN family: optional dueling head, noisy layers and a distribution over returns."""

from __future__ import annotations

import math
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from torch.nn import functional as F


class NoisyLinear(nn.Module):
    """A linear layer with factorised Gaussian noise on its weights (Fortunato et al. 2017, arXiv 1706.10295).

    ``w = mu_w + sigma_w * (f(e_out) f(e_in)^T)``, ``f(x) = sign(x) sqrt(|x|)``; the noise is drawn
    again by :meth:`reset_noise` and left out while ``noisy`` is False (greedy, deterministic acting).
    """

    def __init__(self, in_features: int, out_features: int, sigma_init: float = 0.5) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features)
        self.weight_mu = nn.Parameter(th.empty(out_features, in_features).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(th.full((out_features, in_features), sigma_init * bound))
        self.bias_mu = nn.Parameter(th.empty(out_features).uniform_(-bound, bound))
        self.bias_sigma = nn.Parameter(th.full((out_features,), sigma_init * bound))
        self.register_buffer("noise_in", th.zeros(in_features))
        self.register_buffer("noise_out", th.zeros(out_features))
        self.noisy = True
        self.reset_noise()

    @staticmethod
    def _scaled_noise(size: int, device: th.device) -> th.Tensor:
        noise = th.randn(size, device=device)
        return noise.sign() * noise.abs().sqrt()

    def reset_noise(self) -> None:
        self.noise_in.copy_(self._scaled_noise(self.in_features, self.noise_in.device))
        self.noise_out.copy_(self._scaled_noise(self.out_features, self.noise_out.device))

    def forward(self, inputs: th.Tensor) -> th.Tensor:
        if not self.noisy:
            return F.linear(inputs, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * th.outer(self.noise_out, self.noise_in)
        return F.linear(inputs, weight, self.bias_mu + self.bias_sigma * self.noise_out)


class RainbowQNetwork(BasePolicy):
    """
    Q-values for each action from features: an MLP trunk, then either one head or the dueling pair
    ``Q = V + A - mean(A)`` (Wang et al. 2016); with ``n_atoms > 1`` each Q-value is the mean of a
    categorical distribution over ``n_atoms`` returns spread evenly on ``[v_min, v_max]`` (C51).

    :param observation_space: Observation space
    :param action_space: Action space (Discrete)
    :param features_extractor: The features extractor
    :param features_dim: Number of features
    :param net_arch: The hidden layers of the trunk (and of each dueling stream)
    :param activation_fn: Activation function
    :param dueling: Separate value and advantage streams
    :param noisy: Noisy linear layers after the features extractor
    :param n_atoms: Atoms of the return distribution (1: plain Q-values)
    :param v_min: Lowest return of the support
    :param v_max: Highest return of the support
    :param normalize_images: Whether to normalize images or not, dividing by 255.0 (True by default)
    """

    action_space: spaces.Discrete

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Discrete,
                 features_extractor: BaseFeaturesExtractor, features_dim: int, net_arch: list[int] | None = None,
                 activation_fn: type[nn.Module] = nn.ReLU, dueling: bool = False, noisy: bool = False,
                 n_atoms: int = 1, v_min: float = -10.0, v_max: float = 10.0, normalize_images: bool = True) -> None:
        super().__init__(observation_space, action_space, features_extractor=features_extractor,
                         normalize_images=normalize_images)
        self.net_arch = [64, 64] if net_arch is None else net_arch
        self.activation_fn, self.features_dim = activation_fn, features_dim
        self.dueling, self.noisy, self.n_atoms, self.v_min, self.v_max = dueling, noisy, n_atoms, v_min, v_max
        n_actions = int(action_space.n)
        self.register_buffer("support", th.linspace(v_min, v_max, n_atoms) if n_atoms > 1 else th.zeros(1))
        if dueling:
            self.value_stream = self._stream(1)
            self.advantage_stream = self._stream(n_actions)
        else:
            self.q_stream = self._stream(n_actions)

    def _stream(self, n_outputs: int) -> nn.Sequential:
        linear = NoisyLinear if self.noisy else nn.Linear
        layers: list[nn.Module] = []
        last = self.features_dim
        for width in self.net_arch:
            layers += [linear(last, width), self.activation_fn()]
            last = width
        layers.append(linear(last, n_outputs * self.n_atoms))
        return nn.Sequential(*layers)

    def logits(self, obs: PyTorchObs) -> th.Tensor:
        """Per action (and atom): ``[batch, actions, atoms]``; Q-values themselves when ``n_atoms == 1``."""
        features = self.extract_features(obs, self.features_extractor)
        batch = features.shape[0]
        if not self.dueling:
            return self.q_stream(features).view(batch, -1, self.n_atoms)
        value = self.value_stream(features).view(batch, 1, self.n_atoms)
        advantage = self.advantage_stream(features).view(batch, -1, self.n_atoms)
        return value + advantage - advantage.mean(dim=1, keepdim=True)

    def log_probs(self, obs: PyTorchObs) -> th.Tensor:
        """Log-probabilities of the atoms, ``[batch, actions, atoms]`` (C51 only)."""
        return F.log_softmax(self.logits(obs), dim=-1)

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """Q-values, ``[batch, actions]``."""
        if self.n_atoms == 1:
            return self.logits(obs).squeeze(-1)
        return (self.log_probs(obs).exp() * self.support).sum(dim=-1)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self(observation).argmax(dim=1).reshape(-1)

    def noise_layers(self) -> list[NoisyLinear]:
        return [module for module in self.modules() if isinstance(module, NoisyLinear)]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(net_arch=self.net_arch, features_dim=self.features_dim, activation_fn=self.activation_fn,
                    features_extractor=self.features_extractor, dueling=self.dueling, noisy=self.noisy,
                    n_atoms=self.n_atoms, v_min=self.v_min, v_max=self.v_max)
        return data


class RainbowPolicy(BasePolicy):
    """The online and target :class:`RainbowQNetwork` and the optimizer, as SB3's ``DQNPolicy`` holds them.

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: The hidden layers of the Q-network
    :param activation_fn: Activation function
    :param dueling: Separate value and advantage streams
    :param noisy: Noisy linear layers
    :param n_atoms: Atoms of the return distribution (1: plain Q-values)
    :param v_min: Lowest return of the support
    :param v_max: Highest return of the support
    :param features_extractor_class: Features extractor to use
    :param features_extractor_kwargs: Keyword arguments to pass to the features extractor
    :param normalize_images: Whether to normalize images or not, dividing by 255.0 (True by default)
    :param optimizer_class: The optimizer to use, ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments, excluding the learning rate, to pass to the optimizer
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Discrete, lr_schedule: Schedule,
                 net_arch: list[int] | None = None, activation_fn: type[nn.Module] = nn.ReLU, dueling: bool = False,
                 noisy: bool = False, n_atoms: int = 1, v_min: float = -10.0, v_max: float = 10.0,
                 features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
                 features_extractor_kwargs: dict[str, Any] | None = None, normalize_images: bool = True,
                 optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
                 optimizer_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(observation_space, action_space, features_extractor_class, features_extractor_kwargs,
                         optimizer_class=optimizer_class, optimizer_kwargs=optimizer_kwargs,
                         normalize_images=normalize_images)
        if features_extractor_class == NatureCNN:
            net_arch = [] if net_arch is None else net_arch
        self.net_arch = [64, 64] if net_arch is None else net_arch
        self.activation_fn = activation_fn
        self.network_kwargs = dict(net_arch=self.net_arch, activation_fn=activation_fn, dueling=dueling, noisy=noisy,
                                   n_atoms=n_atoms, v_min=v_min, v_max=v_max, normalize_images=normalize_images)
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        self.q_net, self.q_net_target = self.make_q_net(), self.make_q_net()
        self.q_net_target.load_state_dict(self.q_net.state_dict())
        self.q_net_target.set_training_mode(False)
        self.optimizer = self.optimizer_class(self.q_net.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def make_q_net(self) -> RainbowQNetwork:
        extractor = self.make_features_extractor()
        return RainbowQNetwork(self.observation_space, self.action_space, extractor, extractor.features_dim,
                               **self.network_kwargs).to(self.device)

    def forward(self, obs: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, obs: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        # Noisy layers explore by their noise; acting deterministically uses their means.
        for layer in self.q_net.noise_layers():
            layer.noisy = not deterministic
        return self.q_net._predict(obs, deterministic=deterministic)

    def reset_noise(self) -> None:
        for layer in (*self.q_net.noise_layers(), *self.q_net_target.noise_layers()):
            layer.noisy = True
            layer.reset_noise()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(lr_schedule=self._dummy_schedule, optimizer_class=self.optimizer_class,
                    optimizer_kwargs=self.optimizer_kwargs, features_extractor_class=self.features_extractor_class,
                    features_extractor_kwargs=self.features_extractor_kwargs,
                    **{key: value for key, value in self.network_kwargs.items() if key != "normalize_images"})
        return data

    def set_training_mode(self, mode: bool) -> None:
        self.q_net.set_training_mode(mode)
        self.training = mode


MlpPolicy = RainbowPolicy


class CnnPolicy(RainbowPolicy):
    """:class:`RainbowPolicy` with SB3's NatureCNN features extractor (Atari)."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Discrete, lr_schedule: Schedule,
                 **kwargs: Any) -> None:
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
