"""One Optuna trial: sample hyperparameters, train through ``rlhub train``'s path, report each
evaluation to the pruner, and return the last evaluation's mean return (the RL Zoo's objective)."""

from __future__ import annotations

import math
import os
import socket
import warnings
from dataclasses import dataclass, replace
from typing import Any

import optuna

from rlhub.experiment import TrainOptions, train

#: trial user attributes: what ``best.yml`` and the report read back
HYPERPARAMS_ATTR = "hyperparams"
RUN_DIR_ATTR = "run_dir"
ERROR_ATTR = "error"
WORKER_ATTR = "worker"
SEED_ATTR = "seed"


class TrialInterrupted(KeyboardInterrupt):
    """A second Ctrl-C stopped the trial's training: the trial is recorded as failed, the study stops."""


@dataclass
class Objective:
    """Called by ``study.optimize`` once per trial (from several threads with ``--n-jobs``).

    :param options: the study's training options (algorithm, env, budget, log folder: the study's folder)
    :param sampler: the algorithm's search space (``rlhub_hyperparameter_samplers``)
    :param n_evaluations: evaluations per trial, reported to the pruner
    """

    options: TrainOptions
    sampler: Any
    n_evaluations: int

    def __call__(self, trial: optuna.Trial) -> float:
        sampled = self.sampler(trial)
        trial.set_user_attr(HYPERPARAMS_ATTR, sampled)
        trial.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{os.getpid()}")
        returns: list[float] = []

        def report(index: int, steps: int, mean_return: float) -> bool:
            returns.append(mean_return)
            trial.report(mean_return, index)
            return not trial.should_prune()

        budget = int(self.options.n_timesteps)
        seed = None if self.options.seed is None else self.options.seed + trial.number
        trial.set_user_attr(SEED_ATTR, seed)
        options = replace(
            self.options,
            hyperparams={**self.options.hyperparams, **sampled},
            seed=seed,
            eval_freq=max(math.ceil(budget / self.n_evaluations), 1),
            save_freq=0,  # a trial is short, and its run folder keeps the final model and the best one
            on_evaluation=report,
            handle_signals=False,  # Ctrl-C is the study's: it lets this trial finish
            progress=False,
            verbose=0,
        )
        try:
            with warnings.catch_warnings():
                # The Zoo's PPO space pairs any batch size with any rollout size; SB3 warns each time.
                warnings.filterwarnings("ignore", message="You have specified a mini-batch size", category=UserWarning)
                result = train(options)
        except Exception as error:  # recorded with the trial; the study goes on (optimize's catch)
            trial.set_user_attr(ERROR_ATTR, f"{type(error).__name__}: {error}")
            raise
        trial.set_user_attr(RUN_DIR_ATTR, str(result.run_dir))
        if result.interrupted:
            trial.set_user_attr(ERROR_ATTR, "interrupted (Ctrl-C)")
            raise TrialInterrupted
        if not returns:
            raise RuntimeError(f"the trial trained {result.timesteps} steps without an evaluation")
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at evaluation {len(returns)} of {self.n_evaluations}: {returns[-1]:.1f}")
        return returns[-1]
