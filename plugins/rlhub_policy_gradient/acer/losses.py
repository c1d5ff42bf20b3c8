"""ACER's update rules (Wang et al. 2016, https://arxiv.org/abs/1611.01224), as functions of tensors.

The building blocks are pure functions with the paper's equation in the docstring and a test against
hand-computed numbers: :func:`retrace_targets`, :func:`truncated_importance_weights`,
:func:`stochastic_dueling_q`, :func:`value_targets` and :func:`trust_region_step`. The two losses,
:func:`discrete_loss` and :func:`continuous_loss`, put them together from the network's outputs and
return ``(loss, stats)``: the tensor to differentiate and the numbers to log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch as th

#: Keeps logarithms and ratios of probabilities finite.
EPS = 1e-6
#: Largest log importance ratio computed (exp(30) ~ 1e13): beyond that only its truncation matters.
MAX_LOG_RATIO = 30.0


def retrace_targets(rewards: th.Tensor, dones: th.Tensor, q_taken: th.Tensor, values: th.Tensor,
                    traces: th.Tensor, bootstrap: th.Tensor, gamma: float) -> th.Tensor:
    """Retrace targets ``Q_ret`` (eq. 5 of the ACER paper), computed backwards along each segment.

    ``Q_ret(x_t, a_t) = r_t + gamma * [c_{t+1} (Q_ret(x_{t+1}, a_{t+1}) - Q(x_{t+1}, a_{t+1})) + V(x_{t+1})]``,
    cut at episode ends and started from ``V`` of the observation after the segment. With traces of
    1 this is ``Q_opc``.

    :param rewards: (segments, steps)
    :param dones: (segments, steps), 1 where the episode ended after the step
    :param q_taken: (segments, steps) ``Q(x_t, a_t)`` of the critic
    :param values: (segments, steps) ``V(x_t)``
    :param traces: (segments, steps) ``c_t``: ``min(1, rho_t)`` (discrete), ``min(1, rho_t ** (1/d))``
        (continuous) or 1 (``Q_opc``)
    :param bootstrap: (segments,) ``V`` of the observation following the last step
    :param gamma: discount factor
    :return: (segments, steps) the targets
    """
    targets = th.empty_like(rewards)
    target = bootstrap
    for step in reversed(range(rewards.shape[1])):
        target = rewards[:, step] + gamma * (1.0 - dones[:, step]) * target
        targets[:, step] = target
        target = traces[:, step] * (target - q_taken[:, step]) + values[:, step]
    return targets


def truncated_importance_weights(ratios: th.Tensor, correction_term: float) -> tuple[th.Tensor, th.Tensor]:
    """The two weights of the truncated importance sampling with bias correction (eq. 7 of the paper).

    ``g = min(c, rho_t) grad log f(a_t) [Q_ret - V]  +  E_{a ~ f} [1 - c / rho(a)]_+ grad log f(a) [Q(a) - V]``:
    the truncated weight ``min(c, rho)`` bounds the variance of the first term; the correction
    weight ``[1 - c / rho]_+`` is what truncation dropped, non-zero only where ``rho > c``, and its
    expectation is taken under the current policy, so it needs no importance weight of its own.

    :param ratios: (...) importance ratios ``rho = f(a) / mu(a)``
    :param correction_term: the truncation threshold ``c``
    :return: ``min(c, rho)`` and ``[1 - c / rho]_+``, both shaped as ``ratios``
    """
    truncated = ratios.clamp(max=correction_term)
    correction = (1.0 - correction_term / (ratios + EPS)).clamp(min=0.0)
    return truncated, correction


def stochastic_dueling_q(values: th.Tensor, advantage: th.Tensor, sampled_advantages: th.Tensor) -> th.Tensor:
    """The stochastic dueling network's estimate (eq. 14 of the paper).

    ``Q~(x, a) = V(x) + A(x, a) - 1/n sum_i A(x, u_i)``, ``u_i ~ f(.|x)``: centring the advantage
    stream on the policy's own actions makes ``E_{a ~ f}[Q~(x, a)] = V(x)`` in expectation.

    :param values: (...) ``V(x)``
    :param advantage: (...) ``A(x, a)``
    :param sampled_advantages: (n, ...) ``A(x, u_i)`` for ``n`` actions sampled from the policy
    :return: (...) ``Q~(x, a)``
    """
    return values + advantage - sampled_advantages.mean(0)


def value_targets(ratios: th.Tensor, q_retrace: th.Tensor, q_taken: th.Tensor, values: th.Tensor) -> th.Tensor:
    """The target of the state value in the continuous case (section 4 of the paper).

    ``V_target(x_t) = min(1, rho_t) (Q_ret(x_t, a_t) - Q~(x_t, a_t)) + V(x_t)``

    :param ratios: (...) importance ratios ``rho_t`` of the actions taken
    :param q_retrace: (...) ``Q_ret``
    :param q_taken: (...) ``Q~(x_t, a_t)`` of the dueling network
    :param values: (...) ``V(x_t)``
    :return: (...) the targets
    """
    return ratios.clamp(max=1.0) * (q_retrace - q_taken) + values


def trust_region_step(gradient: th.Tensor, kl_gradient: th.Tensor, delta: float) -> tuple[th.Tensor, th.Tensor]:
    """ACER's efficient trust-region projection (eq. 12-13 of the paper), one row per sample.

    Solves ``min_z 1/2 ||g - z||^2  s.t.  k.z <= delta`` in closed form:
    ``z* = g - max(0, (k.g - delta) / ||k||^2) k``.

    :param gradient: (samples, P) gradient ``g`` of the policy objective with respect to the
        distribution statistics ``phi``
    :param kl_gradient: (samples, P) ``k``, the gradient of ``KL(f(phi_average) || f(phi))``
    :param delta: the trust region's radius
    :return: ``z*`` (samples, P) and the scale of ``k`` removed from each row (samples,)
    """
    scale = ((kl_gradient * gradient).sum(-1) - delta) / (kl_gradient.pow(2).sum(-1) + 1e-10)
    scale = scale.clamp(min=0.0)
    return gradient - scale.unsqueeze(-1) * kl_gradient, scale


@dataclass(frozen=True)
class LossSettings:
    """ACER's hyperparameters that enter a loss (see :class:`~rlhub_policy_gradient.acer.ACER`)."""

    gamma: float
    correction_term: float
    ent_coef: float
    q_coef: float
    trust_region: bool
    delta: float
    use_q_opc: bool
    n_action_samples: int = 1


