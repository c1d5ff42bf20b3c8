"""Benchmark suites: train each row's algorithm on its seeds, evaluate, compare with its bar.

A suite is a YAML file::

    rows:
      - algo: ppo
        env: CartPole-v1
        timesteps: 100000
        seeds: [0, 1, 2]
        bar: 475            # mean evaluation return to reach (deterministic, but sampled on Atari and MiniGrid)
        min_seeds: 2        # optional: seeds that must reach the bar (default: the mean over seeds must)
        eval_episodes: 20   # optional
        eval_freq: 10000    # optional: evaluations during training, for "steps to bar"
        env_kwargs: {}      # optional
        hyperparams: {}     # optional overrides of the zoo config
        peer: a2c           # optional: the same env, seeds and budget with another algorithm
        stop_at_bar: false  # optional: stop a seed at its first evaluation at the bar (to time "steps to bar")
        label: ppo (tuned)  # optional: the row's name in the table and plot (default: the algo id)
        bar_statistic: median  # optional: judge the bar on the seeds' median return (default: mean)
        random_baseline: true  # optional: also play uniformly random actions for eval_episodes ("random" column)
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rlhub.config import ConfigError
from rlhub.envs import plays_stochastically
from rlhub.errors import user_errors
from rlhub.evaluation import evaluate
from rlhub.experiment import TrainOptions, train, validate_options
from rlhub.run_folder import Manifest, load_agent, write_atomically

QUICK_TIMESTEPS = 2_000
_ROW_KEYS = {"algo", "env", "timesteps", "seeds", "bar", "min_seeds", "eval_episodes", "eval_freq", "env_kwargs",
             "hyperparams", "peer", "stop_at_bar", "label", "bar_statistic", "random_baseline"}


@dataclass
class BenchmarkRow:
    algo_id: str
    env_id: str
    timesteps: int
    seeds: list[int]
    bar: float | None = None
    min_seeds: int | None = None
    eval_episodes: int = 20
    eval_freq: int = -1
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    hyperparams: dict[str, Any] = field(default_factory=dict)
    peer: str | None = None
    stop_at_bar: bool = False
    bar_statistic: str = "mean"
    random_baseline: bool = False
    label: str | None = None
    number: int = 0  # its place in the suite file, for messages


@dataclass
class SeedResult:
    seed: int
    mean_return: float
    std_return: float  # over the evaluation episodes of this seed
    steps_to_bar: int | None
    timesteps: int
    train_time: float  # learning only: the measure of steps/s
    wall_time: float  # training and evaluation: what the seed cost
    run_dir: Path
    cpu_time: float = 0.0  # learning only, this process's CPU seconds: steps per CPU second

    def summary(self) -> str:
        return (f"seed {self.seed}: return {self.mean_return:.1f} (std {self.std_return:.1f} over the episodes); "
                f"{self.timesteps / max(self.train_time, 1e-9):.0f} steps/s; {self.wall_time:.0f} s")


@dataclass
class RowResult:
    row: BenchmarkRow
    algo_id: str
    seeds: list[SeedResult]
    peer_of: str | None = None
    random_return: float | None = None  # uniformly random actions' mean return (random_baseline)

    @property
    def label(self) -> str:
        """The name in the table and plot: the row's label, or the algo id (a peer's names its row)."""
        if self.peer_of:
            return f"{self.algo_id} (peer of {self.row.label or self.peer_of})"
        return self.row.label or self.algo_id

    @property
    def mean(self) -> float:
        return float(np.mean([seed.mean_return for seed in self.seeds]))

    @property
    def std(self) -> float:
        return float(np.std([seed.mean_return for seed in self.seeds]))

    @property
    def median(self) -> float:
        return float(np.median([seed.mean_return for seed in self.seeds]))

    @property
    def seeds_at_bar(self) -> int:
        if self.row.bar is None:
            return 0
        if self.row.stop_at_bar:  # the seed stopped at the bar: its final return is not the measure
            return sum(seed.steps_to_bar is not None for seed in self.seeds)
        return sum(seed.mean_return >= self.row.bar for seed in self.seeds)

    @property
    def bar_met(self) -> bool | None:
        if self.row.bar is None:
            return None
        if self.row.min_seeds is not None:
            return self.seeds_at_bar >= self.row.min_seeds
        if self.row.stop_at_bar:
            return self.seeds_at_bar == len(self.seeds)
        return (self.median if self.row.bar_statistic == "median" else self.mean) >= self.row.bar

    @property
    def data_mean(self) -> float | None:
        """An offline row's dataset: its own mean episode return, as the run folder recorded it."""
        record = Manifest.read(self.seeds[0].run_dir).dataset if self.seeds else None
        return None if record is None else record.get("mean_return")

    @property
    def steps_per_second(self) -> float:
        return sum(s.timesteps for s in self.seeds) / max(sum(s.train_time for s in self.seeds), 1e-9)

    @property
    def steps_per_cpu_second(self) -> float:
        return sum(s.timesteps for s in self.seeds) / max(sum(s.cpu_time for s in self.seeds), 1e-9)

    @property
    def wall_time(self) -> float:
        return sum(seed.wall_time for seed in self.seeds)

    def steps_to_bar(self) -> str:
        steps = [seed.steps_to_bar for seed in self.seeds]
        if self.row.bar is None or self.row.eval_freq <= 0:
            return "-"
        reached = [s for s in steps if s is not None]
        if not reached:
            return "not reached"
        per_seed = ", ".join("-" if s is None else str(s) for s in steps)
        return f"{int(statistics.median(reached))} (median of {len(reached)}/{len(steps)}; seeds: {per_seed})"

    def met(self, quick: bool) -> str:
        if self.row.bar is None:
            return "-"
        if quick:
            return "smoke only"
        met = "yes" if self.bar_met else "no"
        if self.row.min_seeds is not None:
            met += f" ({self.seeds_at_bar}/{len(self.seeds)} seeds)"
        return met

    def cells(self, quick: bool) -> dict[str, str]:
        """The row as the table shows it, column name to text: the console's row line says the same."""
        return {
            "algo": self.label, "env": self.row.env_id, "timesteps": str(self.seeds[0].timesteps),
            "seeds": str(len(self.seeds)), "return (mean ± std over seeds)": f"{self.mean:.1f} ± {self.std:.1f}",
            "median": f"{self.median:.1f}",
            "random": "-" if self.random_return is None else f"{self.random_return:.1f}",
            "data mean": "-" if self.data_mean is None else f"{self.data_mean:.1f}",
            "bar": "-" if self.row.bar is None else f"{self.row.bar:g}", "met": self.met(quick),
            "steps to bar": "-" if quick else self.steps_to_bar(), "steps/s": f"{self.steps_per_second:.0f}",
            "steps/CPU s": f"{self.steps_per_cpu_second:.0f}",
            "wall time (s)": f"{self.wall_time:.0f}",
        }

    def summary(self, quick: bool) -> str:
        return "; ".join(f"{name} {value}" for name, value in self.cells(quick).items())


