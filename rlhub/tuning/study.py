"""``rlhub tune``: an Optuna study over an algorithm's hyperparameters, as the RL Zoo's ``-optimize``.

The study lives in a storage (an SQLite file in the study's folder by default; any RDB URL or a
journal file for workers on many machines), so the same command resumes it and several processes
share it. The study's folder, ``<log folder>/tune/<study name>/``, holds the trials' run folders and
the report (:mod:`rlhub.tuning.report`).
"""

from __future__ import annotations

import signal
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from rlhub import registry
from rlhub.config import ConfigError
from rlhub.experiment import TrainOptions, validate_options
from rlhub.run_folder import env_name
from rlhub.tuning.objective import ERROR_ATTR, Objective

SAMPLERS = ("tpe", "random", "cmaes")
PRUNERS = ("median", "halving", "none")
STUDY_DB = "study.db"
#: what to install for an RDB storage's default driver (SQLAlchemy 2.1's defaults)
_DRIVERS = {"postgresql": "pip install 'psycopg[binary]' (or rlhub's [optuna] extra)",
            "mysql": "pip install mysqlclient, or pymysql with a mysql+pymysql:// URL"}
#: the study's identity: a resumed study must tune the same thing
_IDENTITY = ("algo", "env", "n_timesteps")


@dataclass
class TuneOptions:
    """What ``rlhub tune`` takes; the names and defaults follow the RL Zoo's ``-optimize`` flags."""

    #: the algorithm, env, budget per trial, log folder and config, as for ``rlhub train``
    train: TrainOptions
    #: trials this process runs (the RL Zoo's ``--n-trials``)
    n_trials: int = 10
    #: stop once the study holds this many complete, pruned or running trials, all workers together
    max_total_trials: int | None = None
    n_jobs: int = 1
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    #: an Optuna RDB URL (``sqlite:///...``, ``postgresql://...``) or a journal file;
    #: None: an SQLite file in the study's folder
    storage: str | None = None
    study_name: str | None = None
    n_startup_trials: int = 10
    n_evaluations: int = 5


@dataclass
class TuneResult:
    study: optuna.Study
    study_dir: Path
    storage_url: str
    wall_time: float
    interrupted: bool

    def count(self, state: TrialState) -> int:
        return len(self.study.get_trials(deepcopy=False, states=(state,)))


def study_name_of(options: TuneOptions) -> str:
    return options.study_name or f"{options.train.algo_id}_{env_name(options.train.env_id)}"


def tune(options: TuneOptions, on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None) -> TuneResult:
    """Run (or resume) the study; ``on_trial(study, trial)`` is called as each trial ends."""
    spec, config, _ = validate_options(options.train)  # a wrong algo, env or config fails here, not in every trial
    sampler_function = registry.hyperparameter_sampler(spec.algo_id)
    train_options = replace(options.train, algo_id=spec.algo_id, n_timesteps=config.n_timesteps)
    name = study_name_of(options)
    study_dir = Path(train_options.log_folder) / "tune" / name
    study_dir.mkdir(parents=True, exist_ok=True)
    storage_url = options.storage or f"sqlite:///{(study_dir / STUDY_DB).resolve()}"
    with _quiet_optuna():
        study = optuna.create_study(
            study_name=name, storage=open_storage(storage_url), direction="maximize", load_if_exists=True,
            sampler=make_sampler(options.sampler, options.n_startup_trials, train_options.seed),
            pruner=make_pruner(options.pruner, options.n_startup_trials, options.n_evaluations))
    _check_identity(study, spec.algo_id, train_options, storage_url)

    objective = Objective(replace(train_options, log_folder=study_dir), sampler_function, options.n_evaluations)
    stop = _StopAfterTrial()
    callbacks = [stop.after_trial, *([on_trial] if on_trial else [])]
    n_trials = options.n_trials
    if options.max_total_trials is not None:
        # Running trials count too, or every worker would start one more (the RL Zoo's way).
        counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        callbacks.append(optuna.study.MaxTrialsCallback(options.max_total_trials, states=counted))
        n_trials = min(n_trials, max(options.max_total_trials - len(study.get_trials(states=counted)), 0))
    started = time.perf_counter()
    with stop.installed(), _quiet_optuna():
        try:
            if n_trials > 0:
                study.optimize(objective, n_trials=n_trials, n_jobs=options.n_jobs, timeout=options.timeout,
                               catch=(Exception,), callbacks=callbacks, gc_after_trial=True)
        except KeyboardInterrupt:  # the second Ctrl-C: the running trial is recorded as failed
            stop.requested = True
    return TuneResult(study, study_dir, storage_url, time.perf_counter() - started, stop.requested)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage from ``--storage``: an RDB URL, or ``journal:PATH`` / a ``.log`` file for a journal."""
    try:
        if url.startswith("journal:") or (("://" not in url) and url.endswith((".log", ".journal"))):
            from optuna.storages.journal import JournalFileBackend

            path = Path(url.removeprefix("journal:")).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        if "://" not in url:
            raise ConfigError(f"--storage {url!r} is neither a database URL (sqlite:///PATH, postgresql://USER@HOST/DB, "
                              "mysql://...) nor a journal file (journal:PATH or a .log file)")
        # A heartbeat marks the trials of a killed worker failed, so they do not stay "running" for ever.
        engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
        return _retrying(lambda: optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=30,
                                                            grace_period=120))
    except ConfigError:
        raise
    except ImportError:  # Optuna's wording of a missing database driver
        raise ConfigError(f"--storage {_hide_password(url)} needs a database driver SQLAlchemy can import: "
                          f"{_DRIVERS.get(url.split(':')[0].split('+')[0], 'the one its URL names')}") from None
    except Exception as error:  # SQLAlchemy's errors: a bad URL, a server that refuses, a file it cannot open
        raise ConfigError(f"cannot open the study storage {_hide_password(url)}: {type(error).__name__}: "
                          f"{str(error).splitlines()[0]}") from None


def _retrying(open_rdb: Any, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Workers started together on a new database race to create its tables; the loser's second try
    finds them made."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(1, attempts):
        try:
            return open_rdb()
        except (IntegrityError, OperationalError):
            time.sleep(0.5 * attempt)
    return open_rdb()


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def make_sampler(name: str, n_startup_trials: int, seed: int | None) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(n_startup_trials=n_startup_trials, multivariate=True, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(n_startup_trials=n_startup_trials, seed=seed)
    raise ConfigError(f"unknown sampler {name!r}: use one of {', '.join(SAMPLERS)}")


#: complete trials the median pruner compares with before it prunes (Optuna's default)
MEDIAN_PRUNER_STARTUP = 5


def make_pruner(name: str, n_startup_trials: int, n_evaluations: int) -> optuna.pruners.BasePruner:
    """The RL Zoo's pruners. The median one prunes from the first third of a trial's evaluations on, once
    5 trials are complete: a median needs fewer trials than TPE needs to model the space (the RL Zoo
    waits for ``n_startup_trials`` with both, and then prunes a fifth of its CartPole trials at most)."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=min(n_startup_trials, MEDIAN_PRUNER_STARTUP),
                                           n_warmup_steps=n_evaluations // 3)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=4, min_early_stopping_rate=0)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}: use one of {', '.join(PRUNERS)}")


