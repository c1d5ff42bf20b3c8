"""Benchmark suites: train each row's algorithm on its seeds, evaluate, compare with its bar.

A suite is a YAML file::

    rows:
      - algo: ppo
        env: CartPole-v1
        timesteps: 100000
        seeds: [0, 1, 2]
        bar: 475            # mean deterministic evaluation return to reach
        min_seeds: 2        # optional: seeds that must reach the bar (default: the mean over seeds must)
        eval_episodes: 20   # optional
        eval_freq: 10000    # optional: evaluations during training, for "steps to bar"
        env_kwargs: {}      # optional
        hyperparams: {}     # optional overrides of the zoo config
        peer: a2c           # optional: the same env, seeds and budget with another algorithm
        stop_at_bar: false  # optional: stop a seed at its first evaluation at the bar (to time "steps to bar")
        label: ppo (tuned)  # optional: the row's name in the table and plot (default: the algo id)
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rlhub.config import ConfigError

QUICK_TIMESTEPS = 2_000
_ROW_KEYS = {"algo", "env", "timesteps", "seeds", "bar", "min_seeds", "eval_episodes", "eval_freq", "env_kwargs",
             "hyperparams", "peer", "stop_at_bar", "label"}


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
    label: str | None = None


@dataclass
class SeedResult:
    seed: int
    mean_return: float
    std_return: float
    steps_to_bar: int | None
    timesteps: int
    wall_time: float
    run_dir: Path


@dataclass
class RowResult:
    row: BenchmarkRow
    algo_id: str
    seeds: list[SeedResult]
    peer_of: str | None = None

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
        return self.mean >= self.row.bar

    @property
    def steps_per_second(self) -> float:
        return sum(s.timesteps for s in self.seeds) / max(sum(s.wall_time for s in self.seeds), 1e-9)

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


@dataclass
class BenchmarkReport:
    results: list[RowResult]
    path: Path
    quick: bool

    def markdown(self) -> str:
        header = ("| algo | env | timesteps | seeds | return (mean ± std) | bar | met | steps to bar | steps/s "
                  "| wall time (s) |\n|---|---|---|---|---|---|---|---|---|---|")
        lines = [header]
        for result in self.results:
            row = result.row
            if row.bar is None:
                met = "-"
            elif self.quick:
                met = "smoke only"
            else:
                met = "yes" if result.bar_met else "no"
                if row.min_seeds is not None:
                    met += f" ({result.seeds_at_bar}/{len(result.seeds)} seeds)"
            bar = "-" if row.bar is None else f"{row.bar:g}"
            lines.append(
                f"| {result.label} | {row.env_id} | {result.seeds[0].timesteps} | {len(result.seeds)} | "
                f"{result.mean:.1f} ± {result.std:.1f} | {bar} | {met} | {'-' if self.quick else result.steps_to_bar()} | "
                f"{result.steps_per_second:.0f} | {result.wall_time:.0f} |"
            )
        return "\n".join(lines)


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
            label=None if entry.get("label") is None else str(entry["label"]),
        ))
    return rows


def run_row(row: BenchmarkRow, algo_id: str, output: Path, *, quick: bool, echo: Callable[[str], Any]) -> RowResult:
    """Train and evaluate one algorithm on every seed of ``row``."""
    from rlhub.evaluation import evaluate
    from rlhub.experiment import TrainOptions, train
    from rlhub.run_folder import load_agent

    seeds = row.seeds[:1] if quick else row.seeds
    timesteps = min(row.timesteps, QUICK_TIMESTEPS) if quick else row.timesteps
    results = []
    for seed in seeds:
        echo(f"[benchmark] {algo_id} on {row.env_id}, seed {seed}, {timesteps} steps")
        options = TrainOptions(algo_id, row.env_id, n_timesteps=timesteps, log_folder=output / "runs", seed=seed,
                               env_kwargs=row.env_kwargs, hyperparams=row.hyperparams, verbose=0, device="cpu",
                               eval_freq=-1 if quick else row.eval_freq, eval_episodes=5,
                               stop_at_return=row.bar if row.stop_at_bar and not quick else None)
        started = time.perf_counter()
        trained = train(options)
        agent = load_agent(trained.run_dir, device="cpu", seed=seed + 1000)
        evaluation = evaluate(agent.model, agent.env, n_episodes=2 if quick else row.eval_episodes)
        agent.env.close()
        wall_time = time.perf_counter() - started
        results.append(SeedResult(seed, evaluation.mean, evaluation.std, _steps_to_bar(trained.run_dir, row.bar),
                                  trained.timesteps, trained.wall_time, trained.run_dir))
        echo(f"[benchmark]   return {evaluation.summary()}; {trained.steps_per_second:.0f} steps/s; "
             f"{wall_time:.0f} s")
    return RowResult(row, algo_id, results, peer_of=row.algo_id if algo_id != row.algo_id else None)


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
    """Run every row (and its peer), write ``results.md`` and one learning-curve PNG per environment."""
    from rlhub.plotting import collect_runs, plot_learning_curves

    output.mkdir(parents=True, exist_ok=True)
    results: list[RowResult] = []
    for row in rows:
        results.append(run_row(row, row.algo_id, output, quick=quick, echo=echo))
        if row.peer:
            results.append(run_row(row, row.peer, output, quick=quick, echo=echo))
    report = BenchmarkReport(results, output / "results.md", quick)
    by_env: dict[str, list[RowResult]] = {}
    for result in results:
        by_env.setdefault(result.row.env_id, []).append(result)
    figures = []
    for env_id, env_results in by_env.items():
        # Each result is one line, named as in the table (two rows of one algorithm stay apart).
        runs = [dataclasses.replace(run, algo_id=result.label)
                for result in env_results for run in collect_runs([seed.run_dir for seed in result.seeds])]
        if runs:
            bars = {env_id: env_results[0].row.bar} if env_results[0].row.bar is not None else None
            name = f"curves_{env_id.replace('/', '-').replace(':', '-')}.png"
            figures.append(plot_learning_curves(runs, output / name, title=f"{env_id} learning curves", bars=bars))
    figure_lines = "\n".join(f"![{path.stem}]({path.name})" for path in figures)
    mode = " (quick smoke run: budgets cut, bars not judged)" if quick else ""
    report.path.write_text(f"# Benchmark{mode}\n\n{report.markdown()}\n\n{figure_lines}\n")
    return report
