"""Conservative Q-learning: Double DQN (Discrete actions) or SAC (Box actions) with the CQL(H) penalty."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.sac.policies import SACPolicy

from rlhub_offline.common import OfflineAlgorithm, TransitionBatch
from rlhub_offline.cql.losses import (
    best_sampled_actions,
    continuous_conservative_penalty,
    discrete_conservative_penalty,
    double_dqn_targets,
)
from rlhub_offline.cql.policies import CQLPolicy, MlpPolicy

if TYPE_CHECKING:
    from rlhub.datasets import OfflineData


#: Data actions on the bounds have an infinite pre-squash value (SB3 clamps it to atanh(1 - 1e-7) = 8.3);
#: fitting those outliers widens the actor's spread until its clone is poor (Pendulum's expert is on a
#: bound 8% of the time), so the warm start clones them at 0.99 = tanh(2.65) instead.
BC_ACTION_LIMIT = 0.99


def soft_update(online: list[th.Tensor], target: list[th.Tensor], tau: float) -> None:
    """``target <- (1 - tau) * target + tau * online``, all tensors in one fused call (SB3's
    ``polyak_update`` loops over them in Python, a tenth of a small network's step)."""
    with th.no_grad():
        th._foreach_lerp_(target, online, tau)


class CQL(OfflineAlgorithm):
    """
    Conservative Q-Learning, CQL(H) (Kumar et al. 2020).

    Discrete actions: a Q-network learned by Double DQN with a target network, loss
    ``TD + alpha * mean_s[logsumexp_a Q(s, a) - Q(s, a_data)]`` (Huber TD, as SB3's DQN).
    Box actions: SAC with twin critics and automatic entropy temperature; each critic's loss is its
    TD error (target: the smaller target critic at ``a' ~ pi(s')``, without the entropy term unless
    ``backup_entropy``) plus ``alpha`` times the importance-sampled penalty over ``n_action_samples``
    uniform actions, policy actions at ``s`` and policy actions at ``s'`` (the paper's Algorithm 1 as
    the authors' code runs it, ``min_q_version=3``). With ``target_action_gap`` set, the weight is
    multiplied by a Lagrange multiplier learned so that the penalty stays near the gap (the paper's
    CQL-Lagrange). Each gradient step updates the temperature, the critics, then the actor.

    With ``greedy_weight`` > 0 (off by default: the paper's actor), the actor's loss also pulls its
    deterministic action towards the best, by the smaller critic, of the uniform and policy actions at
    ``s`` the penalty has just valued: the greedy target of Greedy Actor-Critic (Neumann et al. 2023,
    arXiv 1810.09103) at no extra critic pass. SAC's actor climbs the critic's gradient from where it
    stands; offline, the critic's landscape over actions has several peaks, and the actor can settle
    on a lower one while the critic's own argmax plays well (Pendulum, ``zoo_configs/cql.yml``).

    Paper: https://arxiv.org/abs/2006.04779
    Code: https://github.com/aviralkumar2907/CQL (d4rl/rlkit/torch/sac/cql.py), d3rlpy (algos/qlearning/cql.py)

    :param policy: The policy model to use (MlpPolicy: DQNPolicy or SACPolicy by the action space)
    :param env: The environment to evaluate on (if registered in Gym, can be str), or None
    :param dataset: The dataset, or its id or path for ``rlhub.datasets.load_dataset`` (not saved)
    :param learning_rate: The learning rate of the Q-network (Discrete) or the critics (Box), it can be a
        function of the current progress remaining (from 1 to 0); also the Lagrange multiplier's
    :param batch_size: Transitions per gradient step
    :param gamma: Discount factor
    :param tau: The soft update coefficient of the target networks ("Polyak update", between 0 and 1; 1: copy)
    :param target_update_interval: Gradient steps between two updates of the target networks
    :param alpha: Weight of the conservative penalty (the paper's alpha; the authors' min_q_weight)
    :param target_action_gap: None for a fixed weight; else the level the penalty is held near by a
        learned Lagrange multiplier on ``alpha * penalty - target_action_gap`` (Box actions only)
    :param actor_learning_rate: The actor's (and the entropy temperature's) learning rate (Box actions)
    :param ent_coef: SAC's entropy temperature: a number, or "auto" (learned, from 1.0) or "auto_0.1"
        (learned, from 0.1) (Box actions)
    :param target_entropy: The entropy the temperature aims for; "auto": ``-dim(A)`` (Box actions)
    :param n_action_samples: Actions sampled from each of the three proposals per state (Box actions)
    :param backup_entropy: Subtract ``ent_coef * log pi(a'|s')`` in the TD target (SAC's soft backup);
        the authors' default leaves it out (Box actions)
    :param greedy_weight: Weight of the squared distance between the actor's deterministic action and
        the best sampled action (above) in the actor's loss after the warm start; 0: SAC's actor alone (Box actions)
    :param bc_steps: Gradient steps, from the start, in which the actor clones the dataset's actions
        (maximises their log-likelihood plus the entropy bonus) instead of the critic, while the critics
        already learn (the authors' ``policy_eval_start``) (Box actions)
    :param stats_window_size: Window size for the rollout logging (unused offline)
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation
    :param verbose: the verbosity level: 0 no output, 1 info, 2 debug
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy}
    policy: CQLPolicy

    def __init__(
        self,
        policy: str | type[CQLPolicy],
        env: GymEnv | str | None,
        dataset: str | OfflineData | None = None,
        learning_rate: float | Schedule = 3e-4,
        batch_size: int = 256,
        gamma: float = 0.99,
        tau: float = 0.005,
        target_update_interval: int = 1,
        alpha: float = 5.0,
        target_action_gap: float | None = None,
        actor_learning_rate: float = 1e-4,
        ent_coef: str | float = "auto",
        target_entropy: str | float = "auto",
        n_action_samples: int = 10,
        backup_entropy: bool = False,
        greedy_weight: float = 0.0,
        bc_steps: int = 0,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy, env, dataset, learning_rate=learning_rate, batch_size=batch_size, policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size, tensorboard_log=tensorboard_log, verbose=verbose, seed=seed,
            device=device, supported_action_spaces=(spaces.Discrete, spaces.Box),
        )
        self.gamma = gamma
        self.tau = tau
        self.target_update_interval = target_update_interval
        self.alpha = alpha
        self.target_action_gap = target_action_gap
        self.actor_learning_rate = actor_learning_rate
        self.ent_coef = ent_coef
        self.target_entropy = target_entropy
        self.n_action_samples = n_action_samples
        self.backup_entropy = backup_entropy
        self.greedy_weight = greedy_weight
        self.bc_steps = bc_steps
        problems = []
        if not 0.0 < tau <= 1.0:
            problems.append(f"tau must be in (0, 1], got {tau}")
        if target_update_interval < 1:
            problems.append(f"target_update_interval must be at least 1, got {target_update_interval}")
        if alpha < 0:
            problems.append(f"alpha must be non-negative, got {alpha}")
        if greedy_weight < 0:
            problems.append(f"greedy_weight must be non-negative, got {greedy_weight}")
        if bc_steps < 0:
            problems.append(f"bc_steps must be non-negative, got {bc_steps}")
        if n_action_samples < 1:
            problems.append(f"n_action_samples must be at least 1, got {n_action_samples}")
        if isinstance(ent_coef, str) and not ent_coef.startswith("auto"):
            problems.append(f"ent_coef must be a number, 'auto' or 'auto_<initial value>', got {ent_coef!r}")
        if problems:
            raise ValueError("; ".join(problems))
        if _init_setup_model:
            self._setup_model()

    # ----------------------------------------------------------------------------------------
    # Networks

    @property
    def continuous(self) -> bool:
        return isinstance(self.action_space, spaces.Box)

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(self.observation_space, self.action_space, self.lr_schedule,
                                        **self.policy_kwargs).to(self.device)
        inner = self.policy.inner
        self.log_ent_coef: th.Tensor | None = None
        self.ent_coef_optimizer: th.optim.Optimizer | None = None
        self.log_cql_alpha: th.Tensor | None = None
        self.cql_alpha_optimizer: th.optim.Optimizer | None = None
        if isinstance(inner, SACPolicy):
            for group in inner.actor.optimizer.param_groups:
                group["lr"] = self.actor_learning_rate
            if self.target_entropy == "auto":
                self.target_entropy = -float(np.prod(self.action_space.shape))
            self.target_entropy = float(self.target_entropy)
            if isinstance(self.ent_coef, str):
                initial = float(self.ent_coef.split("_")[1]) if "_" in self.ent_coef else 1.0
                self.log_ent_coef = th.log(th.ones(1, device=self.device) * initial).requires_grad_(True)
                self.ent_coef_optimizer = th.optim.Adam([self.log_ent_coef], lr=self.actor_learning_rate)
            if self.target_action_gap is not None:
                self.log_cql_alpha = th.zeros(1, device=self.device).requires_grad_(True)
                self.cql_alpha_optimizer = th.optim.Adam([self.log_cql_alpha], lr=self.lr_schedule(1))
            if inner.actor.use_sde:
                raise ValueError("CQL samples its actor's Gaussian per state; gSDE (use_sde) is not supported")
            online, target = inner.critic, inner.critic_target
        else:
            online, target = inner.q_net, inner.q_net_target
        self._online_parameters = list(online.parameters())
        self._target_parameters = list(target.parameters())

    def _learned_actions(self, data: OfflineData) -> np.ndarray:
        if self.continuous:  # SAC acts in [-1, 1]; the dataset in the environment's bounds
            return self.policy.scale_action(data.actions.astype(np.float32))
        return data.actions

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        if not self.continuous:
            return ["policy", "policy.inner.optimizer"], []
        state_dicts = ["policy", "policy.inner.actor.optimizer", "policy.inner.critic.optimizer"]
        tensors = []
        if self.ent_coef_optimizer is not None:
            state_dicts.append("ent_coef_optimizer")
            tensors.append("log_ent_coef")
        if self.cql_alpha_optimizer is not None:
            state_dicts.append("cql_alpha_optimizer")
            tensors.append("log_cql_alpha")
        return state_dicts, tensors

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_online_parameters", "_target_parameters"]

    def _scheduled_optimizers(self) -> list[th.optim.Optimizer]:
        inner = self.policy.inner
        return [inner.critic.optimizer] if isinstance(inner, SACPolicy) else [inner.optimizer]

    # ----------------------------------------------------------------------------------------
    # One gradient step

    def train_step(self, batch: TransitionBatch) -> dict[str, th.Tensor]:
        inner = self.policy.inner
        stats = self._continuous_step(inner, batch) if isinstance(inner, SACPolicy) else self._discrete_step(inner, batch)
        if self._n_updates % self.target_update_interval == 0:
            soft_update(self._online_parameters, self._target_parameters, self.tau)
        return stats

    def _discrete_step(self, inner: DQNPolicy, batch: TransitionBatch) -> dict[str, th.Tensor]:
        q_values = inner.q_net(batch.observations)
        with th.no_grad():
            targets = double_dqn_targets(batch.rewards, batch.terminations, inner.q_net(batch.next_observations),
                                         inner.q_net_target(batch.next_observations), self.gamma)
        td_loss = F.smooth_l1_loss(q_values.gather(1, batch.actions.reshape(-1, 1)).squeeze(1), targets)
        penalty = discrete_conservative_penalty(q_values, batch.actions)
        loss = td_loss + self.alpha * penalty
        inner.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        inner.optimizer.step()
        return {"loss": loss.detach(), "td_loss": td_loss.detach(), "conservative_penalty": penalty.detach()}

    def _continuous_step(self, inner: SACPolicy, batch: TransitionBatch) -> dict[str, th.Tensor]:
        actor, critic = inner.actor, inner.critic
        observations, size, samples = batch.observations, len(batch.actions), self.n_action_samples
        stats: dict[str, th.Tensor] = {}

        # Temperature (SAC): move log alpha so that the policy's entropy tends to target_entropy
        mean_s, log_std_s, _ = actor.get_action_dist_params(observations)
        new_actions, log_prob = actor.action_dist.log_prob_from_params(mean_s, log_std_s)
        if self.log_ent_coef is not None and self.ent_coef_optimizer is not None:
            ent_coef = th.exp(self.log_ent_coef.detach())
            ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
            self.ent_coef_optimizer.zero_grad(set_to_none=True)
            ent_coef_loss.backward()
            self.ent_coef_optimizer.step()
            stats["ent_coef_loss"] = ent_coef_loss.detach()
        else:
            ent_coef = th.tensor(float(self.ent_coef), device=self.device)
        stats["ent_coef"] = ent_coef.squeeze()

        # Critics: TD towards the smaller target critic, plus the conservative penalty
        with th.no_grad():
            # one actor pass over s' and s; a' ~ pi(s') for the target, N actions ~ pi(s') and N ~ pi(s) for the penalty
            mean, log_std, _ = actor.get_action_dist_params(th.cat([batch.next_observations, observations]))
            next_actions, next_log_prob = actor.action_dist.log_prob_from_params(mean[:size], log_std[:size])
            sampled, sampled_log_prob = actor.action_dist.log_prob_from_params(
                mean.repeat_interleave(samples, dim=0), log_std.repeat_interleave(samples, dim=0))
            next_q = th.min(th.cat(inner.critic_target(batch.next_observations, next_actions), dim=1), dim=1).values
            if self.backup_entropy:
                next_q = next_q - ent_coef * next_log_prob
            targets = batch.rewards + self.gamma * (1.0 - batch.terminations) * next_q
            random_actions = th.rand((size * samples, sampled.shape[1]), device=self.device) * 2.0 - 1.0
            policy_log_probs = sampled_log_prob.reshape(2, size, samples)  # [pi(s') samples, pi(s) samples]
            repeated = observations.repeat_interleave(samples, dim=0)
        # one pass per critic over the data actions and the 3N sampled actions, all at s
        critic_actions = th.cat([batch.actions, random_actions, sampled])
        critic_observations = th.cat([observations, repeated, repeated, repeated])
        q_all = th.stack([q.squeeze(1) for q in critic(critic_observations, critic_actions)])  # (n_critics, B + 3BN)
        q_data = q_all[:, :size]
        q_random, q_next, q_current = q_all[:, size:].reshape(len(q_all), 3, size, samples).unbind(dim=1)
        td_loss = sum(F.mse_loss(q, targets) for q in q_data)
        penalty = continuous_conservative_penalty(q_random, q_current, q_next, policy_log_probs[1], policy_log_probs[0],
                                                  q_data, action_dim=sampled.shape[1])
        conservative_loss = self.alpha * penalty
        if self.log_cql_alpha is not None and self.cql_alpha_optimizer is not None:
            # CQL-Lagrange: the multiplier grows while the penalty exceeds the gap, shrinks below it
            cql_alpha = self.log_cql_alpha.exp().clamp(0.0, 1e6)
            cql_alpha_loss = -(cql_alpha * (conservative_loss.detach() - self.target_action_gap)).mean()
            self.cql_alpha_optimizer.zero_grad(set_to_none=True)
            cql_alpha_loss.backward()
            self.cql_alpha_optimizer.step()
            conservative_loss = cql_alpha.detach() * (conservative_loss - self.target_action_gap)
            stats["cql_alpha"] = cql_alpha.detach().squeeze()
        cloning = self._n_updates < self.bc_steps
        greedy = self.greedy_weight > 0 and not cloning
        if greedy:
            with th.no_grad():  # the uniform and pi(s) actions above, already valued at s
                candidates = th.cat([random_actions.view(size, samples, -1),
                                     sampled[size * samples:].view(size, samples, -1)], dim=1)
                best_actions = best_sampled_actions(candidates, th.cat([q_random, q_current], dim=2))
        critic_loss = td_loss + conservative_loss.sum()
        critic.optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        critic.optimizer.step()

        # Actor (SAC): maximise the smaller critic plus the entropy bonus; during the first bc_steps, the
        # data actions' log-likelihood instead (the critics are not worth following yet)
        if cloning:
            actor.action_dist.proba_distribution(mean_s, log_std_s)
            objective = actor.action_dist.log_prob(batch.actions.clamp(-BC_ACTION_LIMIT, BC_ACTION_LIMIT))
        else:
            objective = th.min(th.cat(critic(observations, new_actions), dim=1), dim=1).values
            if greedy:  # SquashedDiagGaussian's deterministic action is tanh(mean)
                objective = objective - self.greedy_weight * (th.tanh(mean_s) - best_actions).square().sum(dim=1)
        actor_loss = (ent_coef * log_prob - objective).mean()
        actor.optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        actor.optimizer.step()

        stats.update({"critic_loss": critic_loss.detach(), "td_loss": td_loss.detach(),
                      "conservative_penalty": penalty.detach().mean(), "actor_loss": actor_loss.detach(),
                      "q_data": q_data.detach().mean()})
        return stats