def _check_identity(study: optuna.Study, algo_id: str, options: TrainOptions, storage_url: str) -> None:
    """Record what a new study tunes; refuse to resume one that tunes something else."""
    asked = dict(zip(_IDENTITY, (algo_id, options.env_id, options.n_timesteps), strict=True))
    recorded = _recorded_identity(study)
    if len(recorded) < len(asked):
        # A new study, or one another worker is recording at this moment (the keys are written one by one):
        # write what is missing, then compare what the storage holds.
        for key, value in asked.items():
            if key not in recorded:
                study.set_user_attr(key, value)
        recorded = _recorded_identity(study)
    if recorded != asked:
        raise ConfigError(f"study {study.study_name!r} in {_hide_password(storage_url)} tunes --algo "
                          f"{recorded.get('algo')} --env {recorded.get('env')} with -n {recorded.get('n_timesteps')}, "
                          f"not --algo {algo_id} --env {options.env_id} -n {options.n_timesteps}: give those to resume "
                          "it, or another --study-name")


def _recorded_identity(study: optuna.Study) -> dict[str, Any]:
    attributes = study.user_attrs  # read from the storage on each access
    return {key: attributes[key] for key in _IDENTITY if key in attributes}


class _StopAfterTrial:
    """Ctrl-C lets the running trial finish, then stops the study; a second one (or SIGTERM) stops
    the trial too, which is then recorded as failed. The study stays in its storage either way."""

    def __init__(self) -> None:
        self.requested = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested or signum != signal.SIGINT:
            self.requested = True
            raise KeyboardInterrupt
        self.requested = True
        print("\nStopping after the current trial (Ctrl-C again stops it now; the same command resumes the study)",
              flush=True)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.requested:
            study.stop()

    @contextmanager
    def installed(self) -> Iterator[None]:
        try:
            previous = {signum: signal.signal(signum, self._handle) for signum in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread: signals stay the caller's
            previous = {}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """rlhub prints one line per trial itself; Optuna's own lines (a traceback per failed trial) would bury them."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            # the heartbeat that fails a killed worker's trials is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def trial_line(trial: FrozenTrial) -> str:
    """One line for a finished trial, for the command's output."""
    seconds = f"{trial.duration.total_seconds():.0f} s" if trial.duration else "?"
    if trial.state == TrialState.COMPLETE:
        return f"trial {trial.number}: {trial.value:.1f} ({seconds})"
    if trial.state == TrialState.PRUNED:
        last = trial.intermediate_values[max(trial.intermediate_values)] if trial.intermediate_values else float("nan")
        return f"trial {trial.number}: pruned after {len(trial.intermediate_values)} evaluations at {last:.1f} ({seconds})"
    return f"trial {trial.number}: {trial.state.name.lower()}: {trial.user_attrs.get(ERROR_ATTR, 'no error recorded')}"
