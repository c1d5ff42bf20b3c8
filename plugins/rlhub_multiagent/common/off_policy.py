"""The rollout side every multi-agent actor-critic of the family shares: SB3's off-policy loop
(``collect_rollouts``, ``train_freq``, callbacks, logging) with dict actions and the joint buffer."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy

from rlhub_multiagent.common.buffers import MultiAgentReplayBuffer
from rlhub_multiagent.common.policies import MultiAgentActor, MultiAgentCritic, MultiAgentPolicy


class MultiAgentOffPolicyAlgorithm(OffPolicyAlgorithm):
    """An OffPolicyAlgorithm whose env is a vector of PettingZoo envs (Dict spaces keyed by agent).

    Exploration: uniformly random actions for the first ``learning_starts`` steps, then each actor's
    Gumbel-softmax sample (Discrete agents) or its action plus Gaussian noise of ``exploration_noise``
    (Box agents, in [-1, 1] units). The replay buffer stores each agent's reward and the joint
    actions as the networks write them; ``rollout/ep_rew_mean`` is the agents' summed return, each
    agent's own is logged as ``rollout/ep_rew_mean/<agent>``.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MultiInputPolicy": MultiAgentPolicy}
    policy: MultiAgentPolicy
    replay_buffer: MultiAgentReplayBuffer  # type: ignore[assignment]
    actor: MultiAgentActor
    actor_target: MultiAgentActor
    critic: MultiAgentCritic
    critic_target: MultiAgentCritic

    def __init__(self, *args: Any, exploration_noise: float = 0.1, **kwargs: Any) -> None:
        kwargs.update(replay_buffer_class=MultiAgentReplayBuffer, support_multi_env=True, sde_support=False,
                      supported_action_spaces=(spaces.Dict,))
        super().__init__(*args, **kwargs)
        self.exploration_noise = exploration_noise

    def _setup_model(self) -> None:
        self.replay_buffer_class = MultiAgentReplayBuffer  # a loaded zip's stored class is not trusted to be it
        self.replay_buffer_kwargs = {}
        super()._setup_model()
        self.actor, self.actor_target = self.policy.actor, self.policy.actor_target
        self.critic, self.critic_target = self.policy.critic, self.policy.critic_target

    def _sample_action(self, learning_starts: int, action_noise: ActionNoise | None = None,
                       n_envs: int = 1) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The env's actions ``{agent: (n_envs, ...)}`` and the joint actions the buffer stores."""
        joint = self.policy.joint
        if self.num_timesteps < learning_starts:
            actions = {slot.name: np.stack([slot.action_space.sample() for _ in range(n_envs)]) for slot in joint.slots}
            return actions, joint.join_actions(actions)
        assert isinstance(self._last_obs, dict)
        if self.policy.training:
            self.policy.set_training_mode(False)
        return self.policy.act(joint.join_observations(self._last_obs), explore=True, noise_std=self.exploration_noise)

    def _store_transition(self, replay_buffer: Any, buffer_action: np.ndarray, new_obs: Any, reward: np.ndarray,
                          dones: np.ndarray, infos: list[dict[str, Any]]) -> None:
        """SB3's, without its deepcopy of every observation at every step (a tenth of the rollout's time):
        only the envs whose episode ended get their terminal observation, in copied arrays."""
        if self._vec_normalize_env is not None:
            super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)
            return
        next_obs = new_obs
        ended = [index for index, done in enumerate(dones) if done and infos[index].get("terminal_observation") is not None]
        if ended:
            next_obs = {agent: batch.copy() for agent, batch in new_obs.items()}
            for index in ended:
                for agent, value in infos[index]["terminal_observation"].items():
                    next_obs[agent][index] = value
        replay_buffer.add(self._last_obs, next_obs, buffer_action, reward, dones, infos)
        self._last_obs = self._last_original_obs = new_obs

    def dump_logs(self) -> None:
        for agent in self.policy.joint.agents:
            key = f"return_{agent}"  # the Monitor column rlhub.parallel_envs writes
            returns = [info[key] for info in self.ep_info_buffer if key in info]
            if returns:
                self.logger.record(f"rollout/ep_rew_mean/{agent}", float(np.mean(returns)))
        super().dump_logs()

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "actor", "critic", "actor_target", "critic_target"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "actor.optimizer", "critic.optimizer"], []
