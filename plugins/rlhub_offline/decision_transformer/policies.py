"""The Decision Transformer's network as an SB3 policy: a causal transformer over interleaved
(return-to-go, state, action) tokens, and the rolling context it acts on through ``predict``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from rlhub_offline.decision_transformer.context import RollingContext


class DecisionTransformerPolicy(BasePolicy):
    """
    A GPT-style causal transformer over the sequence ``(R_1, s_1, a_1, R_2, s_2, a_2, ...)`` of the last
    ``context_length`` steps (Chen et al. 2021): each modality has its own linear (or, for Discrete
    actions, embedding) layer, a learned embedding of the episode's timestep is added to all three
    tokens of a step (there is no other position embedding), a LayerNorm, dropout, pre-LayerNorm
    transformer blocks (torch's ``TransformerEncoderLayer``, ``norm_first``) under a causal mask and a
    final LayerNorm, as the authors' GPT-2 (with its dropout: on the embeddings, the attention weights and
    the two residual branches, not inside the feed-forward block). The action ``a_t`` is read from the output at ``s_t``'s
    token: logits for Discrete actions, ``tanh`` outputs in [-1, 1] (the action bounds rescaled) for Box.

    Observations are normalised by ``observation_mean`` / ``observation_std``, buffers set from the
    dataset and saved with the weights, so a loaded agent plays without its dataset; returns-to-go are
    divided by ``return_scale``.

    ``predict(observation, state, episode_start)`` keeps one :class:`RollingContext` per call chain: pass
    the ``state`` it returns back in, with ``episode_start``, as for SB3's recurrent policies.

    :param observation_space: Observation space (Box)
    :param action_space: Action space (Discrete or Box)
    :param lr_schedule: Learning rate schedule (its value at the start sets the optimizer's)
    :param context_length: K, the steps the transformer sees (3K tokens)
    :param max_episode_length: size of the timestep embedding; later timesteps share its last row
    :param target_return: the return-to-go a new episode is conditioned on, on the environment's scale
    :param return_scale: returns-to-go are divided by it before the network sees them
    :param embed_dim: width of the tokens
    :param n_layers: transformer blocks
    :param n_heads: attention heads
    :param dropout: dropout on the embeddings, the attention weights and the residual branches
    :param activation: the blocks' feed-forward activation ("relu" as the authors' gym code, or "gelu")
    :param optimizer_class: The optimizer (AdamW, as the authors)
    :param optimizer_kwargs: Its arguments besides the learning rate (weight decay 1e-4 by default)
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Discrete | spaces.Box,
        lr_schedule: Schedule,
        context_length: int = 20,
        max_episode_length: int = 1000,
        target_return: float = 1.0,
        return_scale: float = 1.0,
        embed_dim: int = 128,
        n_layers: int = 3,
        n_heads: int = 1,
        dropout: float = 0.1,
        activation: str = "relu",
        optimizer_class: type[th.optim.Optimizer] = th.optim.AdamW,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if optimizer_kwargs is None:
            optimizer_kwargs = {"weight_decay": 1e-4}
        super().__init__(observation_space, action_space, optimizer_class=optimizer_class,
                         optimizer_kwargs=optimizer_kwargs, squash_output=isinstance(action_space, spaces.Box))
        if not isinstance(action_space, (spaces.Discrete, spaces.Box)):
            raise ValueError(f"the Decision Transformer acts in Discrete or Box spaces, not {action_space}")
        if embed_dim % n_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be a multiple of n_heads ({n_heads})")
        self.context_length = context_length
        self.max_episode_length = max_episode_length
        self.target_return = target_return
        self.return_scale = return_scale
        self.embed_dim = embed_dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dropout = dropout
        self.activation = activation
        self.discrete_actions = isinstance(action_space, spaces.Discrete)
        self.observation_dim = get_flattened_obs_dim(observation_space)

        observation_dim = self.observation_dim
        self.register_buffer("observation_mean", th.zeros(observation_dim))
        self.register_buffer("observation_std", th.ones(observation_dim))
        #: the dataset's mean reward per step: what the return-to-go falls by when a reward is not reported
        self.register_buffer("reward_per_step", th.zeros(()))
        self.embed_timestep = nn.Embedding(max_episode_length, embed_dim)
        self.embed_return = nn.Linear(1, embed_dim)
        self.embed_observation = nn.Linear(observation_dim, embed_dim)
        if self.discrete_actions:
            self.action_dim = int(action_space.n)
            self.embed_action: nn.Module = nn.Embedding(self.action_dim, embed_dim)
            self.action_head: nn.Module = nn.Linear(embed_dim, self.action_dim)
        else:
            self.action_dim = int(np.prod(action_space.shape))
            self.embed_action = nn.Linear(self.action_dim, embed_dim)
            self.action_head = nn.Sequential(nn.Linear(embed_dim, self.action_dim), nn.Tanh())
        self.embed_norm = nn.LayerNorm(embed_dim)
        self.embed_dropout = nn.Dropout(dropout)
        block = nn.TransformerEncoderLayer(embed_dim, n_heads, 4 * embed_dim, dropout, activation=activation,
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(block, n_layers, norm=nn.LayerNorm(embed_dim),
                                                 enable_nested_tensor=False)
        for layer in self.transformer.layers:  # GPT-2 drops out the residual branches, not the feed-forward's hidden units
            layer.dropout = nn.Identity()
        self.register_buffer("causal_mask", nn.Transformer.generate_square_subsequent_mask(3 * context_length),
                             persistent=False)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            context_length=self.context_length, max_episode_length=self.max_episode_length,
            target_return=self.target_return, return_scale=self.return_scale, embed_dim=self.embed_dim,
            n_layers=self.n_layers, n_heads=self.n_heads, dropout=self.dropout, activation=self.activation,
            optimizer_class=self.optimizer_class, optimizer_kwargs=self.optimizer_kwargs,
        )
        return data

    def set_statistics(self, observation_mean: np.ndarray, observation_std: np.ndarray,
                       reward_per_step: float) -> None:
        """Set the dataset statistics the policy normalises with (saved with the weights)."""
        self.observation_mean.copy_(th.as_tensor(observation_mean, dtype=th.float32).reshape(-1))
        self.observation_std.copy_(th.as_tensor(observation_std, dtype=th.float32).reshape(-1))
        self.reward_per_step.fill_(float(reward_per_step))

    def forward(self, observations: th.Tensor, actions: th.Tensor, returns_to_go: th.Tensor,
                timesteps: th.Tensor) -> th.Tensor:
        """The action predicted at every step of a batch of windows (a step's prediction sees only its own
        return-to-go and state and the steps before it).

        :param observations: (B, T, observation_dim), raw (the policy normalises them)
        :param actions: (B, T) int64 (Discrete) or (B, T, action_dim) in [-1, 1] (Box)
        :param returns_to_go: (B, T), the environment's scale (the policy divides by ``return_scale``)
        :param timesteps: (B, T) int64, each step's index in its episode
        :return: (B, T, n) logits (Discrete) or (B, T, action_dim) actions in [-1, 1] (Box)
        """
        batch_size, length = observations.shape[:2]
        time_embeddings = self.embed_timestep(timesteps.clamp(0, self.max_episode_length - 1))
        observations = (observations - self.observation_mean) / self.observation_std
        tokens = th.stack((
            self.embed_return((returns_to_go / self.return_scale).unsqueeze(-1)) + time_embeddings,
            self.embed_observation(observations) + time_embeddings,
            self.embed_action(actions) + time_embeddings,
        ), dim=2).reshape(batch_size, 3 * length, self.embed_dim)
        tokens = self.embed_dropout(self.embed_norm(tokens))
        mask = self.causal_mask[: 3 * length, : 3 * length]
        hidden = self.transformer(tokens, mask=mask, is_causal=True)
        state_outputs = hidden.reshape(batch_size, length, 3, self.embed_dim)[:, :, 1]
        return self.action_head(state_outputs)

    # ----------------------------------------------------------------------------------------
    # Acting

    def new_context(self, n_envs: int) -> RollingContext:
        """An empty context for ``n_envs`` environments: their next step starts an episode."""
        return RollingContext(n_envs, self.context_length, self.observation_dim,
                              () if self.discrete_actions else (self.action_dim,), self.target_return,
                              float(self.reward_per_step), self.device)

    def act(self, context: RollingContext, observations: th.Tensor, episode_start: np.ndarray,
            deterministic: bool = True) -> th.Tensor:
        """Append ``observations`` to ``context`` (resetting rows that start an episode), choose the actions
        and record them; returns them (Discrete: indices; Box: in [-1, 1])."""
        positions = context.begin_step(observations, episode_start)
        outputs = self(context.observations, context.actions, context.returns_to_go, context.timesteps)
        outputs = outputs[th.arange(context.n_envs, device=outputs.device), positions]
        if not self.discrete_actions:
            actions = outputs
        elif deterministic:
            actions = outputs.argmax(dim=-1)
        else:
            actions = th.distributions.Categorical(logits=outputs).sample()
        context.end_step(positions, actions)
        return actions

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        """Actions from a context holding only ``observation`` (the first step of an episode)."""
        assert isinstance(observation, th.Tensor)
        context = self.new_context(observation.shape[0])
        return self.act(context, observation, np.ones(observation.shape[0], dtype=bool), deterministic)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]:
        """The actions for ``observation`` and the :class:`RollingContext` to pass back as ``state``.

        ``state=None`` starts every environment's episode; rows whose ``episode_start`` is True start
        again from ``target_return``. Box actions are deterministic (the network's output); Discrete ones
        are sampled from the logits unless ``deterministic``.
        """
        self.set_training_mode(False)
        observations, vectorized_env = self.obs_to_tensor(observation)
        assert isinstance(observations, th.Tensor)
        n_envs = observations.shape[0]
        if not isinstance(state, RollingContext) or state.n_envs != n_envs:
            state = self.new_context(n_envs)
        starts = np.zeros(n_envs, dtype=bool) if episode_start is None else np.asarray(episode_start, dtype=bool)
        with th.no_grad():
            actions = self.act(state, observations.reshape(n_envs, -1), starts, deterministic)
        actions_array = actions.cpu().numpy()
        if isinstance(self.action_space, spaces.Box):
            actions_array = self.unscale_action(actions_array).reshape((-1, *self.action_space.shape))
        else:
            actions_array = actions_array.reshape(-1)
        if not vectorized_env:
            actions_array = actions_array.squeeze(axis=0)
        return actions_array, state
