"""ACER: the update rules against hand-computed values, the time-limit bootstrap at replay time, the
replay buffer, the average network's exact update, what is logged, a short learning check on
CartPole, and the continuous (Pendulum) save/load round trip."""

import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from rlhub_policy_gradient.acer import (
    ACER,
    SegmentReplayBuffer,
    Segments,
    retrace_targets,
    stochastic_dueling_q,
    truncated_importance_weights,
    trust_region_step,
    value_targets,
)
from rlhub_policy_gradient.acer.acer import UpdateStats
from rlhub_policy_gradient.acer.losses import LossSettings, SegmentBatch, discrete_loss
from rlhub_policy_gradient.common.rollout import Step, time_limit_bootstrap, time_limit_truncations
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor

from rlhub import registry
from rlhub.testing.conformance import check_train_save_load

# ------------------------------------------------------------------------------------------------
# The update rules, against hand-computed numbers


def _retrace(dones):
    row = lambda values: th.tensor([values], dtype=th.float64)  # noqa: E731
    return retrace_targets(
        rewards=row([1.0, 2.0, 3.0]), dones=row(dones), q_taken=row([0.5, 1.0, 1.5]), values=row([0.4, 0.8, 1.2]),
        traces=row([1.0, 0.5, 0.25]), bootstrap=th.tensor([2.0], dtype=th.float64), gamma=0.9,
    )[0].tolist()


def test_retrace_targets_match_hand_computed_values():
    # Q_ret(2) = 3 + 0.9 * 2.0                                  = 4.8
    # Q_ret(1) = 2 + 0.9 * (0.25 * (4.8 - 1.5) + 1.2)            = 3.8225
    # Q_ret(0) = 1 + 0.9 * (0.5 * (3.8225 - 1.0) + 0.8)          = 2.990125
    assert _retrace([0, 0, 0]) == pytest.approx([2.990125, 3.8225, 4.8])


def test_retrace_targets_stop_at_episode_ends():
    # The episode ends after step 1: Q_ret(1) = r_1; step 2 belongs to the next episode.
    # Q_ret(0) = 1 + 0.9 * (0.5 * (2.0 - 1.0) + 0.8) = 2.17
    assert _retrace([0, 1, 0]) == pytest.approx([2.17, 2.0, 4.8])


def test_retrace_with_unit_traces_is_q_opc():
    rewards = th.tensor([[1.0, 1.0]])
    # Q_opc(1) = 1 + 0.5 * 4 = 3; Q_opc(0) = 1 + 0.5 * ((3 - 2) + 1) = 2
    targets = retrace_targets(rewards, th.zeros(1, 2), th.tensor([[9.0, 2.0]]), th.tensor([[9.0, 1.0]]),
                              th.ones(1, 2), th.tensor([4.0]), gamma=0.5)
    assert targets[0].tolist() == pytest.approx([2.0, 3.0])


def test_truncated_importance_weights_match_hand_computed_values():
    truncated, correction = truncated_importance_weights(th.tensor([0.5, 2.0, 10.0, 40.0]), correction_term=10.0)
    # min(10, rho): only 40 is truncated. [1 - 10 / rho]_+: 0 up to rho = c, then 1 - 10/40 = 0.75.
    assert truncated.tolist() == pytest.approx([0.5, 2.0, 10.0, 10.0])
    assert correction.tolist() == pytest.approx([0.0, 0.0, 0.0, 0.75], abs=1e-6)


def test_truncated_and_correction_weights_recover_the_full_importance_weight():
    # What truncation drops, the correction puts back: min(c, rho) + rho [1 - c/rho]_+ = rho.
    ratios = th.tensor([0.1, 1.0, 3.0, 7.5, 100.0], dtype=th.float64)
    truncated, correction = truncated_importance_weights(ratios, correction_term=3.0)
    np.testing.assert_allclose((truncated + ratios * correction).numpy(), ratios.numpy(), rtol=1e-5)


def test_stochastic_dueling_q_matches_hand_computed_values():
    values = th.tensor([1.0, -2.0])
    advantage = th.tensor([0.5, 3.0])
    sampled_advantages = th.tensor([[1.0, 0.0], [2.0, 4.0], [0.0, 2.0]])  # 3 samples u_i, 2 states
    # State 0: 1 + 0.5 - (1 + 2 + 0) / 3 = 0.5; state 1: -2 + 3 - (0 + 4 + 2) / 3 = -1.
    assert stochastic_dueling_q(values, advantage, sampled_advantages).tolist() == pytest.approx([0.5, -1.0])


