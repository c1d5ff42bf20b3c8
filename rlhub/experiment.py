"""One training run: build the agent from its config, learn with callbacks, write the run folder."""

from __future__ import annotations

import shutil
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rlhub import registry, trust
from rlhub.config import ConfigError, ZooConfig, constructor_parameters, load_zoo_config, make_action_noise
from rlhub.envs import make_vec_env, plays_stochastically
from rlhub.run_folder import (
    BEST_VEC_NORMALIZE_NAME,
    CHECKPOINT_PREFIX,
    CONFIG_NAME,
    MANIFEST_NAME,
    REPLAY_BUFFER_NAME,
    REWARD_MODEL_NAME,
    VEC_NORMALIZE_NAME,
    Manifest,
    RunFolderError,
    describe_space,
    load_model_file,
    new_run_dir,
    read_model_summary,
    replay_buffer_of,
    save_agent,
    statistics_of,
    storage_errors,
    write_atomically,
)
from rlhub.spec import DATASET_KINDS


@dataclass
class TrainOptions:
    """What ``rlhub train`` takes; the names and defaults follow the RL Zoo's ``train.py``."""

    #: the algorithm and environment (with ``resume``: the run's, and given only to match it)
    algo_id: str | None = None
    env_id: str | None = None
    #: the budget (with ``trained_agent`` or ``resume``: the steps to train on top of the agent's)
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
    #: checkpoint every N steps (<= 0: never); None: about every tenth of the budget
    save_freq: int | None = None
    #: checkpoints and the final save include an off-policy agent's replay buffer
    save_replay_buffer: bool = False
    tensorboard_log: str | Path | None = None
    #: a progress bar over the budget (the CLI shows one when stdout is a terminal)
    progress: bool = False
    device: str = "auto"
    trained_agent: str | Path | None = None
    #: a run folder to continue in a new run folder: from its latest model, with its algorithm, env,
    #: env kwargs and config, up to its budget (or ``n_timesteps`` more steps)
    resume: str | Path | None = None
    #: unpickle ``trained_agent`` (or the ``resume`` run's files) even if ``rlhub train`` did not write them here
    trust_remote_code: bool = False
    #: an offline algorithm's dataset: a Minari id or a dataset folder (overrides the config's ``dataset``)
    dataset: str | Path | None = None
    #: 0: silent; 1: a line per evaluation; 2: SB3's log tables too (thousands of lines on a long run)
    verbose: int = 1
    #: torch threads; small policy networks train fastest on one CPU thread (<= 0: torch's default)
    num_threads: int = 1
    #: a distributed algorithm's rollout workers and the Ray cluster they run on (its hyperparameters
    #: ``n_workers`` and ``ray_address``)
    n_workers: int | None = None
    ray_address: str | None = None
    #: called after each evaluation with (evaluation index, steps, mean return); returning False stops
    #: training (``rlhub tune`` reports to Optuna's pruner through it)
    on_evaluation: Callable[[int, int, float], bool] | None = None
    #: Ctrl-C and SIGTERM stop training and save; False leaves them to the caller (``rlhub tune``
    #: finishes its current trial first)
    handle_signals: bool = True


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
    """Resolve the algorithm, its config and the env's arguments; everything that can fail before any
    env is built."""
    from rlhub.envs import check_env_kwargs, ensure_registered

    spec = registry.get_algorithm(options.algo_id)
    if options.dataset is not None and spec.kind not in DATASET_KINDS:
        raise ConfigError(f"--dataset is for offline and imitation algorithms, and {spec.algo_id} is {spec.kind}: it "
                          "learns from its environment. Leave out --dataset, or pick an offline or imitation algorithm "
                          "(see `rlhub algos`)")
    algo_class = spec.load()
    ensure_registered(options.env_id)  # first: the config's atari section is chosen by the env's entry point
    check_env_kind(spec, options.env_id)
    overrides, origins = _overrides(options)
    config = load_zoo_config(spec.algo_id, options.env_id, algo_class, conf_file=options.conf_file,
                             overrides=overrides, origins=origins)
    check_env_kwargs(options.env_id, config.env_kwargs, config.origins.place("env_kwargs"))
    check_env_kwargs(options.env_id, options.env_kwargs, "--env-kwargs")
    return spec, config, algo_class


