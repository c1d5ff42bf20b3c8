"""Thompson sampling with Beta-Bernoulli or Gaussian posteriors."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from rlhub_tabular.common import TableSpecs, TabularPolicy
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from rlhub_bandits.base import BanditAlgorithm

PRIORS = ("beta", "gaussian")


class ThompsonPolicy(TabularPolicy):
    """Pulls the arm whose posterior sample is largest; ``deterministic=True`` pulls the largest
    posterior mean (``q_table``).

    :param observation_space: ``Discrete`` (a row of posteriors per observation)
    :param action_space: ``Discrete`` arms
    :param tables: the algorithm's tables (``beta_alpha``/``beta_beta`` or ``posterior_precision``)
    :param prior: ``"beta"`` or ``"gaussian"``
    :param lr_schedule: unused
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, tables: TableSpecs | None = None,
                 prior: str = "beta", lr_schedule: Schedule | None = None) -> None:
        super().__init__(observation_space, action_space, tables=tables, lr_schedule=lr_schedule)
        self.prior = prior

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "prior": self.prior}

    def behaviour_actions(self, rows: np.ndarray) -> np.ndarray:
        if self.prior == "beta":
            samples = self.rng.beta(self.table("beta_alpha")[rows], self.table("beta_beta")[rows])
        else:
            precision = self.table("posterior_precision")[rows]
            samples = self.table("q_table")[rows] + self.rng.standard_normal(precision.shape) / np.sqrt(precision)
        return samples.argmax(axis=1)


class ThompsonSampling(BanditAlgorithm):
    """Thompson sampling: keep a posterior over each arm's mean reward, draw one sample per arm and
    pull the largest. ``prior="beta"``: Beta(1, 1) priors for rewards in [0, 1] (Bernoulli arms;
    a reward r updates alpha += r, beta += 1 - r); ``prior="gaussian"``: Normal(``prior_mean``,
    ``prior_std``) priors for Gaussian rewards of known standard deviation ``reward_std``.
    ``q_table`` holds the posterior means.

    Paper: Thompson, "On the likelihood that one unknown probability exceeds another in view of the
    evidence of two samples", Biometrika 25, 1933; Agrawal & Goyal, "Analysis of Thompson Sampling for
    the Multi-armed Bandit Problem", COLT 2012.
    Code: Russo, Van Roy, Kazerouni, Osband & Wen, "A Tutorial on Thompson Sampling", algorithm 2
    (BernTS); the notes' Beta sampling of slot machines.

    :param policy: ``"BanditPolicy"`` (:class:`ThompsonPolicy`)
    :param env: a bandit environment (e.g. ``rlhub/BernoulliBandit-v0``), or its id
    :param prior: ``"beta"`` (rewards in [0, 1]) or ``"gaussian"``
    :param prior_mean: mean of the Gaussian prior
    :param prior_std: standard deviation of the Gaussian prior
    :param reward_std: the known standard deviation of Gaussian rewards
    :param stats_window_size: number of pulls the rollout statistics average over
    :param tensorboard_log: folder for TensorBoard logs (None: none)
    :param policy_kwargs: keyword arguments for the policy
    :param verbose: 0 silent, 1 log tables, 2 debug
    :param seed: seed of the environment and the posterior samples
    :param device: accepted for SB3 compatibility; tables always live on the CPU
    :param _init_setup_model: build the tables at construction
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"BanditPolicy": ThompsonPolicy}
    _transient_attributes = (*BanditAlgorithm._transient_attributes, "_alpha_table", "_beta_table", "_precision")

    def __init__(
        self,
        policy: str | type[ThompsonPolicy],
        env: GymEnv | str | None,
        prior: str = "beta",
        prior_mean: float = 0.0,
        prior_std: float = 1.0,
        reward_std: float = 1.0,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "cpu",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy, env, learning_rate=None, stats_window_size=stats_window_size, tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs, verbose=verbose, seed=seed, device=device,
        )
        if prior not in PRIORS:
            raise ValueError(f"ThompsonSampling: prior must be one of {', '.join(PRIORS)}, got {prior!r}")
        if prior_std <= 0 or reward_std <= 0:
            raise ValueError("ThompsonSampling: prior_std and reward_std must be > 0")
        self.prior = prior
        self.prior_mean = prior_mean
        self.prior_std = prior_std
        self.reward_std = reward_std
        if _init_setup_model:
            self._setup_model()

    def _policy_arguments(self) -> dict[str, Any]:
        return {"prior": self.prior}

    def _table_specs(self) -> TableSpecs:
        shape = (self.n_states, self.n_actions)
        if self.prior == "beta":
            return {**super()._table_specs(), "q_table": (shape, "float64", 0.5, True),
                    "beta_alpha": (shape, "float64", 1.0, True), "beta_beta": (shape, "float64", 1.0, True)}
        return {**super()._table_specs(), "q_table": (shape, "float64", float(self.prior_mean), True),
                "posterior_precision": (shape, "float64", 1.0 / self.prior_std**2, True)}

    def _bind_tables(self) -> None:
        super()._bind_tables()
        if self.prior == "beta":
            self._alpha_table = self.policy.table("beta_alpha")
            self._beta_table = self.policy.table("beta_beta")
        else:
            self._precision = self.policy.table("posterior_precision")

    def _select(self, state: int) -> int:
        if self.prior == "beta":
            samples = self._rng.beta(self._alpha_table[state], self._beta_table[state])
        else:
            precision = self._precision[state]
            samples = self._q[state] + self._rng.standard_normal(precision.shape) / np.sqrt(precision)
        return int(samples.argmax())

    def _update(self, state: int, arm: int, reward: float) -> None:
        if self.prior == "beta":
            if not 0.0 <= reward <= 1.0:
                raise ValueError(
                    f"ThompsonSampling with prior='beta' needs rewards in [0, 1], got {reward}; "
                    "use prior='gaussian' for other rewards"
                )
            alpha = self._alpha_table[state, arm] + reward
            beta = self._beta_table[state, arm] + 1.0 - reward
            self._alpha_table[state, arm] = alpha
            self._beta_table[state, arm] = beta
            self._q[state, arm] = alpha / (alpha + beta)
        else:
            noise_precision = 1.0 / self.reward_std**2
            precision = self._precision[state, arm]
            updated = precision + noise_precision
            self._q[state, arm] = (precision * self._q[state, arm] + noise_precision * reward) / updated
            self._precision[state, arm] = updated