def test_value_targets_match_hand_computed_values():
    ratios = th.tensor([0.5, 4.0])
    q_retrace = th.tensor([3.0, 3.0])
    q_taken = th.tensor([1.0, 2.0])
    values = th.tensor([0.2, 0.2])
    # min(1, rho) (Q_ret - Q~) + V: 0.5 * 2 + 0.2 = 1.2; 1 * 1 + 0.2 = 1.2 (rho 4 is cut to 1).
    assert value_targets(ratios, q_retrace, q_taken, values).tolist() == pytest.approx([1.2, 1.2])


def test_trust_region_projection_matches_hand_computed_values():
    gradient = th.tensor([[1.0, 2.0], [0.2, 1.0], [3.0, -1.0], [1.0, 1.0]])
    kl_gradient = th.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    projected, scale = trust_region_step(gradient, kl_gradient, delta=0.5)
    # Row 0: k.g = 1 > 0.5, scale (1 - 0.5) / 1 = 0.5, z = [0.5, 2].
    # Row 1: k.g = 0.2 <= 0.5, inside the region: z = g.
    # Row 2: k.g = 2, scale (2 - 0.5) / 2 = 0.75, z = [2.25, -1.75].
    # Row 3: k = 0 (policy equals the average): z = g.
    assert scale.tolist() == pytest.approx([0.5, 0.0, 0.75, 0.0])
    np.testing.assert_allclose(projected.numpy(), [[0.5, 2.0], [0.2, 1.0], [2.25, -1.75], [1.0, 1.0]], rtol=1e-6)
    active = scale > 0  # a projected step changes the KL by exactly delta (first order)
    assert (kl_gradient[active] * projected[active]).sum(-1).tolist() == pytest.approx([0.5, 0.5])


