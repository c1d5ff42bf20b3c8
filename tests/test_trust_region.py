"""The TRPO family: K-FAC against dense linear algebra (factors, running averages, the exact
preconditioned step, convolutions, the KL clipping, saving), the Fisher-vector product against a
dense Fisher, NPG's fixed step, PPO-KL's adaptive penalty, and a short learning check of each."""

import copy
import math

import numpy as np
import pytest
import torch as th
from rlhub_trust_region.acktr import ACKTR, KFAC
from rlhub_trust_region.common.natural_gradient import FisherVectorProduct, actor_parameters, policy_kl
from rlhub_trust_region.npg import NPG
from rlhub_trust_region.ppo_kl import PPOKL
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from torch import nn


def _gaussian_fisher_loss(outputs):
    """A loss whose per-sample output gradients are unit Gaussian samples (a unit-Gaussian model)."""
    targets = (outputs + th.randn_like(outputs)).detach()
    return 0.5 * ((outputs - targets) ** 2).sum(dim=1).mean()


def _record_factors(layer, optimizer, inputs):
    with optimizer.recording():
        outputs = layer(inputs)
    optimizer.update_curvature(_gaussian_fisher_loss(outputs))
    return outputs


def _dense_factors(inputs, output_grads):
    """A = E[a a^T] (a with a trailing 1 for the bias), G = E[g g^T] of the per-sample gradients."""
    batch_size = inputs.shape[0]
    a = th.cat([inputs, th.ones(batch_size, 1, dtype=inputs.dtype)], dim=1)
    g = output_grads * batch_size
    return a.T @ a / batch_size, g.T @ g / batch_size


def test_kfac_step_is_the_exact_natural_gradient_of_the_kronecker_factored_fisher():
    th.manual_seed(0)
    layer = nn.Linear(4, 3).double()
    optimizer = KFAC(layer, damping=0.05)
    inputs = th.randn(32, 4, dtype=th.float64)

    # The factors, against the per-sample gradients computed densely from the same noise.
    th.manual_seed(1)
    _record_factors(layer, optimizer, inputs)
    th.manual_seed(1)
    outputs = layer(inputs)
    output_grads = th.autograd.grad(_gaussian_fisher_loss(outputs), outputs)[0]
    a_factor, g_factor = _dense_factors(inputs, output_grads)
    state = optimizer.state[layer.weight]
    th.testing.assert_close(state["a_factor"], a_factor)
    th.testing.assert_close(state["g_factor"], g_factor)

    # The step: (G (x) A + damping I)^-1 vec(grad), with [W | b] flattened row by row.
    loss = (layer(inputs) ** 3).mean()
    optimizer.zero_grad()
    loss.backward()
    gradient = th.cat([layer.weight.grad, layer.bias.grad[:, None]], dim=1)
    fisher = th.kron(g_factor, a_factor) + 0.05 * th.eye(15, dtype=th.float64)
    expected = th.linalg.solve(fisher, gradient.reshape(-1)).reshape(3, 5)
    directions = optimizer.natural_gradients()
    th.testing.assert_close(directions[layer.weight], expected[:, :4])
    th.testing.assert_close(directions[layer.bias], expected[:, 4])


def test_kfac_factors_are_running_averages():
    th.manual_seed(0)
    layer = nn.Linear(3, 2).double()
    optimizer = KFAC(layer, stat_decay=0.9)
    first, second = th.randn(16, 3, dtype=th.float64), th.randn(16, 3, dtype=th.float64)
    _record_factors(layer, optimizer, first)
    a_first = optimizer.state[layer.weight]["a_factor"].clone()
    _record_factors(layer, optimizer, second)
    a_second, _ = _dense_factors(second, th.zeros(16, 2, dtype=th.float64))
    th.testing.assert_close(optimizer.state[layer.weight]["a_factor"], 0.9 * a_first + 0.1 * a_second)


