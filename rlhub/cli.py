"""The ``rlhub`` command. Heavy modules are imported inside commands so ``rlhub --help`` is fast."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from rlhub.errors import user_errors


class MultiValueOption(click.Option):
    """An option that takes every following value up to the next option, like argparse's ``nargs="+"``.

    Click has no variadic options; the RL Zoo's users type ``--env-kwargs a:1 b:2`` and
    ``-params n_steps:32 gamma:0.98``, so the values are gathered here before click parses them.
    """

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        for name in self.opts:
            option = parser._long_opt.get(name) or parser._short_opt.get(name)
            if option is None:
                continue
            original = option.process

            def process(value: Any, state: Any, original: Any = original) -> None:
                values = [value]
                while state.rargs and not (state.rargs[0].startswith("-") and len(state.rargs[0]) > 1
                                           and not _is_number(state.rargs[0])):
                    values.append(state.rargs.pop(0))
                for item in values:
                    original(item, state)

            option.process = process


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def parse_key_values(items: tuple[str, ...], what: str) -> dict[str, Any]:
    """``("gamma:0.98", "net:[64, 64]")`` as a dict, values read as YAML (never ``eval``)."""
    import yaml

    parsed: dict[str, Any] = {}
    for item in items:
        key, separator, value = item.partition(":")
        if not separator or not key:
            raise click.BadParameter(f"{item!r} is not key:value", param_hint=what)
        try:
            parsed[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed[key] = value
    return parsed


def check_device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``--device``: a device torch knows; say so when CUDA is asked for and SB3 will use the CPU."""
    if value == "auto":
        return value
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise click.BadParameter(f"{value!r} is not a device: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        click.secho(f"--device {value}: no CUDA GPU is available here, so rlhub runs on the CPU", fg="yellow",
                    err=True)
    return value


