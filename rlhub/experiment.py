"""One training run: build the agent from its config, learn with callbacks, write the run folder."""

from __future__ import annotations

import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhub import registry, trust
from rlhub.config import ConfigError, ZooConfig, load_zoo_config, make_action_noise
from rlhub.envs import make_vec_env
from rlhub.run_folder import (
    BEST_VEC_NORMALIZE_NAME,
    CHECKPOINT_PREFIX,
    CONFIG_NAME,
    VEC_NORMALIZE_NAME,
    Manifest,
    new_run_dir,
    write_atomically,
)


@dataclass
class TrainOptions:
    """What ``rlhub train`` takes; the names and defaults follow the RL Zoo's ``train.py``."""

    algo_id: str
    env_id: str
    n_timesteps: int | None = None
    log_folder: str | Path = "logs"
    seed: int | None = None
    n_envs: int | None = None
    vec_env: str = "dummy"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    hyperparams: dict[str, Any] = field(default_factory=dict)
    conf_file: str | Path | None = None
    eval_freq: int = 25_000
    eval_episodes: int = 5
    #: stop once an evaluation's mean return passes this (needs eval_freq > 0)
    stop_at_return: float | None = None
    save_freq: int = -1
    tensorboard_log: str | Path | None = None
    progress: bool = False
    device: str = "auto"
    trained_agent: str | Path | None = None
    #: unpickle ``trained_agent`` even if ``rlhub train`` did not write it on this machine
    trust_remote_code: bool = False
    verbose: int = 1
    #: torch threads; small policy networks train fastest on one CPU thread (<= 0: torch's default)
    num_threads: int = 1


@dataclass
class TrainResult:
    run_dir: Path
    model: Any
    config: ZooConfig
    manifest: Manifest
    timesteps: int
    wall_time: float
    cpu_time: float  # of this process during learn(): unlike wall time, other processes cannot inflate it
    interrupted: bool
    #: the signal that interrupted training (SIGINT for a second Ctrl-C), None if it ran to the end
    stop_signal: int | None = None

    @property
    def steps_per_second(self) -> float:
        return self.timesteps / max(self.wall_time, 1e-9)


def prepare(options: TrainOptions) -> tuple[Any, ZooConfig, type]:
    """Resolve the algorithm and its config; everything that can fail before any env is built."""
    spec = registry.get_algorithm(options.algo_id)
    algo_class = spec.load()
    overrides = dict(options.hyperparams)
    if options.n_timesteps is not None:
        overrides["n_timesteps"] = options.n_timesteps
    if options.n_envs is not None:
        overrides["n_envs"] = options.n_envs
    config = load_zoo_config(spec.algo_id, options.env_id, algo_class, conf_file=options.conf_file, overrides=overrides)
    return spec, config, algo_class


def build_env(config: ZooConfig, options: TrainOptions, *, n_envs: int, monitor_dir: Path | None,
              training: bool = True, seed: int | None = None, vec_normalize_path: Path | None = None) -> Any:
    return make_vec_env(
        config.env_id,
        n_envs=n_envs,
        seed=seed,
        env_kwargs=options.env_kwargs,
        vec_env=options.vec_env if training else "dummy",
        wrapper=config.env_wrapper,
        vec_env_wrapper=config.vec_env_wrapper,
        frame_stack=config.frame_stack,
        normalize=config.normalize,
        vec_normalize_path=vec_normalize_path,
        training=training,
        monitor_dir=monitor_dir,
    )


def train(options: TrainOptions) -> TrainResult:
    """Run one experiment and return where it was written and the trained model."""
    spec, config, algo_class = prepare(options)
    _check_spaces(spec, config, options)
    trained_model, trained_stats, unpickle = _trained_agent_files(options)
    run_dir = new_run_dir(options.log_folder, spec.algo_id, options.env_id)
    env = None
    try:
        model, env, manifest = _build(spec, config, algo_class, options, run_dir, trained_model, trained_stats,
                                      unpickle)
        callbacks = _callbacks(config, options, run_dir, env)
    except BaseException:
        # Nothing was learned yet: leave no half-made folder for `enjoy` to pick as the latest run.
        if env is not None:
            env.close()
        shutil.rmtree(run_dir, ignore_errors=True)
        raise

    from rlhub.common.callbacks import StopOnSignal

    stop_on_signal = StopOnSignal()
    callbacks = [stop_on_signal, *callbacks]
    model_path = run_dir / manifest.model_file
    started, cpu_started = time.perf_counter(), time.process_time()
    steps_before = model.num_timesteps
    stop_signal = None
    try:
        model.learn(config.n_timesteps, callback=callbacks, reset_num_timesteps=not options.trained_agent,
                    tb_log_name=spec.algo_id)
        stop_signal = stop_on_signal.signal_received
    except KeyboardInterrupt:
        stop_signal = signal.SIGINT  # a second Ctrl-C: still save what was learned, below
    finally:
        wall_time, cpu_time = time.perf_counter() - started, time.process_time() - cpu_started
        write_atomically(model_path, model.save)
        vec_normalize = model.get_vec_normalize_env()
        if vec_normalize is not None:
            write_atomically(run_dir / VEC_NORMALIZE_NAME, lambda path: vec_normalize.save(str(path)))
        env.close()
        trust.sign(run_dir)  # from now on rlhub unpickles these files without asking (see rlhub.trust)
    return TrainResult(run_dir, model, config, manifest, model.num_timesteps - steps_before, wall_time, cpu_time,
                       stop_signal is not None, stop_signal)