def test_kfac_convolution_covering_its_input_has_the_factors_of_the_equivalent_linear_layer():
    th.manual_seed(0)
    conv = nn.Conv2d(2, 3, kernel_size=3).double()  # a 3x3 input: one output position
    linear = nn.Linear(18, 3).double()
    with th.no_grad():
        linear.weight.copy_(conv.weight.reshape(3, 18))
        linear.bias.copy_(conv.bias)
    images = th.randn(8, 2, 3, 3, dtype=th.float64)
    conv_optimizer, linear_optimizer = KFAC(conv), KFAC(linear)
    th.manual_seed(1)
    with conv_optimizer.recording():
        conv_outputs = conv(images).flatten(1)
    conv_optimizer.update_curvature(_gaussian_fisher_loss(conv_outputs))
    th.manual_seed(1)
    _record_factors(linear, linear_optimizer, images.flatten(1))
    for factor in ("a_factor", "g_factor"):
        th.testing.assert_close(conv_optimizer.state[conv.weight][factor], linear_optimizer.state[linear.weight][factor])


def test_kfac_step_is_clipped_to_the_kl_bound_and_parameters_outside_layers_keep_their_gradient():
    th.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 2))
    model.register_parameter("log_std", nn.Parameter(th.zeros(2)))
    optimizer = KFAC(model, lr=1.0, momentum=0.0, kl_clip=1e-4)
    inputs = th.randn(64, 4)
    _record_factors(model[0], optimizer, inputs)
    loss = (model(inputs) * 10).pow(2).mean() + model.log_std.pow(2).sum() + 3 * model.log_std.sum()
    optimizer.zero_grad()
    loss.backward()
    directions = optimizer.natural_gradients()
    th.testing.assert_close(directions[model.log_std], model.log_std.grad)  # no factors: plain gradient
    predicted_kl = sum(float((directions[param] * param.grad).sum()) for param in directions)
    assert predicted_kl > 1e-4  # so the clipping applies
    before = [param.detach().clone() for param in model.parameters()]
    optimizer.step()
    steps = [param.detach() - old for param, old in zip(model.parameters(), before, strict=True)]
    scale = math.sqrt(1e-4 / predicted_kl)
    assert optimizer.last_kl_scale == pytest.approx(scale)
    for step, param in zip(steps, model.parameters(), strict=True):
        th.testing.assert_close(step, -scale * directions[param])


