"""What a study leaves in its folder: ``best.yml`` (a zoo config for ``rlhub train -conf``), the
trials as CSV, Optuna's optimisation-history and parameter-importance plots, and a table of the top
trials for the terminal."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from rlhub.experiment import TrainOptions, prepare
from rlhub.tuning.objective import HYPERPARAMS_ATTR, RUN_DIR_ATTR, SEED_ATTR

BEST_CONFIG = "best.yml"
TRIALS_CSV = "trials.csv"
HISTORY_PLOT = "optimization_history.png"
IMPORTANCE_PLOT = "param_importances.png"


def completed(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def write_report(study: optuna.Study, study_dir: Path, options: TrainOptions) -> list[Path]:
    """Write every report file the study's trials allow; return the paths written."""
    written = []
    trials = study.trials_dataframe()
    if len(trials):
        trials.to_csv(study_dir / TRIALS_CSV, index=False)
        written.append(study_dir / TRIALS_CSV)
    if completed(study):
        written.append(write_best_config(study, study_dir / BEST_CONFIG, options))
        written.extend(save_plots(study, study_dir))
    return written


def write_best_config(study: optuna.Study, path: Path, options: TrainOptions) -> Path:
    """The best trial's section: the config it trained with (the shipped or ``-conf`` section, the
    command line's overrides, then the sampled hyperparameters), as ``config.yml`` is written."""
    best = study.best_trial
    sampled = best.user_attrs[HYPERPARAMS_ATTR]
    _, config, _ = prepare(replace(options, hyperparams={**options.hyperparams, **sampled}))
    header = (f"# rlhub tune: trial {best.number} of study {study.study_name!r}, mean return {best.value:.2f} at its "
              f"last evaluation.\n# Train it with: {train_command(best, config.algo_id, config.env_id, path)}\n")
    path.write_text(header + config.to_yaml())
    return path


def train_command(trial: FrozenTrial, algo_id: str, env_id: str, config_path: Path) -> str:
    """The command that trains ``trial``'s config again; with the trial's seed it repeats the trial."""
    seed = trial.user_attrs.get(SEED_ATTR)
    return (f"rlhub train --algo {algo_id} --env {env_id} -conf {config_path}"
            + (f" --seed {seed}" if seed is not None else ""))


def save_plots(study: optuna.Study, study_dir: Path) -> list[Path]:
    """Optuna's matplotlib figures: the history always; the importances once two trials differ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    written = []
    plots = [(HISTORY_PLOT, optuna_plots.plot_optimization_history)]
    if len(completed(study)) >= 2:
        plots.append((IMPORTANCE_PLOT, optuna_plots.plot_param_importances))
    for name, plot in plots:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                axes = plot(study)
            except (ValueError, RuntimeError) as error:  # e.g. importances when no parameter varied
                warnings.warn(f"{name} was not drawn: {error}", stacklevel=2)
                continue
        figure = axes.get_figure()
        figure.set_size_inches(9, 5)
        figure.tight_layout()
        figure.savefig(study_dir / name, dpi=100)
        plt.close(figure)
        written.append(study_dir / name)
    return written


def top_trials_table(study: optuna.Study, n: int = 10) -> Any:
    """A rich table of the ``n`` best complete trials: value, the sampled parameters, run folder."""
    from rich.table import Table

    best = sorted(completed(study), key=lambda trial: trial.value, reverse=True)[:n]
    names = sorted({name for trial in best for name in trial.params})
    table = Table(title=f"Top {len(best)} trials of {study.study_name}")
    for column in ("trial", "return", *names, "run folder"):
        table.add_column(column, justify="right" if column not in ("run folder",) else "left")
    for trial in best:
        table.add_row(str(trial.number), f"{trial.value:.1f}", *(_short(trial.params.get(name)) for name in names),
                      Path(trial.user_attrs.get(RUN_DIR_ATTR, "?")).name)
    return table


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)