def check_env_kind(spec: Any, env_id: str) -> None:
    """Refuse a multi-agent algorithm on a single-agent env, or the reverse, saying what to use instead."""
    from rlhub.parallel_envs import is_multi_agent

    multi_agent_algorithm, multi_agent_env = spec.kind == "multi-agent", is_multi_agent(env_id)
    if multi_agent_algorithm and not multi_agent_env:
        raise ConfigError(f"{spec.algo_id} is a multi-agent algorithm and {env_id} a single-agent Gymnasium env. Give a "
                          "PettingZoo env as module:env_name (e.g. mpe2:simple_spread_v3), or pick a single-agent "
                          "algorithm (see `rlhub algos`)")
    if multi_agent_env and not multi_agent_algorithm:
        choices = [other.algo_id for other in registry.list_algorithms() if other.kind == "multi-agent"]
        raise ConfigError(f"{env_id} is a multi-agent PettingZoo env and {spec.algo_id} a single-agent ({spec.kind}) "
                          f"algorithm. Train it with a multi-agent algorithm: {', '.join(choices) or 'none installed'}")


def _overrides(options: TrainOptions) -> tuple[dict[str, Any], dict[str, str]]:
    """The config keys the command line sets, and the option each came from (for error messages)."""
    overrides = dict(options.hyperparams)
    origins = dict.fromkeys(overrides, "--hyperparams")
    for key, option, value in (("n_timesteps", "-n/--n-timesteps", options.n_timesteps),
                               ("n_envs", "--n-envs", options.n_envs),
                               ("n_workers", "--n-workers", options.n_workers),
                               ("ray_address", "--ray-address", options.ray_address),
                               ("dataset", "--dataset", None if options.dataset is None else str(options.dataset))):
        if value is not None:
            overrides[key], origins[key] = value, option
    return overrides, origins


def _env_kwargs(config: ZooConfig, options: TrainOptions) -> dict[str, Any]:
    """The env's keyword arguments: the config's ``env_kwargs`` under ``--env-kwargs`` (the command line
    wins, as in the RL Zoo)."""
    return {**config.env_kwargs, **options.env_kwargs}


#: What a constructor raises for arguments it cannot use: the user's to fix, reported as a ConfigError.
_REFUSED_ARGUMENTS = (ValueError, TypeError, LookupError, AssertionError)


@contextmanager
def _refusal_reported(what: str) -> Iterator[None]:
    """Report a constructor's refusal of its arguments as a ConfigError: ``what`` failed, then its error."""
    try:
        yield
    except ConfigError:
        raise
    except _REFUSED_ARGUMENTS as error:
        raise ConfigError(f"{what}. The error: {type(error).__name__}: {error}") from error


def validate_options(options: TrainOptions) -> tuple[Any, ZooConfig, type]:
    """Everything :func:`train` checks before it writes anything: :func:`prepare`, then the spaces."""
    spec, config, algo_class = prepare(options)
    check_spaces(spec, config, options)
    return spec, config, algo_class


def build_env(config: ZooConfig, options: TrainOptions, *, n_envs: int, monitor_dir: Path | None,
              training: bool = True, seed: int | None = None, vec_normalize_path: Path | None = None,
              start_index: int = 0) -> Any:
    return make_vec_env(
        config.env_id,
        n_envs=n_envs,
        seed=seed,
        env_kwargs=_env_kwargs(config, options),
        monitor_kwargs=config.monitor_kwargs,
        vec_env=options.vec_env if training else "dummy",
        wrapper=config.env_wrapper,
        vec_env_wrapper=config.vec_env_wrapper,
        frame_stack=config.frame_stack,
        normalize=config.normalize,
        vec_normalize_path=vec_normalize_path,
        training=training,
        monitor_dir=monitor_dir,
        start_index=start_index,
    )