def test_discrete_loss_matches_hand_computed_values():
    # One segment of one step, two actions; action 1 taken under mu = [0.5, 0.5].
    probs_all = th.tensor([[[0.25, 0.75], [0.5, 0.5]]], requires_grad=True)  # step, then bootstrap observation
    q_all = th.tensor([[[1.0, 2.0], [3.0, 3.0]]], requires_grad=True)
    batch = SegmentBatch(actions=th.tensor([[1]]), rewards=th.tensor([[1.0]]), dones=th.tensor([[0.0]]),
                         behaviour=th.tensor([[[0.5, 0.5]]]))
    settings = LossSettings(gamma=0.5, correction_term=1.2, ent_coef=0.0, q_coef=0.5, trust_region=False, delta=1.0,
                            use_q_opc=False)
    loss, stats = discrete_loss(probs_all, q_all, th.tensor([[[0.5, 0.5]]]), batch, settings)
    # V = 0.25 * 1 + 0.75 * 2 = 1.75; V(bootstrap) = 3; Q_ret = 1 + 0.5 * 3 = 2.5.
    # rho = [0.5, 1.5]: truncated weight min(1.2, 1.5) = 1.2; correction [1 - 1.2/rho]_+ = [0, 0.2].
    # objective = 1.2 (2.5 - 1.75) log 0.75 + 0.2 * 0.75 * (2 - 1.75) log 0.75 = 0.9375 log 0.75
    # Q loss = 0.5 (2.5 - 2)^2 = 0.125; loss = -objective + 0.5 * 0.125.
    assert loss.item() == pytest.approx(-0.9375 * math.log(0.75) + 0.0625, rel=1e-5)
    assert stats["q_retrace"] == pytest.approx(2.5) and stats["importance_weight"] == pytest.approx(1.5, rel=1e-5)
    assert stats["truncated_fraction"] == 1.0 and stats["q_loss"] == pytest.approx(0.125)
    assert all(isinstance(value, float) for value in stats.values())
    loss.backward()
    # d(-objective)/df(1) = -(1.2 * 0.75 + 0.2 * 0.75 * 0.25) / 0.75 = -1.25; f(0) carries no weight.
    np.testing.assert_allclose(probs_all.grad[0, 0].numpy(), [0.0, -1.25], rtol=1e-5, atol=1e-6)
    assert probs_all.grad[0, 1].abs().sum() == 0  # the bootstrap step's policy is not trained
    # d(0.5 * Q loss)/dQ(x, 1) = 0.5 * (2 - 2.5); the critic learns only the action taken.
    np.testing.assert_allclose(q_all.grad[0, 0].numpy(), [0.0, -0.25], rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# Time limits: recorded at collection, bootstrapped at update time by the current critic


def test_time_limit_truncations_are_read_from_the_vec_env_infos():
    observations = np.zeros((3, 2), np.float32)
    infos = [{"TimeLimit.truncated": True, "terminal_observation": np.array([1.0, 2.0])},
             {"terminal_observation": np.array([5.0, 5.0])},  # terminated, not cut
             {}]
    truncated, final = time_limit_truncations(np.array([True, True, False]), infos, observations)
    assert truncated.tolist() == [True, False, False]
    assert final.tolist() == [[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]]


def test_time_limit_bootstrap_adds_the_discounted_value_only_where_cut():
    rewards = th.tensor([[1.0, 1.0], [2.0, 2.0]])
    truncated = th.tensor([[0.0, 1.0], [0.0, 0.0]])
    final = th.tensor([[[0.0], [3.0]], [[0.0], [0.0]]])
    seen = []

    def value(observations):
        seen.append(observations.clone())
        return 10.0 * observations.squeeze(-1)

    bootstrapped = time_limit_bootstrap(rewards, truncated, final, value, gamma=0.5)
    assert bootstrapped.tolist() == [[1.0, 1.0 + 0.5 * 30.0], [2.0, 2.0]]
    assert [batch.tolist() for batch in seen] == [[[3.0]]]  # V evaluated on the cut step only
    assert rewards.tolist() == [[1.0, 1.0], [2.0, 2.0]]  # not in place


class _TerminalObservations(BaseCallback):
    """Keeps the observations a time limit cut episodes at, as the VecEnv reported them."""

    def __init__(self):
        super().__init__()
        self.cuts = []  # (rollout step, env, observation)
        self.step_in_rollout = 0

    def _on_rollout_start(self):
        self.step_in_rollout = 0

    def _on_step(self):
        for env_index, info in enumerate(self.locals["infos"]):
            if info.get("TimeLimit.truncated"):
                self.cuts.append((self.step_in_rollout, env_index, np.array(info["terminal_observation"])))
        self.step_in_rollout += 1
        return True


def _perturb(module, seed):
    generator = th.Generator().manual_seed(seed)
    with th.no_grad():
        for parameter in module.parameters():
            parameter.add_(th.randn(parameter.shape, generator=generator))


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_replayed_time_limit_steps_are_bootstrapped_by_the_current_critic(env_id):
    # Episodes of 3 steps cut by a time limit (CartPole cannot fall that soon), segments of 4 steps.
    env = make_vec_env(env_id, n_envs=2, seed=0, env_kwargs=dict(max_episode_steps=3))
    model = ACER("MlpPolicy", env, n_steps=4, replay_start=10**6, seed=0, device="cpu",
                 policy_kwargs=dict(net_arch=[8]))
    cuts = _TerminalObservations()
    model.learn(8, callback=cuts)  # one rollout, one on-policy update, stored for replay
    assert [(step, env_index) for step, env_index, _ in cuts.cuts] == [(2, 0), (2, 1)]

    stored = model.replay_buffer.sample(2, np.random.default_rng(0))
    assert stored.truncated[:, 2].tolist() == [1.0, 1.0] and stored.dones[:, 2].tolist() == [1.0, 1.0]
    assert stored.truncated.sum() == 2
    terminal = {env_index: observation for _, env_index, observation in cuts.cuts}
    envs = [0 if np.array_equal(stored.final_observations[index, 2], terminal[0]) else 1 for index in range(2)]
    for index, env_index in enumerate(envs):
        np.testing.assert_array_equal(stored.final_observations[index, 2], terminal[env_index])

    # The critic changes between collection and replay: the replayed target must follow it.
    _perturb(model.policy.network, seed=1)
    batch = model.segment_batch(stored)
    with th.no_grad():
        current_values = model.policy.predict_values(th.as_tensor(stored.final_observations[:, 2]))
    expected = th.as_tensor(stored.rewards).clone()
    expected[:, 2] += model.gamma * current_values
    np.testing.assert_allclose(batch.rewards.numpy(), expected.numpy(), rtol=1e-6)
    assert not np.allclose(current_values.numpy(), 0.0)
    # The Retrace target of the cut step is that bootstrapped reward (the episode ends there).
    targets = retrace_targets(batch.rewards, batch.dones, th.zeros(2, 4), th.zeros(2, 4), th.ones(2, 4),
                              th.zeros(2), model.gamma)
    np.testing.assert_allclose(targets[:, 2].numpy(), (stored.rewards[:, 2] + model.gamma * current_values.numpy()),
                               rtol=1e-6)


def _rollout(value, truncated_at=None, n_envs=3, n_steps=2):
    rollout = Segments.zeros(n_envs, n_steps, (1,), np.float32, (), np.int64, 2)
    for step in range(n_steps):
        truncated = np.zeros(n_envs, bool)
        final = np.zeros((n_envs, 1), np.float32)
        if truncated_at is not None and step == truncated_at[1]:
            truncated[truncated_at[0]] = True
            final[truncated_at[0]] = -value
        observations = (10 * value + np.arange(n_envs, dtype=np.float32))[:, None]  # says which rollout and env
        rollout.record(step, Step(observations=observations, actions=np.zeros(n_envs),
                                  rewards=np.full(n_envs, value, np.float32), dones=truncated.astype(np.float32),
                                  truncated=truncated, final_observations=final,
                                  behaviour=np.full((n_envs, 2), 0.5, np.float32)))
    return rollout


def test_replay_buffer_keeps_the_newest_segments():
    buffer = SegmentReplayBuffer(capacity=12, n_steps=2, n_envs=3, observation_shape=(1,), observation_dtype=np.float32,
                                 action_shape=(), action_dtype=np.int64, behaviour_dim=2)
    assert buffer.n_rollouts == 2
    for index in range(3):
        buffer.add(_rollout(index))
    assert buffer.n_transitions == 12
    sample = buffer.sample(50, np.random.default_rng(0))
    assert sample.observations.shape == (50, 3, 1) and sample.behaviour.shape == (50, 2, 2)
    assert set(np.unique(sample.rewards)) == {1.0, 2.0}  # rollout 0 was overwritten


def test_replay_buffer_returns_final_observations_with_their_segment_and_forgets_them_when_overwritten():
    buffer = SegmentReplayBuffer(capacity=12, n_steps=2, n_envs=3, observation_shape=(1,), observation_dtype=np.float32,
                                 action_shape=(), action_dtype=np.int64, behaviour_dim=2)
    buffer.add(_rollout(1.0, truncated_at=(2, 1)))  # env 2 cut after step 1, at observation -1
    buffer.add(_rollout(2.0))
    sample = buffer.sample(200, np.random.default_rng(0))
    cut = sample.truncated.astype(bool)
    from_cut_segment = sample.observations[:, 0, 0] == 12.0  # rollout of value 1, env 2
    assert from_cut_segment.any() and (~from_cut_segment).any()
    assert (cut[:, 1] == from_cut_segment).all() and not cut[:, 0].any()
    assert (sample.final_observations[cut] == -1.0).all() and (sample.final_observations[~cut] == 0).all()
    buffer.add(_rollout(3.0))  # overwrites the rollout with the cut
    sample = buffer.sample(200, np.random.default_rng(0))
    assert not sample.truncated.any() and not sample.final_observations.any()
    assert all(not stored for stored in buffer.final_observations)


# ------------------------------------------------------------------------------------------------
# The algorithm


def test_acer_learns_cartpole_quickly():
    env = make_vec_env("CartPole-v1", n_envs=8, seed=2)
    model = ACER("MlpPolicy", env, learning_rate=1e-3, n_steps=20, replay_ratio=4.0, replay_start=500, seed=2,
                 device="cpu")
    model.learn(4_800)
    eval_env = Monitor(gym.make("CartPole-v1"))
    mean_return, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
    # Measured: 167 with this seed (a random policy gets ~22).
    assert mean_return > 60, f"ACER should beat a random policy (~22) clearly after 4.8k steps, got {mean_return}"


def test_updates_are_logged_as_their_mean_with_importance_weights_of_replay_only(tmp_path):
    model = ACER("MlpPolicy", "CartPole-v1", n_steps=5, seed=0, device="cpu", policy_kwargs=dict(net_arch=[8]))
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model._n_updates = 3
    model._log_updates([UpdateStats({"loss": 1.0, "importance_weight": 1.0}, replay=False),
                        UpdateStats({"loss": 2.0, "importance_weight": 0.5, "v_loss": 4.0}, replay=True),
                        UpdateStats({"loss": 6.0, "importance_weight": 1.5}, replay=True)])
    logged = model.logger.name_to_value
    assert logged["train/loss"] == pytest.approx(3.0) and logged["train/v_loss"] == pytest.approx(4.0)
    assert logged["train/avg_importance_weight"] == pytest.approx(1.0)  # (0.5 + 1.5) / 2: on-policy's 1 left out
    assert logged["train/replay_updates"] == 2 and logged["train/n_updates"] == 3
    assert "train/importance_weight" not in logged


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
@pytest.mark.parametrize("trust_region", [True, False])
def test_every_loss_term_is_logged_with_a_sensible_value(tmp_path, env_id, trust_region):
    model = ACER("MlpPolicy", make_vec_env(env_id, n_envs=2, seed=0), n_steps=5, replay_start=10, seed=0,
                 device="cpu", trust_region=trust_region, policy_kwargs=dict(net_arch=[16]))
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(100, log_interval=1)
    lines = (tmp_path / "progress.csv").read_text().splitlines()
    header = lines[0].split(",")
    last = dict(zip(header, lines[-1].split(","), strict=True))
    value = lambda name: float(last[name])  # noqa: E731
    expected = ["train/policy_gradient_loss", "train/bias_correction_loss", "train/entropy_loss", "train/q_loss",
                "train/loss", "train/avg_importance_weight", "train/kl_to_average", "train/grad_norm"]
    if env_id == "Pendulum-v1":
        expected.append("train/v_loss")
    if trust_region:
        expected += ["train/trust_region_scale", "train/trust_region_active"]
    assert all(math.isfinite(value(name)) for name in expected)
    assert value("train/q_loss") > 0 and value("train/grad_norm") > 0 and value("train/kl_to_average") >= 0
    assert value("train/avg_importance_weight") > 0 and value("train/replay_updates") >= 1
    if env_id == "CartPole-v1":  # -entropy of two actions lies in [-log 2, 0]
        assert -math.log(2) - 1e-6 <= value("train/entropy_loss") < 0
    else:
        assert value("train/v_loss") > 0
    if trust_region:
        assert value("train/trust_region_scale") >= 0 and 0 <= value("train/trust_region_active") <= 1


def test_on_policy_acer_without_replay_runs():
    model = ACER("MlpPolicy", "CartPole-v1", n_steps=5, replay_ratio=0.0, seed=0, device="cpu")
    assert model.replay_buffer is None
    model.learn(50)
    assert model.num_timesteps >= 50


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="correction_term"):
        ACER("MlpPolicy", "CartPole-v1", correction_term=0.0)
    with pytest.raises(ValueError, match="alpha"):
        ACER("MlpPolicy", "CartPole-v1", alpha=1.0)
    with pytest.raises(ValueError, match="max_grad_norm"):
        ACER("MlpPolicy", "CartPole-v1", max_grad_norm=0.0)
    with pytest.raises(ValueError, match="ACERPolicy"):
        ACER(th.nn.Module, "CartPole-v1")


