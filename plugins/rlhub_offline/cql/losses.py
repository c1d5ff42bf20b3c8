"""CQL's update rules as pure functions (Kumar et al. 2020, "Conservative Q-Learning for Offline
Reinforcement Learning", arXiv 2006.04779, eq. 4: CQL(H)).

CQL(H) adds to the critic's TD loss, weighted by ``alpha``,

    E_{s~D}[ log sum_a exp Q(s, a) ] - E_{(s,a)~D}[ Q(s, a) ]

which pushes Q down on every action (softly, the largest most) and up on the dataset's, so the
greedy policy does not chase actions the data never tried. With Discrete actions the sum is exact;
with Box actions it is estimated by importance sampling (the paper's appendix F, the authors'
``min_q_version=3``): ``N`` uniform actions, ``N`` from the policy at ``s`` and ``N`` from the policy
at ``s'``, each ``Q`` minus the log-density the action was drawn from.
"""

from __future__ import annotations

import math

import torch as th


def double_dqn_targets(rewards: th.Tensor, terminations: th.Tensor, next_q_online: th.Tensor,
                       next_q_target: th.Tensor, gamma: float) -> th.Tensor:
    """Double DQN's targets (van Hasselt et al. 2016): the online network picks, the target network values,

    ``y = r + gamma * (1 - d) * Q_target(s', argmax_a Q_online(s', a))``.

    :param rewards: (B,)
    :param terminations: (B,) 1 where the episode terminated (no bootstrap), else 0
    :param next_q_online: (B, n_actions) the online network's values at ``s'``
    :param next_q_target: (B, n_actions) the target network's values at ``s'``
    :param gamma: discount factor
    :return: (B,) targets (no gradient flows into them if the inputs carry none)
    """
    greedy = next_q_online.argmax(dim=1, keepdim=True)
    return rewards + gamma * (1.0 - terminations) * next_q_target.gather(1, greedy).squeeze(1)


def discrete_conservative_penalty(q_values: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """``mean_s[ logsumexp_a Q(s, a) - Q(s, a_data) ]`` over the batch (CQL(H) with exact sums).

    :param q_values: (B, n_actions)
    :param actions: (B,) int64, the dataset's actions
    :return: a scalar
    """
    data_values = q_values.gather(1, actions.reshape(-1, 1)).squeeze(1)
    return (th.logsumexp(q_values, dim=1) - data_values).mean()


def continuous_conservative_penalty(q_random: th.Tensor, q_current: th.Tensor, q_next: th.Tensor,
                                    log_prob_current: th.Tensor, log_prob_next: th.Tensor,
                                    q_data: th.Tensor, action_dim: int) -> th.Tensor:
    """CQL(H) with the log-sum-exp over actions estimated by importance sampling, per critic:

    ``mean_s[ logsumexp_j( Q(s, u_j) - log U(u_j), Q(s, a_j) - log pi(a_j|s), Q(s, a'_j) - log pi(a'_j|s') ) ]
    - mean_s[ Q(s, a_data) ]``

    with ``u_j`` uniform in [-1, 1]^d (density ``0.5^d``), ``a_j ~ pi(.|s)`` and ``a'_j ~ pi(.|s')``, all
    valued at ``s``. As the authors' code (and d3rlpy), the constant ``log 3N`` of the average is
    left out: it moves no gradient, only the level ``target_action_gap`` is compared with.

    :param q_random: (n_critics, B, N) values of the uniform actions
    :param q_current: (n_critics, B, N) values of the policy's actions at ``s``
    :param q_next: (n_critics, B, N) values (at ``s``) of the policy's actions at ``s'``
    :param log_prob_current: (B, N) their log-densities under the policy (no gradient needed)
    :param log_prob_next: (B, N) likewise
    :param q_data: (n_critics, B) values of the dataset's actions
    :param action_dim: the dimension ``d`` of the (rescaled) action space
    :return: (n_critics,) one penalty per critic
    """
    importance_weighted = th.cat([
        q_random - uniform_log_density(action_dim),
        q_current - log_prob_current,
        q_next - log_prob_next,
    ], dim=2)
    return th.logsumexp(importance_weighted, dim=2).mean(dim=1) - q_data.mean(dim=1)


def uniform_log_density(action_dim: int) -> float:
    """Log-density of the uniform distribution on [-1, 1]^action_dim: ``log 0.5^d``."""
    return action_dim * math.log(0.5)


def best_sampled_actions(actions: th.Tensor, values: th.Tensor) -> th.Tensor:
    """Per state, the sampled action whose smallest value over the critics is the largest.

    :param actions: (B, M, d) M candidate actions per state
    :param values: (n_critics, B, M) their values
    :return: (B, d)
    """
    best = values.min(dim=0).values.argmax(dim=1)
    return actions[th.arange(len(actions), device=actions.device), best]