@dataclass(frozen=True)
class EnvFactory:
    """More copies of a run's training env, made as the first was: what ``rlhub train`` gives an
    algorithm that takes ``env_factory`` (one whose workers step envs in other processes or machines).
    It holds the config, not an env, so it pickles to wherever the workers run."""

    config: ZooConfig
    options: TrainOptions
    monitor_dir: Path | None

    def __call__(self, n_envs: int, seed: int | None = None, start_index: int = 0) -> Any:
        """``n_envs`` envs, the first of rank ``start_index`` (its monitor file and seed offset)."""
        return build_env(self.config, self.options, n_envs=n_envs, monitor_dir=self.monitor_dir, seed=seed,
                         start_index=start_index)


def train(options: TrainOptions) -> TrainResult:
    """Run one experiment and return where it was written and the trained model."""
    if options.resume is not None:
        options = _resume_options(options)
    elif not (options.algo_id and options.env_id):
        raise ConfigError("give an algorithm and an environment (--algo, --env), or a run folder to continue "
                          "(--resume)")
    spec, config, algo_class = validate_options(options)
    offline_data = load_offline_data(spec, config, options)
    if spec.kind == "offline":
        config = replace(config, n_envs=1)  # the env only evaluates
    if options.trained_agent:
        _check_trained_agent(Path(options.trained_agent), spec, algo_class, config, options)
    trained_model, trained_stats, unpickle = _trained_agent_files(options)
    run_dir = new_run_dir(options.log_folder, spec.algo_id, options.env_id)
    env = None
    try:
        model, env, manifest = _build(spec, config, algo_class, options, run_dir, trained_model, trained_stats,
                                      unpickle, offline_data)
        if trained_model is not None:
            manifest = _link_to_parent(manifest, run_dir, trained_model, model.num_timesteps)
            _load_replay_buffer(model, trained_model, options)
        from rlhub.registry import training_callbacks

        callbacks = [*training_callbacks(model), *_callbacks(config, options, run_dir, env)]
    except BaseException:
        # Nothing was learned yet: leave no half-made folder for `enjoy` to pick as the latest run.
        if env is not None:
            env.close()
        shutil.rmtree(run_dir, ignore_errors=True)
        raise

    from rlhub.common.callbacks import StopOnSignal

    stop_on_signal = StopOnSignal()
    if options.handle_signals:
        callbacks = [stop_on_signal, *callbacks]
    model_path = run_dir / manifest.model_file
    started, cpu_started = time.perf_counter(), time.process_time()
    steps_before = model.num_timesteps
    stop_signal = None
    # A monitor file, TensorBoard or a save meeting a full disk ends as one StorageFullError naming the last
    # complete save; the final save is attempted in any case, and the folder signed for what it holds.
    with storage_errors(run_dir):
        try:
            model.learn(config.n_timesteps, callback=callbacks, reset_num_timesteps=not options.trained_agent,
                        tb_log_name=spec.algo_id)
            stop_signal = stop_on_signal.signal_received
        except KeyboardInterrupt:
            stop_signal = signal.SIGINT  # a second Ctrl-C: still save what was learned, below
        finally:
            wall_time, cpu_time = time.perf_counter() - started, time.process_time() - cpu_started
            try:
                save_agent(model, model_path, statistics=run_dir / VEC_NORMALIZE_NAME,
                           replay_buffer=run_dir / REPLAY_BUFFER_NAME if options.save_replay_buffer else None)
                export_learned_reward(model, run_dir)
            finally:
                env.close()
                trust.sign(run_dir)  # from now on rlhub unpickles these files without asking (see rlhub.trust)
    return TrainResult(run_dir, model, config, manifest, model.num_timesteps - steps_before, wall_time, cpu_time,
                       stop_signal is not None, stop_signal)