@dataclass
class BenchmarkReport:
    results: list[RowResult]
    path: Path
    quick: bool

    def markdown(self) -> str:
        rows = [result.cells(self.quick) for result in self.results]
        if not rows:
            return "No row has run."
        lines = [f"| {' | '.join(rows[0])} |", f"|{'---|' * len(rows[0])}"]
        return "\n".join(lines + [f"| {' | '.join(row.values())} |" for row in rows])

    def write(self, figures: Sequence[Path] = ()) -> Path:
        """Write ``results.md`` whole or not at all (a crash leaves the previous one)."""
        mode = " (quick smoke run: budgets cut, bars not judged)" if self.quick else ""
        figure_lines = "\n".join(f"![{path.stem}]({path.name})" for path in figures)
        text = f"# Benchmark{mode}\n\n{self.markdown()}\n\n{figure_lines}\n"
        return write_atomically(self.path, lambda path: path.write_text(text))


def load_suite(path: Path) -> list[BenchmarkRow]:
    """Read and validate a suite file."""
    try:
        document = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
        raise ConfigError(f"{path} must hold a mapping with a list under 'rows'")
    rows = []
    for index, entry in enumerate(document["rows"], start=1):
        where = f"{path}, row {index}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: a row is a mapping, got {entry!r}")
        unknown = set(entry) - _ROW_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_ROW_KEYS))}")
        missing = {"algo", "env", "timesteps"} - set(entry)
        if missing:
            raise ConfigError(f"{where}: missing {', '.join(sorted(missing))}")
        seeds = entry.get("seeds", [0])
        rows.append(BenchmarkRow(
            algo_id=str(entry["algo"]), env_id=str(entry["env"]), timesteps=int(float(entry["timesteps"])),
            seeds=[int(seed) for seed in (seeds if isinstance(seeds, list) else [seeds])],
            bar=None if entry.get("bar") is None else float(entry["bar"]), min_seeds=entry.get("min_seeds"),
            eval_episodes=int(entry.get("eval_episodes", 20)), eval_freq=int(float(entry.get("eval_freq", -1))),
            env_kwargs=dict(entry.get("env_kwargs") or {}), hyperparams=dict(entry.get("hyperparams") or {}),
            peer=entry.get("peer"), stop_at_bar=bool(entry.get("stop_at_bar", False)),
            bar_statistic=_bar_statistic(entry.get("bar_statistic", "mean"), where),
            random_baseline=bool(entry.get("random_baseline", False)),
            label=None if entry.get("label") is None else str(entry["label"]), number=index,
        ))
    return rows