def test_continuous_acer_trains_saves_and_reloads(tmp_path):
    # The conformance suite runs ACER on CartPole (Discrete); this is the Box-action round trip.
    spec = dataclasses.replace(registry.get_algorithm("acer"), test_env_id="Pendulum-v1")
    check_train_save_load(spec, tmp_path, n_timesteps=256)


def test_average_network_is_the_exponential_moving_average_and_is_saved(tmp_path):
    alpha = 0.5
    model = ACER("MlpPolicy", "CartPole-v1", n_steps=5, replay_ratio=0.0, alpha=alpha, seed=0, device="cpu")
    vector = lambda module: th.nn.utils.parameters_to_vector(module.parameters()).detach().clone()  # noqa: E731
    average = vector(model.policy.average_network)
    assert th.equal(average, vector(model.policy.network))  # it starts as a copy
    for _ in range(3):  # one update per rollout of 5 steps: theta_avg <- alpha theta_avg + (1 - alpha) theta
        model.learn(5, reset_num_timesteps=False)
        network = vector(model.policy.network)
        average = alpha * average + (1 - alpha) * network
        np.testing.assert_allclose(vector(model.policy.average_network).numpy(), average.numpy(), rtol=1e-5,
                                   atol=1e-7)
    assert not th.equal(vector(model.policy.average_network), network)
    model.save(tmp_path / "acer.zip")
    loaded = ACER.load(tmp_path / "acer.zip", device="cpu")
    assert th.equal(vector(model.policy.average_network), vector(loaded.policy.average_network))


def test_replay_buffer_is_saved_and_loaded_for_continuing(tmp_path):
    model = ACER("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=0), n_steps=5, replay_start=10, seed=0,
                 device="cpu", policy_kwargs=dict(net_arch=[8]))
    model.learn(30)
    model.save_replay_buffer(tmp_path / "replay_buffer.pkl")
    other = ACER("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=1), n_steps=5, device="cpu")
    other.load_replay_buffer(tmp_path / "replay_buffer.pkl")
    assert other.replay_buffer.n_transitions == model.replay_buffer.n_transitions == 30
    np.testing.assert_array_equal(other.replay_buffer.observations, model.replay_buffer.observations)
    with pytest.raises(ValueError, match="segments of 5 steps"):
        ACER("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2), n_steps=4).load_replay_buffer(
            tmp_path / "replay_buffer.pkl")
