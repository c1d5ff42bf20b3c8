"""Learning curves from run folders: episode return against timesteps, smoothed, seeds aggregated."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlhub.run_folder import MANIFEST_NAME, Manifest


@dataclass
class RunCurve:
    algo_id: str
    env_id: str
    run_dir: Path
    timesteps: np.ndarray
    returns: np.ndarray
    #: what the values are, when not the episode return (a TensorBoard tag)
    series: str = ""

    @property
    def label(self) -> str:
        return f"{self.algo_id} {self.series}".strip()


def collect_runs(folders: Iterable[Path], algo_ids: Iterable[str] = (), env_ids: Iterable[str] = ()) -> list[RunCurve]:
    """Every run folder under ``folders`` (or the folders themselves) that has monitor files.

    A continued run's curve starts at the step count it was continued from (``initial_timesteps``
    in its manifest), so it carries on where its parent's curve ends.
    """
    from stable_baselines3.common.monitor import LoadMonitorResultsError, load_results

    algo_ids, env_ids = set(algo_ids), set(env_ids)
    runs = []
    manifests = sorted({path for folder in folders for path in Path(folder).rglob(MANIFEST_NAME)})
    for manifest_path in manifests:
        manifest = Manifest.read(manifest_path.parent)
        if algo_ids and manifest.algo_id not in algo_ids or env_ids and manifest.env_id not in env_ids:
            continue
        try:
            episodes = load_results(str(manifest_path.parent)).sort_values("t")
        except LoadMonitorResultsError:
            continue
        if len(episodes):
            timesteps = manifest.initial_timesteps + episodes["l"].cumsum().to_numpy()
            runs.append(RunCurve(manifest.algo_id, manifest.env_id, manifest_path.parent, timesteps,
                                 episodes["r"].to_numpy()))
    return runs


def collect_scalar_runs(folders: Iterable[Path], tags: Iterable[str], algo_ids: Iterable[str] = (),
                        env_ids: Iterable[str] = ()) -> list[RunCurve]:
    """A curve of each TensorBoard scalar ``tags`` (e.g. ``curiosity/intrinsic_ep_return``) of every run
    folder under ``folders`` that logged it, against the step it was logged at."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    algo_ids, env_ids, tags = set(algo_ids), set(env_ids), list(tags)
    runs = []
    for manifest_path in sorted({path for folder in folders for path in Path(folder).rglob(MANIFEST_NAME)}):
        manifest = Manifest.read(manifest_path.parent)
        if algo_ids and manifest.algo_id not in algo_ids or env_ids and manifest.env_id not in env_ids:
            continue
        for events in sorted((manifest_path.parent / "tensorboard").glob("*/")):
            accumulator = EventAccumulator(str(events), size_guidance={SCALARS: 0}).Reload()
            for tag in tags:
                if tag in accumulator.Tags()[SCALARS]:
                    points = accumulator.Scalars(tag)
                    runs.append(RunCurve(manifest.algo_id, manifest.env_id, manifest_path.parent,
                                         manifest.initial_timesteps + np.array([point.step for point in points]),
                                         np.array([point.value for point in points]), series=tag))
    return runs


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (shorter at the start, so the curve starts at the first episode)."""
    if window <= 1 or len(values) == 0:
        return values
    cumulative = np.cumsum(np.insert(values.astype(float), 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumulative[1:] - cumulative[np.arange(1, len(values) + 1) - counts]) / counts


@dataclass
class Aggregate:
    """Several runs' curves on one grid of timesteps; NaN where no run covers a point."""

    grid: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    #: how many runs cover each grid point
    count: np.ndarray


def aggregate(timesteps: list[np.ndarray], values: list[np.ndarray], points: int = 200) -> Aggregate:
    """Mean, min and max of curves on a common grid from the earliest start to the latest end.

    Runs of different lengths (or a continued run, which starts late) are not cut to the shortest:
    at each grid point only the runs whose own span covers it count.
    """
    grid = np.linspace(min(steps[0] for steps in timesteps), max(steps[-1] for steps in timesteps), points)
    covered = np.array([(grid >= steps[0]) & (grid <= steps[-1]) for steps in timesteps])
    curves = np.ma.masked_array([np.interp(grid, steps, curve) for steps, curve in zip(timesteps, values)], ~covered)
    return Aggregate(grid, *(np.ma.filled(stat.astype(float), np.nan)
                             for stat in (curves.mean(axis=0), curves.min(axis=0), curves.max(axis=0))),
                     covered.sum(axis=0))


def check_figure_path(output: str | Path) -> Path:
    """``output`` as matplotlib will write it (no extension: PNG), or a ValueError if it cannot: a
    format matplotlib does not know, a file in the way of its folder, or a folder not writable."""
    from matplotlib.backend_bases import FigureCanvasBase

    output = Path(output)
    formats = FigureCanvasBase.get_supported_filetypes()
    if not output.suffix:
        output = output.with_suffix(".png")
    if output.suffix[1:].lower() not in formats:
        raise ValueError(f"matplotlib cannot write {output.suffix!r} files; use one of "
                         f"{', '.join('.' + name for name in sorted(formats))}")
    # The file, or else the nearest folder that exists (it makes the missing ones), must be writable.
    target = next(path for path in (output.absolute(), *output.absolute().parents) if path.exists())
    if target != output.absolute() and not target.is_dir():
        raise ValueError(f"cannot write {output}: {target} is a file, not a folder")
    if not os.access(target, os.W_OK | (os.X_OK if target.is_dir() else 0)):
        raise ValueError(f"cannot write {output}: {target} is not writable")
    return output


def plot_learning_curves(runs: list[RunCurve], output: str | Path, *, window: int = 20, title: str | None = None,
                         bars: dict[str, float] | None = None, y_label: str | None = None) -> Path:
    """One panel per environment, one line per algorithm (and series: a TensorBoard tag), the mean over
    its runs with a shaded min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_env: dict[str, dict[str, list[RunCurve]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        by_env[run.env_id][run.label].append(run)
    figure, axes = plt.subplots(1, len(by_env), figsize=(6 * len(by_env), 4.2), squeeze=False)
    for axis, (env_id, by_algo) in zip(axes[0], sorted(by_env.items())):
        for algo_id, algo_runs in sorted(by_algo.items()):
            curves = aggregate([run.timesteps for run in algo_runs],
                               [smooth(run.returns, window) for run in algo_runs])
            label = f"{algo_id} ({len(algo_runs)} run{'s' if len(algo_runs) > 1 else ''})"
            (line,) = axis.plot(curves.grid, curves.mean, label=label)
            if len(algo_runs) > 1:
                axis.fill_between(curves.grid, curves.low, curves.high, color=line.get_color(), alpha=0.2)
        if bars and env_id in bars:
            axis.axhline(bars[env_id], color="grey", linestyle="--", linewidth=1, label="bar")
        axis.set_title(env_id)
        axis.set_xlabel("timesteps")
        axis.set_ylabel(f"{y_label or 'episode return'} (moving mean of {window})")
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return output