def _build(spec: Any, config: ZooConfig, algo_class: type, options: TrainOptions, run_dir: Path,
           trained_model: Path | None, trained_stats: Path | None, unpickle: bool) -> tuple[Any, Any, Manifest]:
    """The run folder's config and manifest, the training env and the agent (new or continued)."""
    (run_dir / CONFIG_NAME).write_text(config.to_yaml())

    env = build_env(config, options, n_envs=config.n_envs, monitor_dir=run_dir, seed=options.seed,
                    vec_normalize_path=trained_stats if unpickle else None)

    manifest = Manifest.for_run(
        spec, options.env_id, env_kwargs=dict(options.env_kwargs), seed=options.seed,
        n_timesteps=config.n_timesteps, vec_normalize_file=VEC_NORMALIZE_NAME if config.normalize is not None else None,
    )
    manifest.write(run_dir)

    if options.num_threads > 0:
        import torch

        torch.set_num_threads(options.num_threads)
    tensorboard_log = str(options.tensorboard_log or run_dir / "tensorboard")
    hyperparams = dict(config.hyperparams)
    if config.noise is not None:
        hyperparams["action_noise"] = make_action_noise(config.noise, env.action_space)
    try:
        if trained_model is not None:
            model = _continue_from(trained_model, trained_stats, unpickle, algo_class, env, config, options,
                                   dict(hyperparams, tensorboard_log=tensorboard_log, seed=options.seed))
        else:
            model = algo_class(config.policy, env, seed=options.seed, device=options.device,
                               verbose=options.verbose, tensorboard_log=tensorboard_log, **hyperparams)
    except BaseException:
        env.close()
        raise
    return model, env, manifest


def _trained_agent_files(options: TrainOptions) -> tuple[Path | None, Path | None, bool]:
    """``(model zip, its VecNormalize statistics, whether to unpickle them)`` for ``--trained-agent``.

    Only files ``rlhub train`` signed on this machine are unpickled (or all, with
    ``trust_remote_code``); a downloaded or copied agent is read as data (:mod:`rlhub.trust`).
    """
    if not options.trained_agent:
        return None, None, False
    model = Path(options.trained_agent)
    statistics = model.parent / VEC_NORMALIZE_NAME
    statistics = statistics if statistics.is_file() else None
    unpickle = options.trust_remote_code or trust.is_trusted(model, statistics)
    if not unpickle:  # a hostile file is refused here, before a run folder is made
        from rlhub import safe_loading

        safe_loading.read_model_zip(model, source=str(model.parent))
        if statistics is not None:
            safe_loading.read_vec_normalize(statistics, source=str(model.parent))
    return model, statistics, unpickle


def _continue_from(model_path: Path, statistics: Path | None, unpickle: bool, algo_class: type, env: Any,
                   config: ZooConfig, options: TrainOptions, overrides: dict[str, Any]) -> Any:
    """The agent of ``model_path``, attached to ``env``, with this run's hyperparameters (as SB3's
    ``load(path, env, **kwargs)``)."""
    if unpickle:
        return algo_class.load(model_path, env=env, device=options.device, **overrides)
    from rlhub import safe_loading

    if statistics is not None:  # read as numbers, never unpickled
        saved = safe_loading.read_vec_normalize(statistics, source=str(model_path.parent))
        if config.normalize is None:
            raise ConfigError(
                f"{statistics} holds VecNormalize statistics but this run's config does not normalize: set "
                "normalize in the config (or -params normalize:True) to continue this agent")
        safe_loading.restore_statistics(env, saved)
    return safe_loading.load_model(algo_class, model_path, env, config=config, device=options.device,
                                   source=str(model_path.parent), overrides=overrides)


def _check_spaces(spec: Any, config: ZooConfig, options: TrainOptions) -> None:
    """Reject an algorithm/env space mismatch before anything is written or trained."""
    from rlhub.envs import make_single_env

    probe = make_single_env(config.env_id, options.env_kwargs)
    try:
        spec.check_env(config.env_wrapper(probe) if config.env_wrapper else probe)
    finally:
        probe.close()


def _callbacks(config: ZooConfig, options: TrainOptions, run_dir: Path, env: Any) -> list[Any]:
    from stable_baselines3.common.callbacks import (
        CheckpointCallback,
        EvalCallback,
        StopTrainingOnRewardThreshold,
    )

    from rlhub.common.callbacks import RichProgressCallback, SaveVecNormalizeCallback

    callbacks: list[Any] = [callback_class(**kwargs) for callback_class, kwargs in config.callbacks]
    n_envs = env.num_envs
    if options.save_freq > 0:
        callbacks.append(CheckpointCallback(max(options.save_freq // n_envs, 1), str(run_dir), CHECKPOINT_PREFIX,
                                            save_vecnormalize=True, verbose=options.verbose))
    if options.eval_freq > 0:
        eval_env = build_env(config, options, n_envs=1, monitor_dir=None, training=False,
                             seed=None if options.seed is None else options.seed + 10_000)
        save_stats = SaveVecNormalizeCallback(run_dir / BEST_VEC_NORMALIZE_NAME) if config.normalize is not None else None
        stop = (None if options.stop_at_return is None
                else StopTrainingOnRewardThreshold(options.stop_at_return, verbose=options.verbose))
        callbacks.append(EvalCallback(eval_env, callback_on_new_best=save_stats, callback_after_eval=stop,
                                      n_eval_episodes=options.eval_episodes,
                                      eval_freq=max(options.eval_freq // n_envs, 1), log_path=str(run_dir),
                                      best_model_save_path=str(run_dir), deterministic=True,
                                      verbose=options.verbose))
    if options.progress:
        callbacks.append(RichProgressCallback(config.n_timesteps, f"{config.algo_id} on {config.env_id}"))
    return callbacks