def _build(spec: Any, config: ZooConfig, algo_class: type, options: TrainOptions, run_dir: Path,
           trained_model: Path | None, trained_stats: Path | None, unpickle: bool,
           offline_data: Any = None) -> tuple[Any, Any, Manifest]:
    """The run folder's config and manifest, the training env and the agent (new or continued)."""
    (run_dir / CONFIG_NAME).write_text(config.to_yaml())

    env = build_env(config, options, n_envs=config.n_envs, monitor_dir=run_dir, seed=options.seed,
                    vec_normalize_path=trained_stats if unpickle else None)
    if config.reward_model is not None:
        env = _on_learned_reward(env, config)

    manifest = Manifest.for_run(
        spec, options.env_id, env_kwargs=_env_kwargs(config, options), seed=options.seed,
        n_timesteps=config.n_timesteps, vec_normalize_file=VEC_NORMALIZE_NAME if config.normalize is not None else None,
        dataset=None if offline_data is None else dataset_record(offline_data),
    )
    manifest.write(run_dir)

    if options.num_threads > 0:
        import torch

        torch.set_num_threads(options.num_threads)
    tensorboard_log = str(options.tensorboard_log or run_dir / "tensorboard")
    hyperparams = dict(config.hyperparams)
    sb3_verbose = max(options.verbose - 1, 0)  # SB3's log tables only from verbose 2
    if config.noise is not None:
        hyperparams["action_noise"] = make_action_noise(config.noise, env.action_space)
    if offline_data is not None:
        hyperparams["dataset"] = offline_data  # read once, here; the algorithm never reads the id again
    if "env_factory" in constructor_parameters(algo_class):
        hyperparams["env_factory"] = EnvFactory(config, options, run_dir)
    try:
        if trained_model is not None:
            model = _continue_from(trained_model, trained_stats, unpickle, algo_class, env, config, options,
                                   dict(hyperparams, tensorboard_log=tensorboard_log, seed=options.seed,
                                        verbose=sb3_verbose))
        else:
            with _refusal_reported(f"{spec.algo_id} could not be built on {config.env_id} with the config "
                                   f"{config.origins}; fix the hyperparameter the error names"):
                model = algo_class(config.policy, env, seed=options.seed, device=options.device,
                                   verbose=sb3_verbose, tensorboard_log=tensorboard_log, **hyperparams)
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
    statistics = statistics_of(model)
    unpickle = options.trust_remote_code or trust.is_trusted(model, statistics)
    if not unpickle:  # a hostile file is refused here, before a run folder is made
        from rlhub import safe_loading

        safe_loading.read_model_zip(model, source=str(model.parent))
        if statistics is not None:
            safe_loading.read_vec_normalize(statistics, source=str(model.parent))
    return model, statistics, unpickle


