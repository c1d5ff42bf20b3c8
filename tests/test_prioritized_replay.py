"""Prioritized replay (issue 18 groundwork): the sum tree against brute force, the buffer's n-step
returns, priorities and importance weights, and the hooks that give SB3's DQN and SAC importance
weights and TD-error priorities, checked against hand-written weighted losses."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from rlhub_dqn_family.common.prioritized_replay import PrioritizedReplayBuffer
from rlhub_dqn_family.common.priority_updates import PriorityUpdates
from rlhub_dqn_family.common.sum_tree import SumTree
from stable_baselines3 import DQN, SAC, TD3
from torch.nn import functional as F


def test_sum_tree_finds_each_prefix_sum_in_its_leaf_and_keeps_the_total():
    rng = np.random.default_rng(0)
    tree = SumTree(37)
    priorities = rng.random(37)
    priorities[[3, 20]] = 0.0
    tree.update(np.arange(37), priorities)
    assert tree.total == pytest.approx(priorities.sum())
    values = rng.random(1000) * priorities.sum()
    expected = np.searchsorted(np.cumsum(priorities), values, side="right")
    np.testing.assert_array_equal(tree.find(values), expected)
    tree.update(np.array([5, 5, 36]), np.array([2.0, 2.0, 0.5]))
    priorities[[5, 36]] = [2.0, 0.5]
    assert tree.total == pytest.approx(priorities.sum())


def test_sum_tree_samples_in_proportion_and_never_draws_a_zero_priority():
    tree = SumTree(5)
    tree.update(np.arange(5), np.array([1.0, 0.0, 2.0, 3.0, 4.0]))
    rng = np.random.default_rng(0)
    drawn = np.concatenate([tree.sample(100, rng) for _ in range(2000)])
    np.testing.assert_allclose(np.bincount(drawn, minlength=5) / drawn.size, [0.1, 0.0, 0.2, 0.3, 0.4], atol=0.01)
    with pytest.raises(ValueError, match="non-negative"):
        tree.update(np.array([0]), np.array([-1.0]))


def _filled_buffer(**kwargs):
    buffer = PrioritizedReplayBuffer(16, gym.spaces.Box(-10, 10, (1,)), gym.spaces.Discrete(2), device="cpu",
                                     n_envs=2, **kwargs)
    for t in range(5):  # env 0's episode ends at t = 2; env 1's runs on
        buffer.add(np.array([[t], [10 + t]], dtype=np.float32), np.array([[t + 1], [11 + t]], dtype=np.float32),
                   np.array([0, 1]), np.array([1.0, 2.0]), np.array([t == 2, False]), [{}, {}])
    return buffer


def test_n_step_returns_stop_at_episode_ends_and_at_the_newest_step():
    buffer = _filled_buffer(n_steps=3, gamma=0.5)
    positions, envs = np.array([0, 1, 2, 3, 0, 3, 4]), np.array([0, 0, 0, 0, 1, 1, 1])
    _, _, next_obs, dones, rewards, discounts = buffer._gather(positions, envs, None)
    assert rewards.flatten().tolist() == [1.75, 1.5, 1.0, 1.5, 3.5, 3.0, 2.0]
    assert dones.flatten().tolist() == [1, 1, 1, 0, 0, 0, 0]
    assert discounts.flatten().tolist() == [0.125, 0.25, 0.5, 0.25, 0.125, 0.25, 0.5]
    assert next_obs.flatten().tolist() == [3, 3, 3, 5, 13, 15, 15]


def test_priorities_set_sampling_and_importance_weights():
    buffer = _filled_buffer(alpha=1.0, beta=0.5)
    leaves = np.arange(10)
    buffer.update_priorities(leaves, np.array([1.0] * 9 + [9.0]) - 1e-6)
    batch = buffer.sample(2000)
    share = np.mean(batch.leaves == 9)
    assert share == pytest.approx(0.5, abs=0.03)  # 9 of a total of 18
    probabilities = buffer.tree[batch.leaves] / buffer.tree.total
    expected = (10 * probabilities) ** -0.5
    np.testing.assert_allclose(batch.weights.flatten().numpy(), expected / expected.max(), rtol=1e-5)
    buffer.progress = lambda: 1.0
    assert buffer.beta == 1.0
    assert pickle.loads(pickle.dumps(buffer)).tree.total == pytest.approx(buffer.tree.total)


def _train_step_on(model, seed):
    """One SB3 train step with plain SGD (lr 1) and no gradient clipping: the step is minus the gradient."""
    model.policy.optimizer = th.optim.SGD(model.policy.parameters(), lr=1.0)
    model.lr_schedule = lambda _: 1.0
    np.random.seed(seed)
    model.train(gradient_steps=1, batch_size=32)


def test_dqn_gets_the_weighted_huber_gradient_and_clipped_td_error_priorities():
    model = DQN("MlpPolicy", "CartPole-v1", replay_buffer_class=PrioritizedReplayBuffer, learning_starts=100,
                seed=0, device="cpu", max_grad_norm=1e9, policy_kwargs=dict(net_arch=[16]))
    model.learn(300)
    np.random.seed(5)
    batch = model.replay_buffer.sample(32)
    with th.no_grad():
        next_q = model.q_net_target(batch.next_observations).max(dim=1, keepdim=True)[0]
        target = batch.rewards + (1 - batch.dones) * model.gamma * next_q
    q = th.gather(model.q_net(batch.observations), 1, batch.actions.long())
    loss = (batch.weights * F.smooth_l1_loss(q, target, reduction="none")).mean()
    expected = th.autograd.grad(loss, list(model.q_net.parameters()))
    td_errors = (q - target).detach().clamp(-1, 1).abs().flatten().numpy()

    PriorityUpdates(model)
    before = [param.detach().clone() for param in model.q_net.parameters()]
    _train_step_on(model, seed=5)
    for old, param, gradient in zip(before, model.q_net.parameters(), expected, strict=True):
        th.testing.assert_close(old - param.detach(), gradient, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(model.replay_buffer.tree[batch.leaves], (td_errors + 1e-6) ** 0.6, rtol=1e-5)


@pytest.mark.parametrize(("algo_class", "critic_loss_coef"), [(SAC, 0.5), (TD3, 1.0)])
def test_critics_get_weighted_gradients_and_their_mean_td_error_as_priority(algo_class, critic_loss_coef):
    model = algo_class("MlpPolicy", "Pendulum-v1", replay_buffer_class=PrioritizedReplayBuffer, learning_starts=100,
                       seed=0, device="cpu", policy_kwargs=dict(net_arch=[16]))
    model.learn(200)
    np.random.seed(7)
    batch = model.replay_buffer.sample(32)
    target = 0.5 * batch.rewards + 1.0  # one target per transition, as a TD target is

    def critic_loss():  # the critic loss as SAC (0.5 * sum) and TD3/DDPG (sum) write it
        current = model.critic(batch.observations, batch.actions)
        return critic_loss_coef * sum(F.mse_loss(q, target) for q in current), current

    loss, current = critic_loss()
    weighted = critic_loss_coef * sum((batch.weights * (q - target) ** 2).mean() for q in current)
    expected = th.autograd.grad(weighted, list(model.critic.parameters()))
    td_errors = th.stack([(q - target).abs().flatten() for q in current]).mean(dim=0).detach().numpy()

    PriorityUpdates(model)
    model.critic.zero_grad()
    critic_loss()[0].backward()
    for param, gradient in zip(model.critic.parameters(), expected, strict=True):
        th.testing.assert_close(param.grad, gradient, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(model.replay_buffer.tree[batch.leaves], (td_errors + 1e-6) ** 0.6, rtol=1e-5)
    # The actor's pass through the critic (the policy's actions) is left alone.
    model.critic.zero_grad()
    model.critic(batch.observations, model.actor(batch.observations))[0].sum().backward()
    np.testing.assert_allclose(model.replay_buffer.tree[batch.leaves], (td_errors + 1e-6) ** 0.6, rtol=1e-5)


def test_rlhub_train_with_the_short_name_feeds_the_buffer_the_algorithms_td_errors(tmp_path):
    from rlhub.experiment import TrainOptions, train

    result = train(TrainOptions("sac", "Pendulum-v1", n_timesteps=300, log_folder=tmp_path, eval_freq=-1, seed=0,
                                hyperparams={"replay_buffer_class": "PrioritizedReplayBuffer", "learning_starts": 100,
                                             "buffer_size": 1000, "policy_kwargs": "dict(net_arch=[16])"}))
    buffer = result.model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer)
    assert len(np.unique(buffer.tree[np.arange(300)])) > 100  # 200 train steps' TD errors, not the initial priority
    assert buffer.beta == pytest.approx(1.0, abs=0.01)  # annealed with the run's progress
