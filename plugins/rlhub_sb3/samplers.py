"""Search spaces for ``rlhub tune``: the RL Zoo's (``rl_zoo3/hyperparams_opt.py``), with its parameter
names and ranges, so a study here and one run with the Zoo explore the same space.

Each sampler returns the trial's hyperparameters as a zoo config section writes them: plain numbers,
``policy_kwargs`` as a dict whose classes are import paths (``"nn.Tanh"``), so the best trial becomes
a ``best.yml`` that ``rlhub train -conf`` reads. Parameters the Zoo samples in another form
(``one_minus_gamma``) are converted; the trial keeps the Zoo's names.
"""

from __future__ import annotations

from typing import Any

import optuna

_GAMMAS = [0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999]
_TAUS = [0.001, 0.005, 0.01, 0.02, 0.05, 0.08]
_ACTIVATIONS = {"tanh": "nn.Tanh", "relu": "nn.ReLU"}
# Separate actor and critic layers, as the Zoo's on-policy samplers use them.
_ACTOR_CRITIC_ARCHS = {
    "tiny": {"pi": [64], "vf": [64]},
    "small": {"pi": [64, 64], "vf": [64, 64]},
    "medium": {"pi": [256, 256], "vf": [256, 256]},
}
_OFF_POLICY_ARCHS = {"small": [64, 64], "medium": [256, 256], "big": [400, 300]}


def _one_minus(trial: optuna.Trial, name: str, low: float, high: float) -> float:
    """A discount-like value near 1, sampled as ``one_minus_<name>`` on a log scale (the Zoo's way)."""
    value = 1 - trial.suggest_float(f"one_minus_{name}", low, high, log=True)
    trial.set_user_attr(name, value)  # the true value, for the dashboard
    return value


def sample_a2c(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "n_steps": trial.suggest_categorical("n_steps", [32, 64, 128, 256, 512, 1024, 2048]),
        "gamma": _one_minus(trial, "gamma", 0.0001, 0.03),
        "gae_lambda": _one_minus(trial, "gae_lambda", 0.0001, 0.1),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 0.002, log=True),
        "max_grad_norm": trial.suggest_float("max_grad_norm", 0.3, 2),
        "ent_coef": trial.suggest_float("ent_coef", 1e-8, 0.1, log=True),
        "policy_kwargs": {
            "net_arch": _ACTOR_CRITIC_ARCHS[trial.suggest_categorical("net_arch", ["small", "medium"])],
            "activation_fn": _ACTIVATIONS[trial.suggest_categorical("activation_fn", list(_ACTIVATIONS))],
        },
    }


def sample_ppo(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "n_steps": trial.suggest_categorical("n_steps", [32, 64, 128, 256, 512, 1024, 2048]),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256, 512]),
        "gamma": _one_minus(trial, "gamma", 0.0001, 0.03),
        "gae_lambda": _one_minus(trial, "gae_lambda", 0.0001, 0.1),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 0.002, log=True),
        "ent_coef": trial.suggest_float("ent_coef", 1e-8, 0.1, log=True),
        "clip_range": trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3, 0.4]),
        "n_epochs": trial.suggest_categorical("n_epochs", [1, 5, 10, 20]),
        "max_grad_norm": trial.suggest_float("max_grad_norm", 0.3, 2),
        "policy_kwargs": {
            "net_arch": _ACTOR_CRITIC_ARCHS[trial.suggest_categorical("net_arch", ["tiny", "small", "medium"])],
            "activation_fn": _ACTIVATIONS[trial.suggest_categorical("activation_fn", list(_ACTIVATIONS))],
        },
    }


def sample_trpo(trial: optuna.Trial) -> dict[str, Any]:
    n_steps = trial.suggest_categorical("n_steps", [8, 16, 32, 64, 128, 256, 512, 1024, 2048])
    batch_size = trial.suggest_categorical("batch_size", [8, 16, 32, 64, 128, 256, 512])
    return {
        "n_steps": n_steps,
        "batch_size": min(batch_size, n_steps),
        "gamma": trial.suggest_categorical("gamma", _GAMMAS),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1, log=True),
        "n_critic_updates": trial.suggest_categorical("n_critic_updates", [5, 10, 20, 25, 30]),
        "cg_max_steps": trial.suggest_categorical("cg_max_steps", [5, 10, 20, 25, 30]),
        "target_kl": trial.suggest_categorical("target_kl", [0.1, 0.05, 0.03, 0.02, 0.01, 0.005, 0.001]),
        "gae_lambda": trial.suggest_categorical("gae_lambda", [0.8, 0.9, 0.92, 0.95, 0.98, 0.99, 1.0]),
        "policy_kwargs": {
            "net_arch": _ACTOR_CRITIC_ARCHS[trial.suggest_categorical("net_arch", ["small", "medium"])],
            "activation_fn": _ACTIVATIONS[trial.suggest_categorical("activation_fn", list(_ACTIVATIONS))],
            "ortho_init": False,
        },
    }