def test_kfac_fits_a_small_conv_net_by_its_own_gaussian_fisher():
    th.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 2))
    images, targets = th.randn(64, 1, 7, 7), th.randn(64, 2)
    optimizer = KFAC(model, lr=0.1, kl_clip=1.0, eigen_update_interval=1)
    losses = []
    for _ in range(30):
        with optimizer.recording():
            outputs = model(images)
        optimizer.update_curvature(_gaussian_fisher_loss(outputs))
        loss = 0.5 * ((outputs - targets) ** 2).sum(dim=1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert set(optimizer.layers) == {model[0], model[3]}
    assert losses[-1] < 0.5 * losses[0]


def test_kfac_state_round_trips_through_a_state_dict():
    th.manual_seed(0)
    layer = nn.Linear(3, 2)
    optimizer = KFAC(layer)
    _record_factors(layer, optimizer, th.randn(8, 3))
    layer(th.randn(8, 3)).sum().backward()
    optimizer.step()
    restored = KFAC(nn.Linear(3, 2))
    restored.load_state_dict(optimizer.state_dict())
    (param,) = [p for p in restored.param_groups[0]["params"] if p.dim() == 2]
    for key in ("a_factor", "g_factor", "momentum_buffer"):
        th.testing.assert_close(restored.state[param][key], optimizer.state[layer.weight][key])


def test_kfac_refuses_settings_out_of_range():
    with pytest.raises(ValueError, match="damping > 0"):
        KFAC(nn.Linear(2, 2), damping=0.0)
    with pytest.raises(ValueError, match="eigen_update_interval >= 1"):
        KFAC(nn.Linear(2, 2), eigen_update_interval=0)


def test_fisher_vector_product_matches_the_dense_fisher_of_a_categorical_policy():
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    model = NPG("MlpPolicy", env, n_steps=16, seed=0, device="cpu", policy_kwargs=dict(net_arch=[4]))
    policy = model.policy
    observations = th.randn(10, 4)
    params = actor_parameters(policy)
    with th.no_grad():  # SB3 policies reuse one distribution object: keep a copy
        old = copy.copy(policy.get_distribution(observations))
    new = policy.get_distribution(observations)
    fisher_product = FisherVectorProduct(policy_kl(old, new).mean(), params, damping=0.1)

    # Dense: F = E_s sum_a pi(a|s) grad log pi(a|s) grad log pi(a|s)^T.
    fisher = 0
    for state in range(10):
        log_probs = policy.get_distribution(observations[state:state + 1]).distribution.logits[0]
        for action in range(2):
            grad = th.cat([g.reshape(-1) for g in th.autograd.grad(log_probs[action], params, retain_graph=True)])
            fisher = fisher + log_probs[action].exp().detach() * th.outer(grad, grad)
    fisher = fisher / 10
    vector = th.randn(fisher.shape[0])
    th.testing.assert_close(fisher_product(vector), fisher @ vector + 0.1 * vector, rtol=1e-4, atol=1e-5)


def test_npg_moves_the_actor_by_a_kl_that_scales_with_the_square_of_the_step_size(tmp_path):
    kls = []
    for step_size in (0.01, 0.02):
        env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
        model = NPG("MlpPolicy", env, n_steps=128, step_size=step_size, n_critic_updates=1, cg_max_steps=20,
                    seed=0, device="cpu")
        model.set_logger(_memory_logger())
        model.learn(256)
        kls.append(model.logger.name_to_value["train/kl"])
    assert kls[1] / kls[0] == pytest.approx(4.0, rel=0.1)  # KL ~ step_size^2 g^T F^-1 g / 2


def _memory_logger():
    from stable_baselines3.common.logger import Logger
    return Logger(folder=None, output_formats=[])


@pytest.mark.parametrize(("target_kl", "factor"), [(1e-9, 2.0), (100.0, 0.5)])
def test_ppo_kl_doubles_or_halves_the_penalty_around_the_target(target_kl, factor):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = PPOKL("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=2, target_kl=target_kl, kl_coef=1.0,
                  seed=0, device="cpu")
    model.learn(3 * 128)
    assert model.kl_coef == pytest.approx(factor ** 3)


def test_ppo_kl_with_clipping_and_gsde_trains_and_reloads_its_penalty(tmp_path):
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    model = PPOKL("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=2, clip_range=0.2, target_kl=1e-9,
                  use_sde=True, sde_sample_freq=4, seed=0, device="cpu")
    model.learn(256)
    model.save(tmp_path / "model")
    assert PPOKL.load(tmp_path / "model", device="cpu").kl_coef == model.kl_coef == 4.0


# Each learns CartPole on a small budget with the shipped zoo config's settings.
LEARNING_CASES = {
    "npg": (NPG, dict(n_steps=512, batch_size=512, gae_lambda=0.98, n_critic_updates=20), 2, 40_000),
    "acktr": (ACKTR, dict(n_steps=32, ent_coef=0.0), 8, 40_000),
    "ppo_kl": (PPOKL, dict(n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                           learning_rate=1e-3), 8, 40_000),
}


@pytest.mark.parametrize("algo_id", sorted(LEARNING_CASES))
def test_learns_cartpole_on_a_small_budget(algo_id):
    algo_class, hyperparams, n_envs, budget = LEARNING_CASES[algo_id]
    model = algo_class("MlpPolicy", make_vec_env("CartPole-v1", n_envs=n_envs, seed=0), seed=0, device="cpu",
                       **hyperparams)
    model.learn(budget)
    mean_return, _ = evaluate_policy(model, make_vec_env("CartPole-v1", n_envs=1, seed=1), n_eval_episodes=10)
    assert mean_return >= 300, f"{algo_id}: {mean_return} after {budget} steps"


def test_acktr_continuous_actions_train_and_reload(tmp_path):
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    model = ACKTR("MlpPolicy", env, n_steps=16, seed=0, device="cpu")
    model.learn(128)
    model.save(tmp_path / "model")
    loaded = ACKTR.load(tmp_path / "model", env=env, device="cpu")
    assert isinstance(loaded.policy.optimizer, KFAC)
    observations = np.zeros((2, 3), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(observations, deterministic=True)[0],
                               model.predict(observations, deterministic=True)[0])
    weight = loaded.policy.action_net.weight
    assert "a_factor" in loaded.policy.optimizer.state[weight]