def _resume_options(options: TrainOptions) -> TrainOptions:
    """The options that continue the run folder ``options.resume`` into a new run folder (see
    :attr:`TrainOptions.resume`); its files are unpickled only if :mod:`rlhub.trust` allows it."""
    from rlhub.run_folder import algorithm_spec, latest_model, read_run_config

    parent = Path(options.resume)
    manifest = Manifest.read(parent)
    own = {"--algo": (options.algo_id, manifest.algo_id), "--env": (options.env_id, manifest.env_id)}
    clashes = [f"{option} {value}" for option, (value, run_value) in own.items() if value not in (None, run_value)]
    clashes += [option for option, value in (("--env-kwargs", options.env_kwargs), ("-conf", options.conf_file),
                                             ("-i", options.trained_agent)) if value]
    if clashes:
        raise ConfigError(f"{parent} is a run of --algo {manifest.algo_id} --env {manifest.env_id}, and --resume "
                          f"continues it with its own model, env kwargs and config: leave out {', '.join(clashes)}")
    algo_class = algorithm_spec(manifest, str(parent)).load()
    trusted = options.trust_remote_code or trust.is_trusted(parent / manifest.config_file, parent / MANIFEST_NAME)
    read_run_config(parent, manifest, algo_class, trusted=trusted)  # untrusted: refuse imports off the allow-list
    if not trusted:  # a downloaded manifest's env_kwargs choose the env's size
        from rlhub.safe_loading import check_env_cost

        check_env_cost(manifest.env_id, manifest.env_kwargs, str(parent))
    model, steps = latest_model(parent, manifest)
    n_timesteps = options.n_timesteps if options.n_timesteps is not None else (manifest.n_timesteps or 0) - steps
    if n_timesteps <= 0:
        raise RunFolderError(f"{parent} has reached its budget: {model.name} has {steps} of its "
                             f"{manifest.n_timesteps} steps. Give -n N to train it N steps more")
    return replace(options, algo_id=manifest.algo_id, env_id=manifest.env_id, env_kwargs=dict(manifest.env_kwargs),
                   conf_file=parent / manifest.config_file, trained_agent=model, n_timesteps=n_timesteps,
                   seed=manifest.seed if options.seed is None else options.seed,
                   save_replay_buffer=options.save_replay_buffer or replay_buffer_of(model) is not None)


def _check_trained_agent(path: Path, spec: Any, algo_class: type, config: ZooConfig, options: TrainOptions) -> None:
    """Refuse, before a run folder is made, a model this run cannot continue (not a model zip, another
    algorithm's agent, an agent of other spaces), saying what the model is and what was asked."""
    from stable_baselines3.common.base_class import BaseAlgorithm

    saved = read_model_summary(path)
    # wrapped as SB3 wraps a training env (images transposed), since the zip holds the wrapped spaces
    probe = BaseAlgorithm._wrap_env(build_env(config, options, n_envs=1, monitor_dir=None, training=False))
    try:
        asked = describe_space(probe.observation_space), describe_space(probe.action_space)
    finally:
        probe.close()
    problems = []
    if saved.manifest is not None and saved.manifest.algo_id != spec.algo_id:
        problems.append(f"it is an agent of {saved.manifest.algo_id}, not of {spec.algo_id}")
    elif not _policy_fits(saved.policy, algo_class):
        problems.append(f"{spec.algo_id} does not use its policy")
    if (saved.observation_space, saved.action_space) != asked:
        problems.append(f"its spaces are not those of {options.env_id}")
    if problems:
        own = (f"--algo {saved.manifest.algo_id} --env {saved.manifest.env_id}" if saved.manifest is not None
               else "the algorithm and environment it was trained with")
        raise ConfigError(f"-i {path} holds {saved}. This run asked for --algo {spec.algo_id} --env {options.env_id}, "
                          f"with observations {asked[0]} and actions {asked[1]}: {' and '.join(problems)}. "
                          f"Continue it with {own}, or leave out -i to train a new agent")


def _policy_fits(policy: str, algo_class: type) -> bool:
    """Whether ``algo_class`` uses the saved policy class ``module.Name`` (assumed when it cannot tell:
    an unknown class, or one rlhub does not import for a file it only reads)."""
    from stable_baselines3.common.policies import BasePolicy

    from rlhub.safe_loading import resolve_class

    module, _, name = policy.rpartition(".")
    saved = resolve_class(module, name, (BasePolicy,)) if module else None
    own = tuple(getattr(algo_class, "policy_aliases", {}).values())
    return saved is None or not own or issubclass(saved, own)


def _link_to_parent(manifest: Manifest, run_dir: Path, model_path: Path, initial_timesteps: int) -> Manifest:
    """The manifest of a run that continues ``model_path``: the run folder the model is in (if it is
    one), the steps the agent starts at and the step count it trains to, written to ``run_dir``."""
    parent = model_path.parent.resolve()
    manifest = replace(manifest, parent_run=str(parent) if (parent / MANIFEST_NAME).is_file() else None,
                       initial_timesteps=initial_timesteps, n_timesteps=initial_timesteps + (manifest.n_timesteps or 0))
    manifest.write(run_dir)
    return manifest