def sample_sac(trial: optuna.Trial) -> dict[str, Any]:
    train_freq = trial.suggest_categorical("train_freq", [1, 4, 8, 16, 32, 64, 128, 256, 512])
    return {
        "gamma": trial.suggest_categorical("gamma", _GAMMAS),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64, 128, 256, 512, 1024, 2048]),
        "buffer_size": trial.suggest_categorical("buffer_size", [10_000, 100_000, 1_000_000]),
        "learning_starts": trial.suggest_categorical("learning_starts", [0, 1000, 10000, 20000]),
        "train_freq": train_freq,
        "gradient_steps": train_freq,  # one gradient step per env step; more costs too much time
        "tau": trial.suggest_categorical("tau", _TAUS),
        "ent_coef": "auto",
        "target_entropy": "auto",
        "policy_kwargs": {
            "log_std_init": trial.suggest_float("log_std_init", -4, 1),
            "net_arch": _OFF_POLICY_ARCHS[trial.suggest_categorical("net_arch", list(_OFF_POLICY_ARCHS))],
        },
    }


def sample_td3(trial: optuna.Trial) -> dict[str, Any]:
    train_freq = trial.suggest_categorical("train_freq", [1, 4, 8, 16, 32, 64, 128, 256, 512])
    hyperparams: dict[str, Any] = {
        "gamma": trial.suggest_categorical("gamma", _GAMMAS),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64, 100, 128, 256, 512, 1024, 2048]),
        "buffer_size": trial.suggest_categorical("buffer_size", [10_000, 100_000, 1_000_000]),
        "tau": trial.suggest_categorical("tau", _TAUS),
        "train_freq": train_freq,
        "gradient_steps": train_freq,
    }
    noise_type = trial.suggest_categorical("noise_type", ["ornstein-uhlenbeck", "normal", None])
    noise_std = trial.suggest_float("noise_std", 0, 1)
    if noise_type is not None:  # the zoo config keys rlhub turns into an action noise of the env's size
        hyperparams.update(noise_type=noise_type, noise_std=noise_std)
    net_arch = _OFF_POLICY_ARCHS[trial.suggest_categorical("net_arch", list(_OFF_POLICY_ARCHS))]
    return {**hyperparams, "policy_kwargs": {"net_arch": net_arch}}


sample_ddpg = sample_td3  # the Zoo samples DDPG over TD3's space


def sample_dqn(trial: optuna.Trial) -> dict[str, Any]:
    train_freq = trial.suggest_categorical("train_freq", [1, 4, 8, 16, 128, 256, 1000])
    subsample_steps = trial.suggest_categorical("subsample_steps", [1, 2, 4, 8])
    return {
        "gamma": trial.suggest_categorical("gamma", _GAMMAS),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64, 100, 128, 256, 512]),
        "buffer_size": trial.suggest_categorical("buffer_size", [10_000, 50_000, 100_000, 1_000_000]),
        "exploration_final_eps": trial.suggest_float("exploration_final_eps", 0, 0.2),
        "exploration_fraction": trial.suggest_float("exploration_fraction", 0, 0.5),
        "target_update_interval": trial.suggest_categorical("target_update_interval",
                                                            [1, 1000, 5000, 10000, 15000, 20000]),
        "learning_starts": trial.suggest_categorical("learning_starts", [0, 1000, 5000, 10000, 20000]),
        "train_freq": train_freq,
        "gradient_steps": max(train_freq // subsample_steps, 1),
        "policy_kwargs": {
            "net_arch": {"tiny": [64], "small": [64, 64], "medium": [256, 256]}[
                trial.suggest_categorical("net_arch", ["tiny", "small", "medium"])],
        },
    }


def sample_qrdqn(trial: optuna.Trial) -> dict[str, Any]:
    hyperparams = sample_dqn(trial)
    hyperparams["policy_kwargs"]["n_quantiles"] = trial.suggest_int("n_quantiles", 5, 200)
    return hyperparams


def sample_tqc(trial: optuna.Trial) -> dict[str, Any]:
    hyperparams = sample_sac(trial)
    n_quantiles = trial.suggest_int("n_quantiles", 5, 50)
    hyperparams["policy_kwargs"]["n_quantiles"] = n_quantiles
    hyperparams["top_quantiles_to_drop_per_net"] = trial.suggest_int("top_quantiles_to_drop_per_net", 0,
                                                                     n_quantiles - 1)
    return hyperparams


def sample_ars(trial: optuna.Trial) -> dict[str, Any]:
    n_delta = trial.suggest_categorical("n_delta", [4, 8, 6, 32, 64])
    top_frac_size = trial.suggest_categorical("top_frac_size", [0.1, 0.2, 0.3, 0.5, 0.8, 0.9, 1.0])
    return {
        "n_delta": n_delta,
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1, log=True),
        "delta_std": trial.suggest_categorical("delta_std", [0.01, 0.02, 0.025, 0.03, 0.05, 0.1, 0.2, 0.3]),
        "n_top": max(int(top_frac_size * n_delta), 1),
        "zero_policy": trial.suggest_categorical("zero_policy", [True, False]),
    }


sample_ppo_lstm = sample_ppo  # the Zoo tunes RecurrentPPO over PPO's space