def _bar_statistic(value: Any, where: str) -> str:
    if value not in ("mean", "median"):
        raise ConfigError(f"{where}: bar_statistic must be mean or median, got {value!r}")
    return str(value)


def train_options(row: BenchmarkRow, algo_id: str, seed: int, output: Path, *, quick: bool) -> TrainOptions:
    """How ``algo_id`` trains on ``row`` with ``seed``: what :func:`run_row` runs and :func:`validate` checks."""
    return TrainOptions(algo_id, row.env_id, n_timesteps=min(row.timesteps, QUICK_TIMESTEPS) if quick else row.timesteps,
                        log_folder=output / "runs", seed=seed, env_kwargs=row.env_kwargs, hyperparams=row.hyperparams,
                        verbose=0, device="cpu", eval_freq=-1 if quick else row.eval_freq, eval_episodes=5, save_freq=-1,
                        stop_at_return=row.bar if row.stop_at_bar and not quick else None)


def validate(rows: list[BenchmarkRow], output: Path, *, quick: bool) -> None:
    """Check every row (and peer) as training would, before any trains: the algorithm is registered,
    its config loads with the row's overrides, the environment exists and its spaces fit. All the
    problems are raised at once, in one :class:`ConfigError`."""
    problems = []
    for row in rows:
        for algo_id in filter(None, (row.algo_id, row.peer)):
            options = train_options(row, algo_id, row.seeds[0], output, quick=quick)
            try:
                validate_options(options)
            except user_errors() as error:
                problems.append(f"row {row.number} ({algo_id} on {row.env_id}): {error}")
    if problems:
        raise ConfigError(f"{len(problems)} benchmark row(s) cannot run, so none was trained:\n" + "\n".join(problems))


