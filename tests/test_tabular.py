"""Tabular TD, Monte Carlo, planning and Dyna algorithms (plugin rlhub_tabular) and their shared base."""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest
from rlhub_tabular.cliff import CliffEnv, greedy_return, to_state
from rlhub_tabular.common import MissingTransitionModelError, StateIndexer
from rlhub_tabular.dyna_q import DynaQ
from rlhub_tabular.dyna_q_plus import DynaQPlus
from rlhub_tabular.expected_sarsa import ExpectedSARSA
from rlhub_tabular.mc_control import MonteCarloControl
from rlhub_tabular.policy_iteration import PolicyIteration
from rlhub_tabular.q_learning import QLearning
from rlhub_tabular.sarsa import SARSA
from rlhub_tabular.sarsa_lambda import SARSALambda
from rlhub_tabular.value_iteration import ValueIteration
from stable_baselines3.common.callbacks import BaseCallback, StopTrainingOnMaxEpisodes
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnvWrapper

from rlhub.envs import ensure_registered
from rlhub.spec import SpaceMismatchError

CLIFF = "rlhub/Cliff-v0"
#: The notes' settings on their cliff.
NOTES = {"learning_rate": 0.1, "gamma": 0.9, "exploration_initial_eps": 0.1, "exploration_final_eps": 0.1}
V_START = -7.458134171671  # -(1 - 0.9**13) / (1 - 0.9): 13 steps of -1 from (3, 0)


@pytest.fixture(autouse=True, scope="module")
def registered() -> None:
    ensure_registered(CLIFF)


def q_table(model) -> np.ndarray:
    return model.policy.table("q_table")


def online_mean(model) -> float:
    return float(np.mean([info["r"] for info in model.ep_info_buffer]))


# ------------------------------------------------------------------------------------------ the cliff


def test_cliff_follows_the_notes():
    env = CliffEnv(start=[3, 0])
    state, _ = env.reset(seed=0)
    assert state == to_state(3, 0)
    assert env.step(3)[1:3] == (-100.0, True)  # into the cliff: -100, the end
    env.reset()
    total = 0.0
    for action in [0] + [3] * 11 + [1]:
        _, reward, terminated, _, _ = env.step(action)
        total += reward
    assert terminated and total == -13.0  # the step into the goal costs -1 too
    env.reset()
    assert env.step(2)[0] == to_state(3, 0)  # off the grid: stay
    starts = {CliffEnv().reset(seed=seed)[0] for seed in range(40)}
    assert starts == {to_state(row, 0) for row in range(4)}  # training starts anywhere in column 0
    assert env.P[to_state(2, 5)][1] == [(1.0, to_state(3, 5), -100.0, True)]


@pytest.mark.parametrize("algo_class", [ValueIteration, PolicyIteration])
def test_planning_on_the_cliff(algo_class):
    model = algo_class("TabularPolicy", CLIFF, gamma=0.9, theta=1e-12)
    model.learn(1_000_000)
    assert model.converged
    assert model.policy.table("v_table")[to_state(3, 0)] == pytest.approx(V_START, abs=1e-6)
    assert greedy_return(q_table(model)) == -13.0
    action, _ = model.predict(to_state(3, 0), deterministic=True)
    assert int(action) == 0  # up, out of the cliff row


def test_planning_needs_a_transition_model():
    with pytest.raises(MissingTransitionModelError, match="env.unwrapped.P"):
        ValueIteration("TabularPolicy", "Blackjack-v1")
    with pytest.raises(ValueError, match="gamma"):
        PolicyIteration("TabularPolicy", CLIFF, gamma=1.0)


def test_only_algorithms_that_count_visits_take_sample_averages():
    with pytest.raises(ValueError, match="learning_rate must be a number"):
        QLearning("TabularPolicy", CLIFF, learning_rate=None)
    assert MonteCarloControl("TabularPolicy", CLIFF, learning_rate=None)._step_size(4.0) == 0.25
    assert MonteCarloControl("TabularPolicy", CLIFF, learning_rate=0.3)._step_size(4.0) == 0.3