@dataclass
class SegmentBatch:
    """A batch of segments as tensors (leading axes: segment, step).

    ``rewards`` already include the time-limit bootstrap; ``behaviour`` is what the behaviour policy
    knew of each step (see :class:`~rlhub_policy_gradient.acer.buffers.Segments`).
    """

    actions: th.Tensor
    rewards: th.Tensor
    dones: th.Tensor
    behaviour: th.Tensor


def policy_loss(truncated_gain: th.Tensor, correction_gain: th.Tensor, entropy: th.Tensor, kl: th.Tensor,
                statistics: list[th.Tensor], settings: LossSettings) -> tuple[th.Tensor, dict[str, float]]:
    """The policy part of the loss, from the objective whose gradient is ACER's policy gradient,
    ``truncated_gain + correction_gain + ent_coef * entropy``: its negative, or, with the trust
    region, a surrogate whose gradient with respect to the distribution statistics ``phi`` is the
    projected ``-z*`` (eq. 12-13).

    :param truncated_gain: (segments, steps) ``min(c, rho) [Q - V] log f(a_t)``
    :param correction_gain: (segments, steps) the bias correction's ``E_a [1 - c/rho(a)]_+ [Q(a) - V] log f(a)``
    :param entropy: (segments, steps) the policy's entropy
    :param kl: (segments, steps) ``KL(average policy || policy)``
    :param statistics: the distribution statistics ``phi`` (probabilities; or mean and log std)
    """
    objective = truncated_gain + correction_gain + settings.ent_coef * entropy
    stats = {
        "policy_gradient_loss": -truncated_gain.detach().mean().item(),
        "bias_correction_loss": -correction_gain.detach().mean().item(),
        "entropy_loss": -entropy.detach().mean().item(),
        "kl_to_average": kl.detach().mean().item(),
    }
    if not settings.trust_region:
        return -objective.mean(), stats
    n_samples = objective.numel()
    gradients = th.autograd.grad(objective.sum(), statistics, retain_graph=True)
    kl_gradients = th.autograd.grad(kl.sum(), statistics, retain_graph=True)
    flat_gradient = th.cat([grad.reshape(n_samples, -1) for grad in gradients], dim=1)
    flat_kl_gradient = th.cat([grad.reshape(n_samples, -1) for grad in kl_gradients], dim=1)
    projected, scale = trust_region_step(flat_gradient, flat_kl_gradient, settings.delta)
    stats["trust_region_scale"] = scale.mean().item()
    stats["trust_region_active"] = (scale > 0).float().mean().item()
    flat_statistics = th.cat([statistic.reshape(n_samples, -1) for statistic in statistics], dim=1)
    return -(flat_statistics * projected.detach()).sum() / n_samples, stats


