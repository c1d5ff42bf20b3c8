"""Decentralised actors and centralised critics, one of each per agent (Lowe et al. 2017).

An agent's actor sees its own observation; its critics see every agent's observation and action
(the joint vectors of :mod:`.joint_spaces`). A Discrete agent's actor outputs logits and acts
through the straight-through Gumbel-softmax (a one-hot sample whose gradient is the relaxed
sample's), a Box agent's outputs ``tanh`` of its pre-activation in [-1, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.common.utils import is_vectorized_observation
from torch import nn

from rlhub_multiagent.common.joint_spaces import JointSpaces


def mlp(input_size: int, output_size: int, net_arch: list[int], activation_fn: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in net_arch:
        layers += [nn.Linear(input_size, width), activation_fn()]
        input_size = width
    layers.append(nn.Linear(input_size, output_size))
    return nn.Sequential(*layers)


class MultiAgentActor(nn.Module):
    """One actor per agent, each on its own slice of the joint observation."""

    optimizer: th.optim.Optimizer

    def __init__(self, joint: JointSpaces, net_arch: list[int], activation_fn: type[nn.Module]) -> None:
        super().__init__()
        self.joint = joint
        self.nets = nn.ModuleList(mlp(slot.observation_size, slot.action_size, net_arch, activation_fn)
                                  for slot in joint.slots)

    def outputs(self, observations: th.Tensor) -> list[th.Tensor]:
        """Each agent's pre-activation output: logits (Discrete) or the argument of tanh (Box)."""
        return [net(observations[:, slot.observations]) for net, slot in zip(self.nets, self.joint.slots)]

    def actions(self, outputs: list[th.Tensor], *, explore: bool, noise_std: float = 0.0,
                noise_clip: float | None = None) -> list[th.Tensor]:
        """Each agent's action as the networks write it. ``explore``: a Gumbel-softmax sample (one-hot,
        straight-through gradient) for Discrete agents and ``tanh`` plus Gaussian noise of ``noise_std``
        (clipped to +/- ``noise_clip``), kept in [-1, 1], for Box agents; else the greedy action."""
        actions = []
        for output, slot in zip(outputs, self.joint.slots):
            if slot.discrete:
                actions.append(F.gumbel_softmax(output, hard=True) if explore
                               else F.one_hot(output.argmax(dim=1), slot.action_size).to(output.dtype))
                continue
            action = th.tanh(output)
            if explore and noise_std > 0:
                noise = th.randn_like(action) * noise_std
                if noise_clip is not None:
                    noise = noise.clamp(-noise_clip, noise_clip)
                action = (action + noise).clamp(-1.0, 1.0)
            actions.append(action)
        return actions