def test_q_learning_takes_the_edge_and_sarsa_the_safe_path():
    """The notes' comparison (alpha 0.1, gamma 0.9, epsilon 0.1, 1500 episodes)."""
    q_learning = QLearning("TabularPolicy", CLIFF, seed=0, **NOTES)
    q_learning.learn(10**7, callback=StopTrainingOnMaxEpisodes(1500))
    sarsa = SARSA("TabularPolicy", CLIFF, seed=0, **NOTES)
    sarsa.learn(10**7, callback=StopTrainingOnMaxEpisodes(1500))
    assert q_learning._episode_num == sarsa._episode_num == 1500
    assert greedy_return(q_table(q_learning)) == -13.0
    assert greedy_return(q_table(sarsa)) in (-15.0, -17.0)
    assert online_mean(sarsa) > online_mean(q_learning)  # last 100 episodes, while exploring


# ---------------------------------------------------------------------------------- equivalences


def learn_cliff(algo_class, steps: int = 3000, **kwargs) -> np.ndarray:
    model = algo_class("TabularPolicy", CLIFF, seed=3, **{**NOTES, **kwargs})
    model.learn(steps)
    return q_table(model).copy()


def test_special_cases_reduce_to_their_parents():
    np.testing.assert_array_equal(learn_cliff(DynaQ, n_planning_steps=0), learn_cliff(QLearning))
    np.testing.assert_array_equal(learn_cliff(SARSALambda, trace_decay=0.0), learn_cliff(SARSA))
    greedy = {"exploration_initial_eps": 0.0, "exploration_final_eps": 0.0}
    np.testing.assert_array_equal(learn_cliff(ExpectedSARSA, **greedy), learn_cliff(QLearning, **greedy))


@pytest.mark.parametrize("trace_type, expected", [("accumulating", 2.0), ("replacing", 1.0)])
def test_eligibility_traces(trace_type, expected):
    model = SARSALambda("TabularPolicy", CLIFF, gamma=1.0, trace_decay=1.0, trace_type=trace_type, learning_rate=0.5,
                        exploration_initial_eps=0.0, exploration_final_eps=0.0, seed=0)
    model._on_learn_start()
    model._start_episode(0, 0)
    model._transition(0, 0, 2, 0.0, 0, False, False, {})  # a left bump: no TD error, trace 1
    model._transition(0, 0, 2, -1.0, 0, True, True, {})  # again, then the end with reward -1
    assert model._traces[0, 0, 2] == expected  # decayed by gamma * lambda = 1
    assert q_table(model)[0, 2] == pytest.approx(0.5 * -1.0 * expected)


def test_vec_env_path_learns_exactly_as_the_direct_path():
    class Passthrough(VecEnvWrapper):  # any VecEnv that is not a plain DummyVecEnv takes the VecEnv path
        def reset(self):
            return self.venv.reset()

        def step_wait(self):
            return self.venv.step_wait()

    direct = QLearning("TabularPolicy", make_vec_env(CLIFF, n_envs=2, seed=5), seed=5, **NOTES)
    wrapped = QLearning("TabularPolicy", Passthrough(make_vec_env(CLIFF, n_envs=2, seed=5)), seed=5, **NOTES)
    direct.learn(4000)
    wrapped.learn(4000)
    assert direct.num_timesteps == wrapped.num_timesteps == 4000
    np.testing.assert_array_equal(q_table(direct), q_table(wrapped))
    assert direct._episode_num == wrapped._episode_num > 0


def test_a_seed_fixes_learning_and_acting_whatever_the_global_numpy_stream():
    """Two runs with seed 3 learn the same Q-table and take the same stochastic actions although
    ``np.random``'s global stream is reset differently before each: nothing draws from it. Seed 4 differs."""

    def run(seed: int, global_seed: int) -> tuple[np.ndarray, np.ndarray]:
        model = QLearning("TabularPolicy", "FrozenLake-v1", seed=seed)
        np.random.seed(global_seed)  # after construction, which seeds the global stream as SB3 does
        model.learn(3000)
        np.random.seed(global_seed + 1)
        actions, _ = model.predict(np.zeros(64, dtype=np.int64), deterministic=False)
        return q_table(model).copy(), actions

    table, actions = run(3, global_seed=0)
    same_table, same_actions = run(3, global_seed=12345)
    np.testing.assert_array_equal(table, same_table)
    np.testing.assert_array_equal(actions, same_actions)
    other_table, _ = run(4, global_seed=0)
    assert not np.array_equal(table, other_table)