def _off_policy_stats(ratio: th.Tensor, q_retrace: th.Tensor, settings: LossSettings) -> dict[str, float]:
    """How far the batch is from the current policy, and the critic's targets."""
    return {
        "importance_weight": ratio.mean().item(),
        "truncated_fraction": (ratio > settings.correction_term).float().mean().item(),
        "q_retrace": q_retrace.mean().item(),
    }


def discrete_loss(probs_all: th.Tensor, q_all: th.Tensor, average_probs: th.Tensor, batch: SegmentBatch,
                  settings: LossSettings) -> tuple[th.Tensor, dict[str, float]]:
    """ACER's loss for discrete actions (Algorithm 2 of the paper).

    :param probs_all: (segments, steps + 1, actions) ``f(.|x)`` of the network, the last step being
        the observation after the segment
    :param q_all: (segments, steps + 1, actions) ``Q(x, .)``
    :param average_probs: (segments, steps, actions) the average policy network's ``f(.|x)``
    """
    n_steps = batch.rewards.shape[1]
    probs, q_values = probs_all[:, :n_steps], q_all[:, :n_steps]  # probs are phi, the trust region's statistics
    actions = batch.actions.long().unsqueeze(-1)
    with th.no_grad():
        values_all = (probs_all * q_all).sum(-1)
        values = values_all[:, :n_steps]
        ratios = probs / (batch.behaviour + EPS)  # rho(a) for every action
        ratio = ratios.gather(-1, actions).squeeze(-1)
        q_taken = q_values.gather(-1, actions).squeeze(-1)
        q_retrace = retrace_targets(batch.rewards, batch.dones, q_taken, values, ratio.clamp(max=1.0),
                                    values_all[:, n_steps], settings.gamma)
        q_policy = (retrace_targets(batch.rewards, batch.dones, q_taken, values, th.ones_like(ratio),
                                    values_all[:, n_steps], settings.gamma) if settings.use_q_opc else q_retrace)
        truncated_weight = truncated_importance_weights(ratio, settings.correction_term)[0]
        # The bias correction's expectation over a ~ f, exact for discrete actions: sum_a f(a) [...].
        correction_weights = truncated_importance_weights(ratios, settings.correction_term)[1]
        correction_weights = correction_weights * probs * (q_values - values.unsqueeze(-1))

    log_probs = th.log(probs + EPS)
    truncated_gain = truncated_weight * (q_policy - values) * log_probs.gather(-1, actions).squeeze(-1)
    correction_gain = (correction_weights * log_probs).sum(-1)
    entropy = -(probs * log_probs).sum(-1)
    kl = (average_probs * (th.log(average_probs + EPS) - log_probs)).sum(-1)
    pi_loss, stats = policy_loss(truncated_gain, correction_gain, entropy, kl, [probs], settings)

    q_loss = 0.5 * (q_retrace - q_values.gather(-1, actions).squeeze(-1)).pow(2).mean()
    stats.update(_off_policy_stats(ratio, q_retrace, settings), q_loss=q_loss.item())
    return pi_loss + settings.q_coef * q_loss, stats


