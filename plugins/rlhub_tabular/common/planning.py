"""Planning on a known model: the tabular MDP of ``env.unwrapped.P`` and the base of DP planners."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import torch as th
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback
from stable_baselines3.common.vec_env import VecEnv

from rlhub.spec import SpaceMismatchError
from rlhub_tabular.common.algorithm import TabularAlgorithm
from rlhub_tabular.common.policy import TableSpecs, TabularPolicy


class MissingTransitionModelError(SpaceMismatchError):
    """A planning algorithm got an environment without ``env.unwrapped.P``."""


class TransitionModel:
    """A tabular MDP read from Gymnasium's toy-text convention ``P[s][a] = [(prob, next_state,
    reward, terminated), ...]``, stored sparsely for vectorised Bellman backups.

    :param transitions: the ``P`` mapping or list
    :param n_states: expected number of states
    :param n_actions: expected number of actions
    """

    def __init__(self, transitions: Any, n_states: int, n_actions: int) -> None:
        pair_index, next_states, weights, rewards, continues = [], [], [], [], []
        if len(transitions) != n_states:
            raise ValueError(f"the transition model P has {len(transitions)} states, the observation space {n_states}")
        for state in range(n_states):
            outcomes_by_action = transitions[state]
            if len(outcomes_by_action) != n_actions:
                raise ValueError(f"P[{state}] has {len(outcomes_by_action)} actions, the action space {n_actions}")
            for action in range(n_actions):
                total = 0.0
                for outcome in outcomes_by_action[action]:
                    probability, next_state, reward, terminated = outcome[:4]
                    pair_index.append(state * n_actions + action)
                    next_states.append(int(next_state))
                    weights.append(float(probability))
                    rewards.append(float(reward))
                    continues.append(0.0 if terminated else 1.0)
                    total += float(probability)
                if abs(total - 1.0) > 1e-6:
                    raise ValueError(f"the probabilities of P[{state}][{action}] sum to {total}, not 1")
        self.n_states = n_states
        self.n_actions = n_actions
        self.pair_index = np.asarray(pair_index, dtype=np.int64)
        self.next_states = np.asarray(next_states, dtype=np.int64)
        probabilities = np.asarray(weights, dtype=np.float64)
        #: expected immediate reward of each (state, action), shape (S, A)
        self.expected_rewards = np.bincount(
            self.pair_index, weights=probabilities * np.asarray(rewards), minlength=n_states * n_actions
        ).reshape(n_states, n_actions)
        #: probability of each outcome times "not terminated": the weight of the next state's value
        self.continue_weights = probabilities * np.asarray(continues)

    def q_values(self, values: np.ndarray, gamma: float) -> np.ndarray:
        """``Q(s, a) = E[r + gamma * (1 - terminated) * V(s')]``, shape (S, A)."""
        future = np.bincount(
            self.pair_index, weights=self.continue_weights * values[self.next_states],
            minlength=self.n_states * self.n_actions,
        ).reshape(self.n_states, self.n_actions)
        return self.expected_rewards + gamma * future

    @classmethod
    def from_env(cls, env: VecEnv, n_states: int, n_actions: int, algo_name: str) -> TransitionModel:
        """Read ``env.unwrapped.P`` of the first sub-environment, or fail saying what is missing."""
        try:
            transitions = env.get_attr("P", indices=[0])[0]
        except AttributeError:
            transitions = None
        if transitions is None:
            raise MissingTransitionModelError(
                f"{algo_name} plans on the environment's transition model and {_env_name(env)} has none: it needs "
                "env.unwrapped.P in Gymnasium's toy-text convention P[s][a] = [(prob, next_state, reward, "
                "terminated), ...] (FrozenLake-v1, Taxi-v4, CliffWalking-v1 and rlhub/Cliff-v0 have it). "
                "Use a learning algorithm such as q_learning for environments without a model."
            )
        return cls(transitions, n_states, n_actions)


def _env_name(env: VecEnv) -> str:
    try:
        spec = env.get_attr("spec", indices=[0])[0]
    except AttributeError:
        spec = None
    return f"the environment {spec.id!r}" if spec is not None else "the environment"


class PlanningAlgorithm(TabularAlgorithm):
    """Base of dynamic-programming planners (value and policy iteration).

    ``learn(total_timesteps)`` plans on ``env.unwrapped.P`` instead of stepping the environment; one
    timestep is one Bellman backup of one state, so a sweep costs ``n_states`` timesteps and
    ``total_timesteps`` is the sweep budget times ``n_states``. Planning stops early at convergence,
    as an early-stopping callback would. ``callback.on_step()`` is called after every sweep.
    A subclass implements :meth:`_sweep`.
    """

    _explores = False
    _transient_attributes = (*TabularAlgorithm._transient_attributes, "_v", "_model")

    def __init__(self, policy: str | type[TabularPolicy], env: GymEnv | str | None, gamma: float, theta: float,
                 stats_window_size: int, tensorboard_log: str | None, policy_kwargs: dict[str, Any] | None,
                 verbose: int, seed: int | None, device: th.device | str) -> None:
        super().__init__(policy, env, learning_rate=0.0, gamma=gamma, exploration_initial_eps=0.0,
                         exploration_final_eps=0.0, stats_window_size=stats_window_size,
                         tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs, verbose=verbose, seed=seed,
                         device=device)
        if theta <= 0:
            raise ValueError(f"{type(self).__name__}: theta must be > 0, got {theta}")
        self.theta = theta
        self.converged = False
        self.n_sweeps = 0
        self._model: TransitionModel | None = None

    def _table_specs(self) -> TableSpecs:
        return {"v_table": ((self.n_states,), "float64", 0.0, True)}

    def _bind_tables(self) -> None:
        super()._bind_tables()
        self._v = self.policy.table("v_table")
        # Read the model now, so that an environment without one fails before any training.
        self._model = self._read_model() if self.env is not None else None

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset)
        self._model = self._read_model()

    def _read_model(self) -> TransitionModel:
        assert self.env is not None
        return TransitionModel.from_env(self.env, self.n_states, self.n_actions, type(self).__name__)

    def _sweep(self, model: TransitionModel) -> tuple[float, bool]:
        """One sweep: return the largest value change and whether planning has converged."""
        raise NotImplementedError

    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 100,
        tb_log_name: str = "run",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> Self:
        """Plan for at most ``total_timesteps`` state backups (``n_states`` per sweep) or until converged.

        :param log_interval: dump the logger every this many sweeps (and at the end)
        """
        total_timesteps, callback = self._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name,
                                                      progress_bar)
        if self._model is None:
            self._model = self._read_model()
        callback.on_training_start(locals(), globals())
        callback.on_rollout_start()
        self.converged = False
        sweeps_this_call = 0
        while self.num_timesteps < total_timesteps:
            self.last_delta, self.converged = self._sweep(self._model)
            self.n_sweeps += 1
            sweeps_this_call += 1
            self.num_timesteps += self.n_states
            self._current_progress_remaining = 1.0 - self.num_timesteps / total_timesteps
            if not callback.on_step() or self.converged:
                break
            if sweeps_this_call % max(log_interval, 1) == 0:
                self.dump_logs()
        callback.on_rollout_end()
        self.dump_logs()
        callback.on_training_end()
        return self

    def _record_logs(self) -> None:
        self.logger.record("train/sweeps", self.n_sweeps)
        self.logger.record("train/max_value_change", getattr(self, "last_delta", float("nan")))
        self.logger.record("train/converged", int(self.converged))