def _load_replay_buffer(model: Any, model_path: Path, options: TrainOptions) -> None:
    """Give a continued off-policy agent the replay buffer saved with it, if rlhub may unpickle that."""
    path = replay_buffer_of(model_path)
    if path is None or not hasattr(model, "load_replay_buffer"):
        return
    if not (options.trust_remote_code or trust.is_trusted(path)):
        warnings.warn(f"{path} was not loaded: a replay buffer is unpickled to load, and rlhub did not write this one "
                      "on this machine. Pass --trust-remote-code to load it", stacklevel=2)
        return
    model.load_replay_buffer(path)


def _continue_from(model_path: Path, statistics: Path | None, unpickle: bool, algo_class: type, env: Any,
                   config: ZooConfig, options: TrainOptions, overrides: dict[str, Any]) -> Any:
    """The agent of ``model_path``, attached to ``env``, with this run's hyperparameters (as SB3's
    ``load(path, env, **kwargs)``)."""
    if unpickle:  # with the saved policy_kwargs, which fit the saved weights (SB3's load refuses any others)
        overrides = {key: value for key, value in overrides.items() if key != "policy_kwargs"}
    elif statistics is not None:  # read as numbers, never unpickled
        from rlhub import safe_loading

        saved = safe_loading.read_vec_normalize(statistics, source=str(model_path.parent))
        if config.normalize is None:
            raise ConfigError(
                f"{statistics} holds VecNormalize statistics but this run's config does not normalize: set "
                "normalize in the config (or -params normalize:True) to continue this agent")
        safe_loading.restore_statistics(env, saved)
    return load_model_file(algo_class, model_path, env, unpickle=unpickle, config=config, device=options.device,
                           source=str(model_path.parent), overrides=overrides)


def _on_learned_reward(env: Any, config: ZooConfig) -> Any:
    """The training env rewarded by the config's ``reward_model`` (the Monitor below still records the
    env's own reward, so evaluations and ``ep_rew_mean`` stay the true return)."""
    from rlhub.common.learned_reward import RewardModelError, reward_model_env

    where = config.origins.place("reward_model")
    if config.normalize is not None:
        env.close()
        raise ConfigError(f"reward_model ({where}) learns on raw observations: train without normalize")
    try:
        return reward_model_env(env, config.reward_model)
    except RewardModelError as error:
        env.close()
        raise ConfigError(f"reward_model ({where}): {error}") from None


def export_learned_reward(model: Any, run_dir: Path) -> Path | None:
    """An algorithm that learned a reward (``learned_reward_model()``, e.g. AIRL) leaves it in its run
    folder as ``reward_model.pt``, for ``-params reward_model:PATH``."""
    if not hasattr(model, "learned_reward_model"):
        return None
    return write_atomically(run_dir / REWARD_MODEL_NAME, lambda path: model.learned_reward_model().save(path))


def load_offline_data(spec: Any, config: ZooConfig, options: TrainOptions) -> Any:
    """An offline or imitation algorithm's dataset (``--dataset`` or the config's ``dataset``), read into
    memory and checked against the env's spaces before any run folder is made; None for other kinds."""
    if spec.kind not in DATASET_KINDS:
        return None
    from rlhub.datasets import OfflineData, check_spaces, load_dataset

    source = config.hyperparams.get("dataset")
    if source is None:
        learns = "offline, from a dataset" if spec.kind == "offline" else "by imitation, from demonstrations"
        raise ConfigError(f"{spec.algo_id} learns {learns}: give --dataset ID_OR_PATH (a Minari dataset, "
                          f"e.g. written by `rlhub collect`) or set dataset: in the config ({config.origins.file})")
    data = source if isinstance(source, OfflineData) else load_dataset(source)
    probe = build_env(config, options, n_envs=1, monitor_dir=None, training=False)
    try:
        check_spaces(data, probe, config.env_id)
    finally:
        probe.close()
    return data