def test_learning_continues_across_learn_calls():
    once = QLearning("TabularPolicy", CLIFF, seed=1, **NOTES)
    once.learn(2000)
    twice = QLearning("TabularPolicy", CLIFF, seed=1, **NOTES)
    twice.learn(1000)
    twice.learn(1000, reset_num_timesteps=False)
    np.testing.assert_array_equal(q_table(once), q_table(twice))


# ------------------------------------------------------------------------------------- learning


@pytest.mark.parametrize("algo_class", [QLearning, SARSA, ExpectedSARSA, SARSALambda, MonteCarloControl, DynaQ])
def test_frozen_lake_without_slipping_is_learned_quickly(algo_class):
    env = make_vec_env("FrozenLake-v1", env_kwargs={"is_slippery": False}, seed=0)
    settings = {MonteCarloControl: {}, SARSALambda: {"learning_rate": 0.2, "trace_type": "replacing"}}
    model = algo_class("TabularPolicy", env, seed=0, exploration_initial_eps=1.0, exploration_final_eps=0.05,
                       exploration_fraction=0.5, **settings.get(algo_class, {"learning_rate": 0.5}))
    model.learn(20_000)
    lake = gym.make("FrozenLake-v1", is_slippery=False)
    state, _ = lake.reset(seed=0)
    for _ in range(20):
        action, _ = model.predict(state, deterministic=True)
        state, reward, terminated, truncated, _ = lake.step(int(action))
        if terminated or truncated:
            break
    assert reward == 1.0, f"{algo_class.__name__} did not learn the way to the goal"


def test_dyna_q_plans_and_dyna_q_plus_models_untried_actions():
    dyna = DynaQ("TabularPolicy", CLIFF, seed=0, n_planning_steps=20, **NOTES)
    dyna.learn(10**6, callback=StopTrainingOnMaxEpisodes(60))
    assert greedy_return(q_table(dyna)) == -13.0  # Q-learning needs hundreds of episodes
    assert dyna.policy.table("model_seen").sum() == len(dyna._observed_pairs) > 50

    plus = DynaQPlus("TabularPolicy", CLIFF, seed=0, n_planning_steps=5, kappa=0.01, **NOTES)
    plus.learn(500)
    assert int(plus.policy.table("model_clock")) == 500
    seen = plus.policy.table("model_seen")
    assert seen[seen.any(axis=1)].all()  # untried actions of visited states are modelled too


