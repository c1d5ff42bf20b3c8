"""Learning curves from run folders: episode return against timesteps, smoothed, seeds aggregated."""

from __future__ import annotations

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


def collect_runs(folders: Iterable[Path], algo_ids: Iterable[str] = (), env_ids: Iterable[str] = ()) -> list[RunCurve]:
    """Every run folder under ``folders`` (or the folders themselves) that has monitor files."""
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
            runs.append(RunCurve(manifest.algo_id, manifest.env_id, manifest_path.parent,
                                 episodes["l"].cumsum().to_numpy(), episodes["r"].to_numpy()))
    return runs


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (shorter at the start, so the curve starts at the first episode)."""
    if window <= 1 or len(values) == 0:
        return values
    cumulative = np.cumsum(np.insert(values.astype(float), 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumulative[1:] - cumulative[np.arange(1, len(values) + 1) - counts]) / counts


def plot_learning_curves(runs: list[RunCurve], output: str | Path, *, window: int = 20, title: str | None = None,
                         bars: dict[str, float] | None = None) -> Path:
    """One panel per environment, one line per algorithm (mean over its runs, shaded min-max band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_env: dict[str, dict[str, list[RunCurve]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        by_env[run.env_id][run.algo_id].append(run)
    figure, axes = plt.subplots(1, len(by_env), figsize=(6 * len(by_env), 4.2), squeeze=False)
    for axis, (env_id, by_algo) in zip(axes[0], sorted(by_env.items())):
        for algo_id, algo_runs in sorted(by_algo.items()):
            horizon = min(run.timesteps[-1] for run in algo_runs)
            grid = np.linspace(0, horizon, 200)
            curves = np.array([np.interp(grid, run.timesteps, smooth(run.returns, window)) for run in algo_runs])
            label = f"{algo_id} ({len(algo_runs)} run{'s' if len(algo_runs) > 1 else ''})"
            (line,) = axis.plot(grid, curves.mean(axis=0), label=label)
            if len(algo_runs) > 1:
                axis.fill_between(grid, curves.min(axis=0), curves.max(axis=0), color=line.get_color(), alpha=0.2)
        if bars and env_id in bars:
            axis.axhline(bars[env_id], color="grey", linestyle="--", linewidth=1, label="bar")
        axis.set_title(env_id)
        axis.set_xlabel("timesteps")
        axis.set_ylabel(f"episode return (moving mean of {window})")
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