def dataset_record(data: Any) -> dict[str, Any]:
    """What the manifest records of a run's dataset."""
    returns = data.episode_returns()
    return {"id": data.dataset_id, "n_transitions": data.n_transitions, "n_episodes": data.n_episodes,
            "sha256": data.content_hash, "mean_return": float(returns.mean()) if len(returns) else 0.0}


def check_spaces(spec: Any, config: ZooConfig, options: TrainOptions) -> None:
    """Reject env arguments the env refuses, and an algorithm/env space mismatch, before anything is
    written or trained."""
    from rlhub.envs import make_single_env

    env_kwargs = _env_kwargs(config, options)
    with _refusal_reported(f"{config.env_id} could not be made with the env kwargs {env_kwargs} (--env-kwargs over "
                           "the config's env_kwargs); fix the value the error names"):
        probe = make_single_env(config.env_id, env_kwargs)
    try:
        with _refusal_reported(f"{config.origins.place('env_wrapper')}: the wrapper failed on {config.env_id}"):
            wrapped = config.env_wrapper(probe) if config.env_wrapper else probe
        spec.check_env(wrapped)
    finally:
        probe.close()


def checkpoint_every(n_timesteps: int) -> int:
    """The default checkpoint frequency: a tenth of the budget, to two significant digits
    (100_000 -> 10_000, 123_456 -> 12_000), so a killed run loses a tenth of its work at most."""
    tenth = max(n_timesteps // 10, 1)
    return round(tenth, 2 - len(str(tenth)))


def _callbacks(config: ZooConfig, options: TrainOptions, run_dir: Path, env: Any) -> list[Any]:
    from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold

    from rlhub.common.callbacks import (
        AfterEvaluation,
        AtomicCheckpointCallback,
        RichProgressCallback,
        SaveVecNormalizeCallback,
    )

    callbacks: list[Any] = [callback_class(**kwargs) for callback_class, kwargs in config.callbacks]
    n_envs = env.num_envs
    save_freq = checkpoint_every(config.n_timesteps) if options.save_freq is None else options.save_freq
    if save_freq > 0:
        # Signed at each checkpoint: a run killed later resumes from files rlhub knows it wrote.
        callbacks.append(AtomicCheckpointCallback(
            max(save_freq // n_envs, 1), str(run_dir), CHECKPOINT_PREFIX, save_replay_buffer=options.save_replay_buffer,
            save_vecnormalize=True, verbose=min(options.verbose, 1), after_save=lambda: trust.sign(run_dir)))
    if options.eval_freq > 0:
        eval_env = build_env(config, options, n_envs=1, monitor_dir=None, training=False,
                             seed=None if options.seed is None else options.seed + 10_000)
        save_stats = SaveVecNormalizeCallback(run_dir / BEST_VEC_NORMALIZE_NAME) if config.normalize is not None else None
        after_evaluation = (None if options.stop_at_return is None
                            else StopTrainingOnRewardThreshold(options.stop_at_return, verbose=min(options.verbose, 1)))
        if options.on_evaluation is not None:
            after_evaluation = AfterEvaluation(options.on_evaluation, then=after_evaluation)
        deterministic = not plays_stochastically(config.env_id)
        callbacks.append(EvalCallback(eval_env, callback_on_new_best=save_stats,
                                      callback_after_eval=after_evaluation,
                                      n_eval_episodes=options.eval_episodes,
                                      eval_freq=max(options.eval_freq // n_envs, 1), log_path=str(run_dir),
                                      best_model_save_path=str(run_dir), deterministic=deterministic,
                                      verbose=min(options.verbose, 1)))
    if options.progress:
        callbacks.append(RichProgressCallback(config.n_timesteps, f"{config.algo_id} on {config.env_id}"))
    return callbacks