def fail(error: Exception) -> None:
    """Print an error the user can act on, without a traceback."""
    click.secho(f"Error: {error}", fg="red", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rlhub")
def main() -> None:
    """rlhub: train, evaluate and share RL agents (Stable-Baselines3 and plugins)."""


@main.command()
@click.option("--algo", "algo_id", default=None, help="Algorithm id (see `rlhub algos`).")
@click.option("--env", "env_id", default=None, help="Environment id, or module:EnvId.")
@click.option("-n", "--n-timesteps", type=int, default=None,
              help="Override the config's budget (with -i or --resume: train N steps more).")
@click.option("-f", "--log-folder", default="logs", show_default=True, type=click.Path(file_okay=False))
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Random seed (0 or more).")
@click.option("--n-envs", type=int, default=None, help="Override the config's number of environments.")
@click.option("--vec-env", type=click.Choice(["dummy", "subproc"]), default="dummy", show_default=True)
@click.option("--env-kwargs", cls=MultiValueOption, multiple=True, help="key:value ... for gym.make.")
@click.option("-params", "--hyperparams", cls=MultiValueOption, multiple=True, help="key:value ... overrides.")
@click.option("-conf", "--conf-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A zoo config file to use instead of the shipped one.")
@click.option("--eval-freq", type=int, default=25_000, show_default=True, help="Evaluate every N steps (<=0: never).")
@click.option("--eval-episodes", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--save-freq", type=int, default=None,
              help="Checkpoint every N steps (default: every tenth of the budget; <=0: never).")
@click.option("--save-replay-buffer", is_flag=True, help="Checkpoints include an off-policy agent's replay buffer.")
@click.option("-tb", "--tensorboard-log", default=None, help="TensorBoard folder (default: the run folder).")
@click.option("--progress/--no-progress", default=None,
              help="A progress bar over the budget (default: when stdout is a terminal).")
@click.option("--device", default="auto", show_default=True, callback=check_device,
              help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--num-threads", type=int, default=1, show_default=True,
              help="torch CPU threads (small networks are fastest on 1; <=0: torch's default).")
@click.option("-i", "--trained-agent", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Continue training from this model zip.")
@click.option("--resume", type=click.Path(exists=True, file_okay=False), default=None,
              help="Continue this run folder from its latest checkpoint, with its algorithm, env and config, up to "
                   "its budget; writes a new run folder.")
@click.option("--trust-remote-code", is_flag=True,
              help="Unpickle --trained-agent (or --resume's files) even if rlhub did not train it on this machine "
                   "(runs any code it holds).")
@click.option("--dataset", default=None,
              help="An offline algorithm's dataset, or an imitation algorithm's demonstrations: a Minari id (in "
                   "$MINARI_DATASETS_PATH or ~/.minari/datasets) or a dataset folder; overrides the config's dataset.")
@click.option("--n-workers", type=click.IntRange(min=1), default=None,
              help="Rollout workers of a distributed algorithm (its n_workers hyperparameter).")
@click.option("--ray-address", default=None,
              help="A Ray cluster for a distributed algorithm's workers (default: $RAY_ADDRESS, else a local "
                   "Ray instance started and stopped with the run).")
@click.option("-q", "--quiet", is_flag=True, help="No evaluation lines (the progress bar stays).")
@click.option("-v", "--verbose", is_flag=True, help="SB3's log tables too (thousands of lines on a long run).")
def train(algo_id: str | None, env_id: str | None, env_kwargs: tuple[str, ...], hyperparams: tuple[str, ...],
          quiet: bool, verbose: bool, progress: bool | None, **options: Any) -> None:
    """Train an agent with its zoo config and write a run folder (or continue one: --resume)."""
    from rlhub.envs import plays_stochastically
    from rlhub.evaluation import evaluate
    from rlhub.experiment import TrainOptions
    from rlhub.experiment import train as run_training
    from rlhub.run_folder import REWARD_MODEL_NAME, load_agent

    try:
        result = run_training(TrainOptions(
            algo_id=algo_id, env_id=env_id, env_kwargs=parse_key_values(env_kwargs, "--env-kwargs"),
            hyperparams=parse_key_values(hyperparams, "--hyperparams"), verbose=0 if quiet else 2 if verbose else 1,
            progress=sys.stdout.isatty() if progress is None else progress, **options,
        ))
    except (*user_errors(), *hub_errors()) as error:
        fail(error)
    if result.interrupted:
        click.secho(f"Interrupted: model saved to {result.run_dir}", fg="yellow")
        sys.exit(128 + int(result.stop_signal or 2))  # 130 for SIGINT, 143 for SIGTERM, as shells report
    if result.manifest.parent_run:
        click.echo(f"Continued {result.manifest.parent_run} from step {result.manifest.initial_timesteps}")
    click.echo(f"Trained {result.timesteps} steps in {result.wall_time:.1f} s "
               f"({result.steps_per_second:.0f} steps/s); run folder: {result.run_dir}")
    reward_model = result.run_dir / REWARD_MODEL_NAME
    if reward_model.is_file():
        click.echo(f"Learned reward: {reward_model} (train another agent on it: -params reward_model:{reward_model})")
    agent = load_agent(result.run_dir, device=options["device"])
    deterministic = not plays_stochastically(agent.manifest.env_id)
    evaluation = evaluate(agent.model, agent.env, n_episodes=options["eval_episodes"] or 5, deterministic=deterministic)
    agent.env.close()
    click.echo(f"Evaluation ({'deterministic' if deterministic else 'stochastic'}): mean return {evaluation.summary()}")


@main.command()
@click.option("--algo", "algo_id", required=True, help="Algorithm id (see `rlhub algos`).")
@click.option("--env", "env_id", required=True, help="Environment id, or module:EnvId.")
@click.option("-n", "--n-timesteps", type=click.IntRange(min=1), default=None,
              help="Steps per trial (default: the config's budget).")
@click.option("--n-trials", type=click.IntRange(min=0), default=10, show_default=True,
              help="Trials this process runs.")
@click.option("--max-total-trials", type=click.IntRange(min=1), default=None,
              help="Stop once the study holds N trials (complete, pruned or running), all workers together.")
@click.option("--n-jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Trials run at once (threads).")
@click.option("--timeout", type=float, default=None, help="Start no trial after S seconds.")
@click.option("--sampler", type=click.Choice(["tpe", "random", "cmaes"]), default="tpe", show_default=True)
@click.option("--pruner", type=click.Choice(["median", "halving", "none"]), default="median", show_default=True)
@click.option("--storage", default=None,
              help="An Optuna RDB URL (sqlite:///PATH, postgresql://USER@HOST/DB) or a journal file (journal:PATH) "
                   "that workers share; default: study.db in the study's folder.")
@click.option("--study-name", default=None, help="Default: ALGO_ENV. The same name resumes the study.")
@click.option("--n-startup-trials", type=click.IntRange(min=0), default=10, show_default=True,
              help="Random trials before TPE or CMA-ES model the results (the median pruner waits for min(K, 5) "
                   "complete trials).")
@click.option("--n-evaluations", type=click.IntRange(min=1), default=5, show_default=True,
              help="Evaluations per trial, reported to the pruner.")
@click.option("--eval-episodes", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("-f", "--log-folder", default="logs", show_default=True, type=click.Path(file_okay=False),
              help="The study's folder is <log folder>/tune/<study name>.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seeds the sampler; trial k trains with seed + k.")
@click.option("--n-envs", type=int, default=None, help="Override the config's number of environments.")
@click.option("--vec-env", type=click.Choice(["dummy", "subproc"]), default="dummy", show_default=True)
@click.option("--env-kwargs", cls=MultiValueOption, multiple=True, help="key:value ... for gym.make.")
@click.option("-params", "--hyperparams", cls=MultiValueOption, multiple=True,
              help="key:value ... fixed for every trial (the sampler's values win).")
@click.option("-conf", "--conf-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A zoo config file to use instead of the shipped one.")
@click.option("--dataset", default=None, help="An offline or imitation algorithm's dataset.")
@click.option("--device", default="auto", show_default=True, callback=check_device)
@click.option("--num-threads", type=int, default=1, show_default=True, help="torch CPU threads per trial.")
def tune(algo_id: str, env_id: str, n_timesteps: int | None, log_folder: str, seed: int | None, n_envs: int | None,
         vec_env: str, env_kwargs: tuple[str, ...], hyperparams: tuple[str, ...], conf_file: str | None,
         dataset: str | None, device: str, num_threads: int, eval_episodes: int, **study_options: Any) -> None:
    """Search hyperparameters with Optuna: trials train as `rlhub train` does and are pruned when they fall behind."""
    from rlhub.experiment import TrainOptions
    from rlhub.tuning import report, study

    train_options = TrainOptions(
        algo_id=algo_id, env_id=env_id, n_timesteps=n_timesteps, log_folder=log_folder, seed=seed, n_envs=n_envs,
        vec_env=vec_env, env_kwargs=parse_key_values(env_kwargs, "--env-kwargs"),
        hyperparams=parse_key_values(hyperparams, "--hyperparams"), conf_file=conf_file, dataset=dataset,
        device=device, num_threads=num_threads, eval_episodes=eval_episodes)
    options = study.TuneOptions(train=train_options, **study_options)
    click.echo(f"Study {study.study_name_of(options)}: {options.n_trials} trials of --algo {algo_id} --env {env_id}")
    try:
        result = study.tune(options, on_trial=lambda _, trial: click.echo(study.trial_line(trial)))
    except user_errors() as error:
        fail(error)
    from optuna.trial import TrialState

    counts = {state.name.lower(): result.count(state) for state in (TrialState.COMPLETE, TrialState.PRUNED,
                                                                     TrialState.FAIL)}
    click.echo(f"The study holds {len(result.study.trials)} trials: "
               f"{', '.join(f'{n} {state}' for state, n in counts.items())}; this run took {result.wall_time:.0f} s")
    written = report.write_report(result.study, result.study_dir, train_options)
    if report.completed(result.study):
        print_table(report.top_trials_table(result.study))
        best = result.study.best_trial
        command = report.train_command(best, algo_id, env_id, result.study_dir / report.BEST_CONFIG)
        click.echo(f"Best: trial {best.number}, {best.value:.1f}. Train it again: {command}")
    click.echo(f"Written: {', '.join(str(path) for path in written) or 'nothing (no trial finished)'}")
    click.echo(f"Browse the study: optuna-dashboard {result.storage_url}")
    if result.interrupted:
        click.secho("Interrupted: the study is kept; the same command resumes it", fg="yellow")
        sys.exit(130)


@main.command()
@click.option("--algo", "algo_id", default=None, help="Algorithm id of the run.")
@click.option("--env", "env_id", default=None, help="Environment id of the run.")
@click.option("-f", "--folder", default="logs", show_default=True, help="Log folder, or a run folder itself.")
@click.option("--exp-id", type=int, default=0, show_default=True, help="Experiment id (0: latest).")
@click.option("--load-best", is_flag=True, help="Load best_model.zip.")
@click.option("--load-checkpoint", type=int, default=None, help="Load the checkpoint saved at N steps.")
@click.option("-n", "--n-timesteps", type=int, default=1000, show_default=True)
@click.option("--n-episodes", type=click.IntRange(min=1), default=None, help="Stop after N episodes instead.")
@click.option("--no-render", is_flag=True, help="Do not open a window.")
@click.option("--deterministic/--stochastic", default=None, help="Default: deterministic except on Atari and MiniGrid.")
@click.option("--record-video", type=click.Path(dir_okay=False), default=None, help="Write an mp4 here.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, callback=check_device,
              help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--repo-id", default=None, help="Play the agent of this Hugging Face Hub repo (downloaded, cached).")
@click.option("--trust-remote-code", is_flag=True,
              help="Unpickle the downloaded model and statistics as SB3 does (runs any code they hold).")
def enjoy(algo_id: str | None, env_id: str | None, folder: str, exp_id: int, load_best: bool,
          load_checkpoint: int | None, n_timesteps: int, n_episodes: int | None, no_render: bool,
          deterministic: bool | None, record_video: str | None, seed: int, device: str, repo_id: str | None,
          trust_remote_code: bool) -> None:
    """Watch a trained agent play, and print each episode's return."""
    from rlhub.envs import plays_stochastically
    from rlhub.evaluation import EvaluationInterrupted, evaluate
    from rlhub.run_folder import MANIFEST_NAME, find_run_dir, load_agent

    if not (no_render or record_video or has_display()):
        # A window into nothing would fail in pygame (XDG_RUNTIME_DIR) or play in real time unseen.
        click.secho("No display ($DISPLAY and $WAYLAND_DISPLAY are unset): playing without rendering, as with "
                    "--no-render", fg="yellow", err=True)
        no_render = True
    try:
        render_mode = "rgb_array" if record_video else (None if no_render else "human")
        if repo_id:
            from rlhub.hub import load_agent as load_hub_agent

            run_dir = repo_id
            agent = load_hub_agent(repo_id, trust_remote_code=trust_remote_code, device=device,
                                   render_mode=render_mode, seed=seed)
        else:
            if (Path(folder) / MANIFEST_NAME).is_file():
                run_dir = Path(folder)
            elif algo_id and env_id:
                run_dir = find_run_dir(folder, algo_id, env_id, exp_id)
            else:
                raise click.UsageError("give --algo and --env, -f pointing at a run folder, or --repo-id")
            # Only folders rlhub train signed on this machine are unpickled, unless --trust-remote-code.
            agent = load_agent(run_dir, load_best=load_best, checkpoint=load_checkpoint, device=device,
                               render_mode=render_mode, seed=seed, trust_remote_code=trust_remote_code or None)
    except (*user_errors(), *hub_errors()) as error:
        fail(error)
    click.echo(f"{agent.manifest.algo_id} on {agent.manifest.env_id} from {run_dir}")
    if deterministic is None:
        deterministic = not plays_stochastically(agent.manifest.env_id)

    def show(index: int, episode_return: float, length: int) -> None:
        click.echo(f"episode {index}: return {episode_return:.2f}, length {length}")

    import gymnasium as gym

    interrupted = False
    try:
        result = evaluate(agent.model, agent.env, n_episodes=n_episodes,
                          n_timesteps=None if n_episodes else n_timesteps, deterministic=deterministic,
                          render=not no_render, record_video=record_video, on_episode=show)
    except EvaluationInterrupted as stop:  # Ctrl-C: still sum up the episodes played
        result, interrupted = stop.result, True
    except gym.error.DependencyNotInstalled as error:
        fail(RuntimeError(f"rendering needs a package that is missing ({error}); install it, or pass --no-render"))
    agent.env.close()
    if result.agent_returns:  # a multi-agent game: each agent's, then the summed return, last
        for agent, (mean, std) in result.agent_means().items():
            click.echo(f"{agent}: mean return {mean:.2f} +/- {std:.2f}")
        click.echo(f"mean length {sum(result.lengths) / len(result.lengths):.1f}")
        click.echo(f"mean total return {result.summary()}")
    elif result.returns:
        click.echo(f"mean return {result.summary()}; mean length {sum(result.lengths) / len(result.lengths):.1f}")
    else:
        click.echo("no episode finished" + ("" if interrupted else "; raise -n/--n-timesteps"))
    if record_video:
        click.echo(f"video: {record_video}")
    if interrupted:
        click.secho("Interrupted", fg="yellow", err=True)
        sys.exit(130)  # as shells report a SIGINT


@main.command()
@click.option("--algo", "algo_id", required=True, help="Algorithm id of the agent to play, or `random`.")
@click.option("--env", "env_id", default=None, help="Environment id (with --algo random; else the run's).")
@click.option("-f", "--folder", default="logs", show_default=True, help="Log folder, or a run folder itself.")
@click.option("--exp-id", type=int, default=0, show_default=True, help="Experiment id (0: latest).")
@click.option("--load-best", is_flag=True, help="Play best_model.zip.")
@click.option("--repo-id", default=None, help="Play the agent of this Hugging Face Hub repo.")
@click.option("--n-steps", type=click.IntRange(min=1), default=None, help="Collect N transitions.")
@click.option("--n-episodes", type=click.IntRange(min=1), default=None, help="Collect N episodes.")
@click.option("--epsilon", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Discrete actions: play a uniformly random action with this probability.")
@click.option("--action-noise", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Box actions: add Gaussian noise of this standard deviation (a fraction of the half range), clipped.")
@click.option("--deterministic/--stochastic", default=True, show_default=True)
@click.option("--dataset-id", required=True, help="Minari id of the new dataset, e.g. you/CartPole-v1/ppo-eps03-v0.")
@click.option("--env-kwargs", cls=MultiValueOption, multiple=True, help="key:value ... for gym.make (--algo random).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, callback=check_device, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--author", default=None, help="Recorded in the dataset's metadata.")
@click.option("--progress/--no-progress", default=None, help="A progress bar (default: when stdout is a terminal).")
@click.option("--trust-remote-code", is_flag=True, help="Unpickle the agent's files even if rlhub did not write them here.")
def collect(algo_id: str, env_id: str | None, folder: str, exp_id: int, load_best: bool, repo_id: str | None,
            n_steps: int | None, n_episodes: int | None, epsilon: float, action_noise: float, deterministic: bool,
            dataset_id: str, env_kwargs: tuple[str, ...], seed: int, device: str, author: str | None,
            progress: bool | None, trust_remote_code: bool) -> None:
    """Play an agent (or random actions) and write a Minari dataset for offline RL."""
    from rlhub.datasets import collect_with_agent

    if (n_steps is None) == (n_episodes is None):
        raise click.UsageError("give one of --n-steps and --n-episodes")
    show_progress = sys.stdout.isatty() if progress is None else progress
    try:
        result = collect_with_agent(
            algo_id, env_id=env_id, folder=folder, exp_id=exp_id, load_best=load_best, repo_id=repo_id,
            n_steps=n_steps, n_episodes=n_episodes, epsilon=epsilon, action_noise=action_noise,
            deterministic=deterministic, dataset_id=dataset_id, env_kwargs=parse_key_values(env_kwargs, "--env-kwargs"),
            seed=seed, device=device, author=author, progress=show_progress, trust_remote_code=trust_remote_code)
    except (*user_errors(), *hub_errors()) as error:
        fail(error)
    import numpy as np

    returns = np.asarray(result.returns)
    click.echo(f"Collected {result.n_transitions} transitions in {result.n_episodes} episodes "
               f"({result.transitions_per_second:.0f} transitions/s); mean return {returns.mean():.2f} +/- "
               f"{returns.std():.2f}")
    click.echo(f"Dataset {result.dataset_id} written to {result.path}")
    from rlhub.registry import list_algorithms
    from rlhub.spec import DATASET_KINDS

    learners = [spec.algo_id for spec in list_algorithms() if spec.kind in DATASET_KINDS]
    click.echo(f"Train on it: rlhub train --algo ALGO --env {result.env_id} --dataset {result.dataset_id}"
               f" (ALGO: an offline or imitation algorithm: {', '.join(learners) or 'none installed'})")


def has_display() -> bool:
    """Whether a window can open: on Linux only with an X11 or Wayland display (macOS and Windows always)."""
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(as_json: bool) -> None:
    """List the loaded plugins, their distributions, hooks and algorithms."""
    from dataclasses import asdict

    from rlhub.plugins import list_plugins
    from rlhub.registry import list_algorithms

    algorithms: dict[str, list[str]] = {}
    for spec in list_algorithms():
        algorithms.setdefault(spec.plugin_name, []).append(spec.algo_id)
    rows = [{**asdict(info), "algorithms": algorithms.get(info.name, [])} for info in list_plugins()]
    echo_plugin_notes()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Column, Table

    table = Table(Column("plugin", no_wrap=True), Column("distribution", no_wrap=True),
                  Column("version", no_wrap=True), Column("hooks", overflow="fold"),
                  Column("algorithms", overflow="fold"))
    for row in rows:
        table.add_row(row["name"], row["distribution"], row["version"], ", ".join(row["hooks"]),
                      ", ".join(row["algorithms"]))
    print_table(table)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def algos(as_json: bool) -> None:
    """List the registered algorithms."""
    from rlhub.registry import list_algorithms

    specs = list_algorithms()
    echo_plugin_notes()
    if as_json:
        click.echo(json.dumps([{"algo_id": s.algo_id, "plugin": s.plugin_name, "kind": s.kind,
                                "action_spaces": list(s.action_spaces), "summary": s.summary} for s in specs], indent=2))
        return
    from rich.table import Column, Table

    table = Table(Column("id", no_wrap=True), Column("plugin", no_wrap=True), Column("action spaces", overflow="fold"),
                  Column("kind", no_wrap=True), Column("summary", overflow="fold"))
    for spec in specs:
        table.add_row(spec.algo_id, spec.plugin_name, ", ".join(spec.action_spaces), spec.kind, spec.summary)
    print_table(table)


def echo_plugin_notes() -> None:
    """Say on stderr which plugins RLHUB_PLUGINS / RLHUB_BLOCK_PLUGINS skip, and names in them no plugin has."""
    from rlhub.plugins import plugin_selection

    for note in plugin_selection().notes():
        click.secho(f"Note: {note}", fg="yellow", err=True)


def print_table(table: Any) -> None:
    """Print a rich table whose no_wrap columns (ids) stay whole: in a terminal the other columns wrap
    (and fold a word too long, never cutting it); piped, where rich would assume 80 columns, the
    table is as wide as its content, one line a row."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console.width = console.measure(table, options=console.options.update_width(10_000)).maximum
    console.print(table)


def check_plot_output(ctx: click.Context, param: click.Parameter, value: str) -> Path:
    """``plot -o``: a format matplotlib writes, in a folder that can be written, checked before runs are read."""
    from rlhub.plotting import check_figure_path

    try:
        return check_figure_path(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@main.command()
@click.option("-f", "--folder", "folders", multiple=True, default=["logs"], show_default=True,
              help="Log folders or run folders (repeatable).")
@click.option("--algo", "algo_ids", multiple=True, help="Only these algorithms (repeatable).")
@click.option("--env", "env_ids", multiple=True, help="Only these environments (repeatable).")
@click.option("-o", "--output", default="learning_curves.png", show_default=True, type=click.Path(dir_okay=False),
              callback=check_plot_output, help="The figure; its extension picks the format (png, svg, pdf, ...).")
@click.option("--window", type=int, default=20, show_default=True, help="Episodes in the smoothing window.")
@click.option("--title", default=None)
@click.option("--scalar", "scalars", multiple=True,
              help="Plot this TensorBoard scalar instead of the episode return, e.g. curiosity/intrinsic_ep_return "
                   "(repeatable).")
def plot(folders: tuple[str, ...], algo_ids: tuple[str, ...], env_ids: tuple[str, ...], output: Path, window: int,
         title: str | None, scalars: tuple[str, ...]) -> None:
    """Plot learning curves (episode return, or logged scalars, vs timesteps) of run folders to an image."""
    from rlhub.plotting import collect_runs, collect_scalar_runs, plot_learning_curves

    paths = [Path(folder) for folder in folders]
    try:
        if scalars:
            runs = collect_scalar_runs(paths, scalars, algo_ids=algo_ids, env_ids=env_ids)
        else:
            runs = collect_runs(paths, algo_ids=algo_ids, env_ids=env_ids)
    except user_errors() as error:  # a damaged manifest among the folders
        fail(error)
    if not runs:
        what = f"TensorBoard scalars {', '.join(scalars)}" if scalars else "monitor files"
        fail(FileNotFoundError(f"no run folders with {what} under {', '.join(folders)}"))
    path = plot_learning_curves(runs, output, window=window, title=title, y_label="value" if scalars else None)
    click.echo(f"{len(runs)} runs plotted to {path}")


@main.command()
@click.argument("suite", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", default="benchmark", show_default=True, type=click.Path(file_okay=False),
              help="Folder for runs, results.md and plots.")
@click.option("--quick", is_flag=True, help="Run each row briefly, as a smoke test.")
@click.option("--only", "only", multiple=True, help="Only rows whose algo or env matches (repeatable).")
def benchmark(suite: str, output: str, quick: bool, only: tuple[str, ...]) -> None:
    """Run a benchmark SUITE (YAML, e.g. benchmarks/core.yml): a Markdown table and learning curves."""
    from rlhub.benchmark import load_suite, run_suite

    try:
        rows = load_suite(Path(suite))
        if only:
            rows = [row for row in rows if row.algo_id in only or row.env_id in only]
            if not rows:
                raise click.UsageError(f"no row of {suite} has the algo or env {', '.join(only)}")
        # Every row is checked before the first trains; results.md is rewritten after each row.
        report = run_suite(rows, Path(output), quick=quick, echo=click.echo)
    except user_errors() as error:
        fail(error)
    click.echo(report.markdown())
    click.echo(f"written: {report.path}")


def hub_errors() -> tuple[type[Exception], ...]:
    """Hub and safe-loading errors, the user's to fix (printed plainly, exit code 2)."""
    from rlhub.hub import HubError
    from rlhub.safe_loading import UnsafeAgentError

    return (HubError, UnsafeAgentError)


@main.command("push-to-hub")
@click.option("--algo", "algo_id", default=None, help="Algorithm id of the run.")
@click.option("--env", "env_id", default=None, help="Environment id of the run.")
@click.option("-f", "--folder", default="logs", show_default=True, help="Log folder, or a run folder itself.")
@click.option("--exp-id", type=int, default=0, show_default=True, help="Experiment id (0: latest).")
@click.option("--load-best", is_flag=True, help="Push best_model.zip.")
@click.option("--load-checkpoint", type=int, default=None, help="Push the checkpoint saved at N steps.")
@click.option("--repo-id", default=None, help="owner/name of the Hub repo (created if missing).")
@click.option("-m", "--commit-message", default=None, help="Commit message.")
@click.option("--private", is_flag=True, default=None, help="Create the repo private.")
@click.option("--local-dir", type=click.Path(file_okay=False), default=None,
              help="Only package the agent into this folder; push nothing.")
@click.option("--n-eval-episodes", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("-n", "--video-length", type=int, default=1000, show_default=True,
              help="Steps recorded to replay.mp4 (0: no video).")
@click.option("--deterministic/--stochastic", default=None, help="Default: deterministic except on Atari and MiniGrid.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, callback=check_device,
              help="auto, cpu, cuda, cuda:N or mps.")
def push_to_hub(algo_id: str | None, env_id: str | None, folder: str, exp_id: int, load_best: bool,
                load_checkpoint: int | None, repo_id: str | None, commit_message: str | None, private: bool | None,
                local_dir: str | None, n_eval_episodes: int, video_length: int, deterministic: bool | None,
                seed: int, device: str) -> None:
    """Package a trained agent (model, config, statistics, evaluation, replay, model card) and push it."""
    import time

    from rlhub import hub
    from rlhub.run_folder import MANIFEST_NAME, find_run_dir

    options = dict(n_eval_episodes=n_eval_episodes, video_length=video_length, deterministic=deterministic,
                   seed=seed, load_best=load_best, checkpoint=load_checkpoint, device=device, echo=click.echo)
    try:
        if (Path(folder) / MANIFEST_NAME).is_file():
            run_dir = Path(folder)
        elif algo_id and env_id:
            run_dir = find_run_dir(folder, algo_id, env_id, exp_id)
        else:
            raise click.UsageError("give --algo and --env, or -f pointing at a run folder")
        if local_dir is not None:
            packaged = hub.package(run_dir, local_dir, repo_id=repo_id, **options)
        elif repo_id is None:
            raise click.UsageError("give --repo-id owner/name, or --local-dir to package without pushing")
        else:
            started = time.perf_counter()
            pushed = hub.push(run_dir, repo_id, commit_message=commit_message, private=private, **options)
            packaged = pushed.packaged
    except (*user_errors(), *hub_errors()) as error:
        fail(error)
    click.echo(f"Mean return {packaged.mean_reward:.2f} +/- {packaged.std_reward:.2f} over "
               f"{packaged.n_eval_episodes} episodes")
    if local_dir is not None:
        click.echo(f"Packaged {len(packaged.files)} files ({packaged.size_bytes / 1e6:.2f} MB) in "
                   f"{packaged.seconds:.1f} s into {local_dir}")
        return
    click.echo(f"Pushed {len(packaged.files)} files ({packaged.size_bytes / 1e6:.2f} MB) to {pushed.repo_url} in "
               f"{time.perf_counter() - started:.1f} s (packaging {packaged.seconds:.1f} s, upload "
               f"{pushed.upload_seconds:.1f} s); commit {pushed.commit_url}")
    click.echo(f"Play it anywhere: rlhub enjoy --repo-id {repo_id}")


@main.command("load-from-hub")
@click.option("--repo-id", required=True, help="owner/name of the Hub repo (rlhub, RL Zoo or huggingface_sb3).")
@click.option("-f", "--folder", default="rl_trained", show_default=True, type=click.Path(file_okay=False),
              help="Log folder to download into (<folder>/<algo>/<env>_<n>/).")
@click.option("--exp-id", type=int, default=0, show_default=True, help="Experiment id (0: a new one).")
@click.option("--force", is_flag=True, help="Overwrite the run folder of --exp-id if it exists.")
@click.option("--revision", default=None, help="Branch, tag or commit (default: main).")
def load_from_hub(repo_id: str, folder: str, exp_id: int, force: bool, revision: str | None) -> None:
    """Download an agent from the Hub into a run folder that `rlhub enjoy` plays."""
    from rlhub import hub
    from rlhub.run_folder import Manifest

    try:
        run_dir = hub.pull(repo_id, folder, revision=revision, exp_id=exp_id, force=force)
    except (*user_errors(), *hub_errors()) as error:
        fail(error)
    manifest = Manifest.read(run_dir)
    click.echo(f"{manifest.algo_id} agent on {manifest.env_id} from {repo_id} saved to {run_dir}")
    click.echo(f"Play it: rlhub enjoy --algo {manifest.algo_id} --env {manifest.env_id} -f {folder}")


if __name__ == "__main__":
    main()
