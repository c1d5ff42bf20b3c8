"""Search spaces for ``rlhub tune`` over ACER's and REINFORCE's hyperparameters.

The ranges bracket the papers' settings and rlhub's tuned configs (zoo_configs/acer.yml,
reinforce.yml); the parameter names and layer choices follow the RL Zoo's samplers.
"""

from __future__ import annotations

from typing import Any

import optuna

_ACTIVATIONS = {"tanh": "nn.Tanh", "relu": "nn.ReLU"}
_NET_ARCHS = {"small": [64, 64], "medium": [256, 256]}


def _policy_kwargs(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "net_arch": _NET_ARCHS[trial.suggest_categorical("net_arch", list(_NET_ARCHS))],
        "activation_fn": _ACTIVATIONS[trial.suggest_categorical("activation_fn", list(_ACTIVATIONS))],
    }


def sample_acer(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "n_steps": trial.suggest_categorical("n_steps", [5, 10, 20, 40]),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 5e-3, log=True),
        "gamma": trial.suggest_categorical("gamma", [0.95, 0.98, 0.99, 0.995, 0.999]),
        "ent_coef": trial.suggest_float("ent_coef", 1e-8, 0.05, log=True),
        "q_coef": trial.suggest_categorical("q_coef", [0.25, 0.5, 1.0]),
        "replay_ratio": trial.suggest_categorical("replay_ratio", [0, 1, 2, 4, 8]),
        "correction_term": trial.suggest_categorical("correction_term", [1.0, 5.0, 10.0]),
        "delta": trial.suggest_categorical("delta", [0.1, 0.5, 1.0, 2.0]),
        "max_grad_norm": trial.suggest_float("max_grad_norm", 0.3, 10, log=True),
        "policy_kwargs": _policy_kwargs(trial),
    }


def sample_reinforce(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
        "n_episodes": trial.suggest_categorical("n_episodes", [1, 2, 4, 8]),
        "gamma": trial.suggest_categorical("gamma", [0.95, 0.98, 0.99, 0.995, 0.999]),
        "baseline": trial.suggest_categorical("baseline", [False, True]),
        "policy_kwargs": _policy_kwargs(trial),
    }