def run_row(row: BenchmarkRow, algo_id: str, output: Path, *, quick: bool, echo: Callable[[str], Any]) -> RowResult:
    """Train and evaluate one algorithm on every seed of ``row``."""
    results = []
    for seed in row.seeds[:1] if quick else row.seeds:
        options = train_options(row, algo_id, seed, output, quick=quick)
        echo(f"[benchmark] {algo_id} on {row.env_id}, seed {seed}, {options.n_timesteps} steps")
        started = time.perf_counter()
        trained = train(options)
        agent = load_agent(trained.run_dir, device="cpu", seed=seed + 1000)
        evaluation = evaluate(agent.model, agent.env, n_episodes=2 if quick else row.eval_episodes,
                              deterministic=not plays_stochastically(row.env_id))
        agent.env.close()
        results.append(SeedResult(seed, evaluation.mean, evaluation.std, _steps_to_bar(trained.run_dir, row.bar),
                                  trained.timesteps, trained.wall_time, time.perf_counter() - started,
                                  trained.run_dir, trained.cpu_time))
        echo(f"[benchmark]   {results[-1].summary()}")
    peer_of = row.algo_id if algo_id != row.algo_id else None
    random_return = None
    if row.random_baseline and peer_of is None:
        random_return = random_policy_return(row, 2 if quick else row.eval_episodes, seed=row.seeds[0] + 1000)
        echo(f"[benchmark]   random actions: return {random_return:.1f}")
    return RowResult(row, algo_id, results, peer_of=peer_of, random_return=random_return)


class _RandomAgent:
    """Uniformly random actions through ``predict``, so :func:`evaluate` plays them as any agent's."""

    def __init__(self, action_space: Any, seed: int) -> None:
        self.action_space = action_space
        self.action_space.seed(seed)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[Any, Any]:
        return np.array([self.action_space.sample()]), state


def random_policy_return(row: BenchmarkRow, episodes: int, seed: int) -> float:
    """The mean return of uniformly random actions on ``row``'s env (the agents' summed return in a
    multi-agent game), over ``episodes`` episodes."""
    from rlhub.envs import make_vec_env

    env = make_vec_env(row.env_id, n_envs=1, seed=seed, env_kwargs=row.env_kwargs, training=False)
    try:
        return evaluate(_RandomAgent(env.action_space, seed), env, n_episodes=episodes).mean
    finally:
        env.close()


def _steps_to_bar(run_dir: Path, bar: float | None) -> int | None:
    evaluations = run_dir / "evaluations.npz"
    if bar is None or not evaluations.is_file():
        return None
    data = np.load(evaluations)
    for timestep, returns in zip(data["timesteps"], data["results"]):
        if np.mean(returns) >= bar:
            return int(timestep)
    return None


def run_suite(rows: list[BenchmarkRow], output: Path, *, quick: bool = False,
              echo: Callable[[str], Any] = print) -> BenchmarkReport:
    """Check every row, then run each (and its peer), rewriting ``results.md`` after each so a late
    failure keeps the rows done; then one learning-curve PNG per environment."""
    validate(rows, output, quick=quick)
    output.mkdir(parents=True, exist_ok=True)
    report = BenchmarkReport([], output / "results.md", quick)
    for row in rows:
        for algo_id in filter(None, (row.algo_id, row.peer)):
            result = run_row(row, algo_id, output, quick=quick, echo=echo)
            report.results.append(result)
            echo(f"[benchmark] {result.summary(quick)}")
            report.write()
    report.write(_plot(report.results, output))
    return report


def _plot(results: list[RowResult], output: Path) -> list[Path]:
    """One learning-curve figure per environment; each result is one line, named as in the table."""
    from rlhub.plotting import collect_runs, plot_learning_curves

    by_env: dict[str, list[RowResult]] = {}
    for result in results:
        by_env.setdefault(result.row.env_id, []).append(result)
    figures = []
    for env_id, env_results in by_env.items():
        # Named by label, two rows of one algorithm stay apart.
        runs = [dataclasses.replace(run, algo_id=result.label)
                for result in env_results for run in collect_runs([seed.run_dir for seed in result.seeds])]
        if runs:
            bars = {env_id: env_results[0].row.bar} if env_results[0].row.bar is not None else None
            name = f"curves_{env_id.replace('/', '-').replace(':', '-')}.png"
            figures.append(plot_learning_curves(runs, output / name, title=f"{env_id} learning curves", bars=bars))
    return figures
