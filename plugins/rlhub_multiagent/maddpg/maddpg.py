"""MADDPG (Lowe et al. 2017): MATD3 with one critic per agent, no target smoothing, no delay."""

from __future__ import annotations

from typing import Any

import torch as th
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from rlhub_multiagent.common.policies import MultiAgentPolicy
from rlhub_multiagent.matd3 import MATD3


class MADDPG(MATD3):
    """
    Multi-Agent Deep Deterministic Policy Gradient: per agent, a decentralised actor and a centralised
    critic over every agent's observation and action, from one shared replay buffer; Discrete agents
    act through the Gumbel-softmax, Box agents with Gaussian exploration noise. The defaults are the
    paper's MPE settings: Adam at 0.01, gamma 0.95, tau 0.01, batches of 1024, an update every 100
    transitions, two hidden layers of 64, gradients clipped at 0.5.

    As SB3's DDPG is TD3 with its additions off, this is :class:`MATD3` with one critic per agent,
    ``policy_delay=1`` and no target policy noise (Discrete target actions are still sampled, as
    the authors' code samples the target policy).

    Paper: https://arxiv.org/abs/1706.02275
    Code: https://github.com/openai/maddpg (maddpg/trainer/maddpg.py)

    See :class:`MATD3` for the parameters.
    """

    default_n_critics = 1

    def __init__(
        self,
        policy: str | type[MultiAgentPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 1e-2,
        buffer_size: int = 1_000_000,
        learning_starts: int = 1000,
        batch_size: int = 1024,
        tau: float = 0.01,
        gamma: float = 0.95,
        train_freq: int | tuple[int, str] = 100,
        gradient_steps: int = 1,
        exploration_noise: float = 0.1,
        actor_regularization: float = 1e-3,
        max_grad_norm: float = 0.5,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy, env, learning_rate=learning_rate, buffer_size=buffer_size, learning_starts=learning_starts,
            batch_size=batch_size, tau=tau, gamma=gamma, train_freq=train_freq, gradient_steps=gradient_steps,
            exploration_noise=exploration_noise, policy_delay=1, target_policy_noise=0.0, target_noise_clip=0.0,
            actor_regularization=actor_regularization, max_grad_norm=max_grad_norm,
            stats_window_size=stats_window_size, tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs,
            verbose=verbose, seed=seed, device=device, _init_setup_model=_init_setup_model,
        )