class ShortcutMaze(gym.Env):
    """Sutton & Barto's example 8.3: a 6x9 maze whose wall (row 3, columns 1-8) opens a shortcut at
    its right end (column 8) after ``opens_after`` steps. Reward 1 at the goal, which ends the episode.
    The way round the left end takes 16 steps from the start, the shortcut 10."""

    ROWS, COLS, START, GOAL = 6, 9, (5, 3), (0, 8)
    MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))
    observation_space = gym.spaces.Discrete(ROWS * COLS)
    action_space = gym.spaces.Discrete(4)

    def __init__(self, opens_after: int) -> None:
        self.opens_after = opens_after
        self.steps = 0
        self.position = self.START

    def walls(self) -> set[tuple[int, int]]:
        last = 8 if self.steps < self.opens_after else 7
        return {(3, col) for col in range(1, last + 1)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = self.START
        return self.START[0] * self.COLS + self.START[1], {}

    def step(self, action):
        row, col = self.position[0] + self.MOVES[action][0], self.position[1] + self.MOVES[action][1]
        if 0 <= row < self.ROWS and 0 <= col < self.COLS and (row, col) not in self.walls():
            self.position = (row, col)
        self.steps += 1
        at_goal = self.position == self.GOAL
        return self.position[0] * self.COLS + self.position[1], float(at_goal), at_goal, False, {}


def test_dyna_q_plus_finds_the_shortcut_that_dyna_q_misses():
    """Sutton & Barto's example 8.3 (alpha 1, gamma 0.95, epsilon 0.1, kappa 1e-3; 20 planning steps
    instead of 50, to stay fast): the shortcut opens after 3000 steps. Over steps 5000-6000, an agent
    that still goes round takes at least 16 steps an episode (at most 63 episodes); Dyna-Q+, whose
    bonus sends it back to try the wall, takes the shortcut (about 80), and Dyna-Q never does."""
    settings = {"learning_rate": 1.0, "gamma": 0.95, "n_planning_steps": 20, "exploration_initial_eps": 0.1,
                "exploration_final_eps": 0.1, "seed": 0}
    episodes_at_the_end = {}
    for algo_class, extra in ((DynaQ, {}), (DynaQPlus, {"kappa": 1e-3})):
        model = algo_class("TabularPolicy", ShortcutMaze(opens_after=3000), **settings, **extra)
        model.learn(5000)
        before = model._episode_num
        model.learn(1000, reset_num_timesteps=False)
        episodes_at_the_end[algo_class] = model._episode_num - before
    assert episodes_at_the_end[DynaQPlus] > 70
    assert episodes_at_the_end[DynaQ] <= 63


def test_monte_carlo_first_and_every_visit():
    class Loop(gym.Env):
        """State 0: action 0 stays (reward 1), action 1 ends (reward 0)."""

        observation_space = gym.spaces.Discrete(1)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return 0, {}

        def step(self, action):
            return 0, float(action == 0), action == 1, False, {}

    for first_visit, expected in ((True, [2.0]), (False, [2.0, 1.0])):
        model = MonteCarloControl("TabularPolicy", Loop(), gamma=1.0, first_visit=first_visit, seed=0,
                                  exploration_initial_eps=0.0, exploration_final_eps=0.0)
        model._setup_learn(10, None)
        model._bind_tables()
        model._on_learn_start()
        model._start_episode(0, 0)
        for action in (0, 0):
            model._transition(0, 0, action, 1.0, 0, False, False, {})
        model._transition(0, 0, 1, 0.0, 0, True, True, {})
        # Returns after the visits of (0, 0): 2 and 1; first-visit averages the first only.
        assert q_table(model)[0, 0] == pytest.approx(np.mean(expected))
        assert model.policy.table("visit_counts")[0, 0] == len(expected)


# ------------------------------------------------------------------------------ schedules, logs


def test_exponential_epsilon_decay_per_episode():
    model = QLearning("TabularPolicy", CLIFF, seed=0, exploration_initial_eps=1.0, exploration_final_eps=0.05,
                      exploration_decay_rate=0.005)
    model.learn(10**6, callback=StopTrainingOnMaxEpisodes(40))
    assert model.exploration_rate == pytest.approx(0.05 + 0.95 * np.exp(-0.005 * 40))
    assert float(model.policy.exploration_rate) == model.exploration_rate


def test_linear_epsilon_decay_as_dqn():
    model = QLearning("TabularPolicy", CLIFF, seed=0, exploration_initial_eps=1.0, exploration_final_eps=0.1,
                      exploration_fraction=0.5)

    class Probe(BaseCallback):
        rates: ClassVar[dict[int, float]] = {}

        def _on_step(self) -> bool:
            self.rates[self.num_timesteps] = self.model.exploration_rate
            return True

    model.learn(1000, callback=Probe())
    assert Probe.rates[250] == pytest.approx(1.0 - 0.9 * 0.5)
    assert Probe.rates[600] == pytest.approx(0.1)


def test_callbacks_stop_training_and_tensorboard_gets_events(tmp_path):
    class StopAt(BaseCallback):
        def _on_step(self) -> bool:
            return self.num_timesteps < 123

    model = SARSA("TabularPolicy", CLIFF, seed=0, tensorboard_log=str(tmp_path))
    model.learn(10_000, callback=StopAt())
    assert model.num_timesteps == 123
    assert list(tmp_path.rglob("events.out.tfevents.*"))


# ------------------------------------------------------------------------- spaces and predict


def test_other_spaces_are_rejected_before_training():
    with pytest.raises(SpaceMismatchError, match="Discrete observation space"):
        QLearning("TabularPolicy", "CartPole-v1")
    box_member = gym.spaces.Tuple((gym.spaces.Discrete(3), gym.spaces.Box(0, 1, (2,))))
    with pytest.raises(SpaceMismatchError, match="every member of a Tuple must be Discrete"):
        StateIndexer(box_member)
    with pytest.raises(SpaceMismatchError, match="Discrete action space"):
        QLearning("TabularPolicy", "FrozenLake-v1").policy.__class__(
            gym.spaces.Discrete(3), gym.spaces.Box(-1, 1, (1,)))


def test_tuple_observations_are_flattened():
    model = QLearning("TabularPolicy", "Blackjack-v1", seed=0)
    assert model.n_states == 32 * 11 * 2
    model.learn(500)
    observation = (14, 10, 0)
    single, _ = model.predict(observation, deterministic=True)
    assert single.shape == ()
    batch, _ = model.predict((np.array([14, 20]), np.array([10, 3]), np.array([0, 1])), deterministic=True)
    row = StateIndexer(model.observation_space).index(observation)
    assert row == np.ravel_multi_index(observation, (32, 11, 2))
    assert batch.shape == (2,) and batch[0] == q_table(model)[row].argmax() == single


def test_predict_is_greedy_or_behaviour():
    model = QLearning("TabularPolicy", "FrozenLake-v1", seed=0, exploration_initial_eps=1.0)
    q_table(model)[:] = 0.0
    q_table(model)[:, 2] = 1.0
    action, state = model.predict(5, deterministic=True)
    assert action.shape == () and int(action) == 2 and state is None
    actions, _ = model.predict(np.zeros(400, dtype=np.int64), deterministic=False)
    assert actions.shape == (400,) and set(actions.tolist()) == {0, 1, 2, 3}  # epsilon 1: random
    model.policy.table("exploration_rate")[()] = 0.0
    actions, _ = model.predict(np.arange(16), deterministic=False)
    assert (actions == 2).all()
    with pytest.raises(ValueError, match="outside the observation space"):
        model.predict(16)


def test_save_load_keeps_every_table(tmp_path):
    model = DynaQPlus("TabularPolicy", CLIFF, seed=0, n_planning_steps=3)
    model.learn(300)
    model.save(tmp_path / "agent")
    loaded = DynaQPlus.load(tmp_path / "agent")
    for name in ("q_table", "model_reward", "model_next_state", "model_seen", "model_last_tried", "model_clock"):
        np.testing.assert_array_equal(loaded.policy.table(name), model.policy.table(name))
    assert loaded._observed_pairs == sorted(model._observed_pairs)
    lam = SARSALambda("TabularPolicy", CLIFF, seed=0)
    lam.learn(100)
    lam.save(tmp_path / "lambda")
    assert "traces" not in SARSALambda.load(tmp_path / "lambda").get_parameters()["policy"]


def test_course_time_limit_is_seen_by_monitor_and_evaluation():
    """The Hugging Face course's 99-step episodes (a TimeLimit env_wrapper in the zoo config) end
    inside the Monitor, so episode statistics and evaluation see them."""
    from rlhub.config import load_zoo_config
    from rlhub.envs import make_vec_env as rlhub_make_vec_env
    from rlhub.evaluation import evaluate

    config = load_zoo_config("q_learning", "Taxi-v4", QLearning)
    env = rlhub_make_vec_env("Taxi-v4", seed=0, wrapper=config.env_wrapper)
    model = QLearning("TabularPolicy", env, seed=0)  # untrained: the greedy policy never delivers
    result = evaluate(model, env, n_episodes=2)
    assert result.lengths == [99, 99]


@pytest.mark.slow
def test_q_learning_zoo_config_solves_the_slippery_lake(tmp_path):
    """FrozenLake-v1 4x4 slippery with the zoo config (20000 episodes): the greedy policy's exact success
    probability within 99 steps, from the model P, is at least the reward threshold 0.70 (best: 0.742)."""
    from rlhub_tabular.common import TransitionModel

    from rlhub.experiment import TrainOptions, train

    result = train(TrainOptions("q_learning", "FrozenLake-v1", seed=0, log_folder=tmp_path, eval_freq=-1, verbose=0))
    lake = gym.make("FrozenLake-v1").unwrapped
    model = TransitionModel(lake.P, 16, 4)
    policy = q_table(result.model).argmax(axis=1)
    success = np.zeros(16)
    for _ in range(99):
        success = model.q_values(success, 1.0)[np.arange(16), policy]
    assert success[0] >= 0.70