def density_ratio(policy: th.distributions.Normal, behaviour_policy: th.distributions.Normal,
                  actions: th.Tensor) -> th.Tensor:
    """``f(a) / mu(a)`` of diagonal Gaussians, from log densities capped at :data:`MAX_LOG_RATIO`."""
    log_ratio: th.Tensor = policy.log_prob(actions).sum(-1) - behaviour_policy.log_prob(actions).sum(-1)
    return log_ratio.clamp(max=MAX_LOG_RATIO).exp()


def continuous_loss(mean: th.Tensor, log_std: th.Tensor, values_all: th.Tensor,
                    advantage: Callable[[th.Tensor], th.Tensor], average_policy: th.distributions.Normal,
                    batch: SegmentBatch, settings: LossSettings) -> tuple[th.Tensor, dict[str, float]]:
    """ACER's loss for continuous actions: Gaussian policy, stochastic dueling network (section 4).

    :param mean: (segments, steps, action_dim) the network's policy mean on the segments' steps
    :param log_std: (segments, steps, action_dim) its log standard deviation; with ``mean`` the
        statistics ``phi`` the trust region acts on
    :param values_all: (segments, steps + 1) ``V(x)``, the last step being the observation after the segment
    :param advantage: actions (..., segments, steps, action_dim) to ``A(x, a)`` (..., segments, steps)
        on the segments' steps
    :param average_policy: the average policy network's policy on the same steps
    """
    n_steps = batch.rewards.shape[1]
    action_dim = mean.shape[-1]
    values = values_all[:, :n_steps]
    policy = th.distributions.Normal(mean, log_std.exp())
    behaviour_policy = th.distributions.Normal(batch.behaviour[..., :action_dim],
                                               batch.behaviour[..., action_dim:].exp())
    with th.no_grad():
        values_target = values_all.detach()
        sampled_actions = policy.sample()  # a' ~ f, for the bias correction
        ratio = density_ratio(policy, behaviour_policy, batch.actions)
        sampled_ratio = density_ratio(policy, behaviour_policy, sampled_actions)
        centring_actions = policy.sample((settings.n_action_samples,))

    centring_advantages = advantage(centring_actions)
    q_taken = stochastic_dueling_q(values, advantage(batch.actions), centring_advantages)
    with th.no_grad():
        q_sampled = stochastic_dueling_q(values, advantage(sampled_actions), centring_advantages)
        traces = ratio.pow(1.0 / action_dim).clamp(max=1.0)
        bootstrap = values_target[:, n_steps]
        q_retrace = retrace_targets(batch.rewards, batch.dones, q_taken.detach(), values_target[:, :n_steps], traces,
                                    bootstrap, settings.gamma)
        q_policy = (retrace_targets(batch.rewards, batch.dones, q_taken.detach(), values_target[:, :n_steps],
                                    th.ones_like(traces), bootstrap, settings.gamma) if settings.use_q_opc else q_retrace)
        truncated_weight = truncated_importance_weights(ratio, settings.correction_term)[0]
        correction_weight = truncated_importance_weights(sampled_ratio, settings.correction_term)[1]
        v_targets = value_targets(ratio, q_retrace, q_taken.detach(), values_target[:, :n_steps])

    truncated_gain = (truncated_weight * (q_policy - values_target[:, :n_steps])
                      * policy.log_prob(batch.actions).sum(-1))
    correction_gain = (correction_weight * (q_sampled - values_target[:, :n_steps])
                       * policy.log_prob(sampled_actions).sum(-1))
    entropy = policy.entropy().sum(-1)
    kl = th.distributions.kl_divergence(average_policy, policy).sum(-1)
    pi_loss, stats = policy_loss(truncated_gain, correction_gain, entropy, kl, [mean, log_std], settings)

    q_loss = 0.5 * (q_retrace - q_taken).pow(2).mean()
    v_loss = 0.5 * (v_targets - values).pow(2).mean()
    stats.update(_off_policy_stats(ratio, q_retrace, settings), q_loss=q_loss.item(), v_loss=v_loss.item(),
                 std=log_std.detach().exp().mean().item())
    return pi_loss + settings.q_coef * (q_loss + v_loss), stats