class BatchedLinear(nn.Module):
    """``n`` independent linear layers applied in one batched matmul, ``(n, B, in) -> (n, B, out)``,
    initialised as ``nn.Linear`` is. Every agent's critic reads the same joint vector, so their
    layers stack (PyTorch has no such layer; one ``baddbmm`` instead of a ``Linear`` per critic halves
    a gradient step's time on three agents)."""

    def __init__(self, n: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / in_features ** 0.5
        self.weight = nn.Parameter(th.empty(n, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(th.empty(n, 1, out_features).uniform_(-bound, bound))

    def forward(self, inputs: th.Tensor, first: int | None = None) -> th.Tensor:
        """``first``: apply only the first ``first`` layers (to ``inputs`` of that many)."""
        weight, bias = (self.weight, self.bias) if first is None else (self.weight[:first], self.bias[:first])
        return th.baddbmm(bias, inputs, weight)


class MultiAgentCritic(nn.Module):
    """``n_critics`` Q-networks per agent, each over the joint observation and the joint action, all
    evaluated together (:class:`BatchedLinear`; network ``k * n_agents + i`` is agent i's k-th)."""

    optimizer: th.optim.Optimizer

    def __init__(self, joint: JointSpaces, net_arch: list[int], activation_fn: type[nn.Module], n_critics: int) -> None:
        super().__init__()
        self.n_agents = len(joint)
        self.n_critics = n_critics
        widths = [joint.observation_size + joint.action_size, *net_arch, 1]
        self.layers = nn.ModuleList(BatchedLinear(n_critics * self.n_agents, a, b) for a, b in zip(widths, widths[1:]))
        self.activation = activation_fn()

    def _values(self, inputs: th.Tensor, first: int | None = None) -> th.Tensor:
        for layer in self.layers[:-1]:
            inputs = self.activation(layer(inputs, first))
        return self.layers[-1](inputs, first).squeeze(2)

    def forward(self, observations: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """(n_agents, n_critics, B) every agent's every critic's value of the joint step."""
        inputs = th.cat([observations, actions], dim=1)
        values = self._values(inputs.expand(self.n_critics * self.n_agents, *inputs.shape))
        return values.view(self.n_critics, self.n_agents, -1).transpose(0, 1)

    def first_critics(self, observations: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """(n_agents, B) each agent's first critic (the one its actor follows, as in TD3), agent i's on
        ``actions[i]``, (n_agents, B, action_size): the joint action with agent i's own in it."""
        inputs = th.cat([observations.expand(self.n_agents, *observations.shape), actions], dim=2)
        return self._values(inputs, first=self.n_agents)

    def clip_grad_norm_(self, max_norm: float) -> None:
        """Scale each agent's gradient (over all its critics) to norm ``max_norm`` at most, as one
        optimizer per agent would be clipped in the MADDPG authors' code."""
        grads = [parameter.grad.view(self.n_critics, self.n_agents, -1) for parameter in self.parameters()
                 if parameter.grad is not None]
        norms = th.stack([grad.pow(2).sum(dim=(0, 2)) for grad in grads]).sum(dim=0).sqrt()  # (n_agents,)
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0).view(1, -1, 1)
        for grad in grads:
            grad.mul_(scale)


class MultiAgentPolicy(BasePolicy):
    """The actors, critics and their target copies of all agents (SB3's TD3Policy, per agent).

    ``predict`` takes the dict of per-agent observations, for one env or a vectorised batch, and
    returns the dict of per-agent actions in each agent's own space.

    :param observation_space: Dict of per-agent Box observation spaces
    :param action_space: Dict of per-agent Discrete or Box action spaces (same keys)
    :param lr_schedule: Learning rate schedule of actors and critics
    :param net_arch: Hidden layer widths of every actor and critic (the MADDPG paper: two of 64)
    :param critic_net_arch: Hidden layer widths of the critics, if they differ
    :param activation_fn: Activation function
    :param n_critics: Critics per agent (1: MADDPG; 2: MATD3's twin critics)
    :param optimizer_class: The optimizer, one over all actors and one over all critics (Adam is
        per-parameter, so this equals one per agent)
    :param optimizer_kwargs: Additional keyword arguments of the optimizer
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        critic_net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        n_critics: int = 1,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(observation_space, action_space, optimizer_class=optimizer_class,
                         optimizer_kwargs=optimizer_kwargs, normalize_images=False)
        self.joint = JointSpaces(observation_space, action_space)
        if any(is_image_space(slot.observation_space, check_channels=False) and len(slot.observation_space.shape) == 3
               for slot in self.joint.slots):
            raise ValueError("image observations are not supported by the multi-agent MLP policy")
        self.net_arch = [64, 64] if net_arch is None else list(net_arch)
        self.critic_net_arch = self.net_arch if critic_net_arch is None else list(critic_net_arch)
        self.activation_fn = activation_fn
        self.n_critics = n_critics
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        self.actor = MultiAgentActor(self.joint, self.net_arch, self.activation_fn)
        self.actor_target = MultiAgentActor(self.joint, self.net_arch, self.activation_fn)
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.critic = MultiAgentCritic(self.joint, self.critic_net_arch, self.activation_fn, self.n_critics)
        self.critic_target = MultiAgentCritic(self.joint, self.critic_net_arch, self.activation_fn, self.n_critics)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.actor.optimizer = self.optimizer_class(self.actor.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)
        self.critic.optimizer = self.optimizer_class(self.critic.parameters(), lr=lr_schedule(1),
                                                     **self.optimizer_kwargs)
        self.actor_target.train(False)
        self.critic_target.train(False)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(net_arch=self.net_arch, critic_net_arch=self.critic_net_arch, activation_fn=self.activation_fn,
                    n_critics=self.n_critics, optimizer_class=self.optimizer_class,
                    optimizer_kwargs=self.optimizer_kwargs)
        return data

    def joint_actions(self, observations: th.Tensor, *, explore: bool, noise_std: float = 0.0) -> th.Tensor:
        """(B, action_size) every agent's action for the joint observations."""
        return th.cat(self.actor.actions(self.actor.outputs(observations), explore=explore, noise_std=noise_std), dim=1)

    def act(self, joint_observations: np.ndarray, *, explore: bool,
            noise_std: float = 0.0) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The env's actions ``{agent: (n, ...)}`` and the joint network actions ``(n, action_size)`` for
        joint observations ``(n, observation_size)``."""
        with th.no_grad():
            actions = self.joint_actions(th.as_tensor(joint_observations, device=self.device), explore=explore,
                                         noise_std=noise_std).cpu().numpy()
        return self.joint.split_actions(actions), actions

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        assert isinstance(observation, th.Tensor)
        return self.joint_actions(observation, explore=not deterministic)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        noise_std: float = 0.0,
    ) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, ...] | None]:
        """The agents' actions ``{agent: action}`` for ``{agent: observation}`` (each with a leading env
        axis, or none). Not deterministic: the exploring actions (Gumbel samples; ``noise_std`` for Box)."""
        if not isinstance(observation, dict):
            raise ValueError(f"a multi-agent policy predicts from a dict of per-agent observations "
                             f"({', '.join(self.joint.agents)}), got {type(observation).__name__}")
        missing = [agent for agent in self.joint.agents if agent not in observation]
        if missing:
            raise ValueError(f"observations for agents {missing} are missing")
        vectorized = is_vectorized_observation(observation, self.observation_space)
        if self.training:  # a recursive walk over every module: not at every step
            self.set_training_mode(False)
        env_actions = self.act(self.joint.join_observations(observation), explore=not deterministic,
                               noise_std=noise_std)[0]
        if not vectorized:
            env_actions = {agent: action[0] for agent, action in env_actions.items()}
        return env_actions, state
