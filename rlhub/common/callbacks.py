"""Callbacks rlhub adds to every training run."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback


class RichProgressCallback(BaseCallback):
    """A rich progress bar over the training budget.

    SB3's own bar goes through ``tqdm.rich``, which is marked experimental and warns; rich is
    used directly here. Updates are throttled to ~1% steps so the bar costs nothing measurable.
    """

    def __init__(self, total_timesteps: int, description: str = "training") -> None:
        super().__init__()
        self.total_timesteps = total_timesteps
        self.description = description
        self._progress: Any = None
        self._task: Any = None
        self._next_update = 0

    def _on_training_start(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[fps]} steps/s"), TimeElapsedColumn(), TimeRemainingColumn(),
        )
        self._progress.start()
        self._task = self._progress.add_task(
            self.description, total=self.total_timesteps, completed=self.num_timesteps, fps="-"
        )
        self._step = max(self.total_timesteps // 100, 1)
        self._next_update = self.num_timesteps + self._step

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_update:
            self._refresh()
            self._next_update = self.num_timesteps + self._step
        return True

    def _refresh(self) -> None:
        import time

        elapsed = max(time.time_ns() - self.model.start_time, 1) / 1e9
        fps = int((self.num_timesteps - self.model._num_timesteps_at_start) / elapsed)
        self._progress.update(self._task, completed=self.num_timesteps, fps=fps)

    def _on_training_end(self) -> None:
        if self._progress is not None:
            self._refresh()
            self._progress.stop()


class SaveVecNormalizeCallback(BaseCallback):
    """Saves the training env's VecNormalize statistics; used as EvalCallback's ``callback_on_new_best``
    so that ``best_model.zip`` has the statistics it was evaluated with."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)

    def _on_step(self) -> bool:
        vec_normalize = self.model.get_vec_normalize_env()
        if vec_normalize is not None:
            vec_normalize.save(str(self.path))
        return True


class StopOnSignal(BaseCallback):
    """Ctrl-C or SIGTERM asks training to stop at the next step, so the caller saves a consistent model.

    Raising KeyboardInterrupt at an arbitrary point can leave a writer (TensorBoard's, a checkpoint
    being written) half-done and the process hanging at exit; a flag checked at each step cannot.
    A second signal raises KeyboardInterrupt, for a run that no longer reaches its next step.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        super().__init__()
        self.stop_requested = False
        #: the signal that asked to stop (for the exit status: 128 + signal, as shells report it)
        self.signal_received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.stop_requested:
            raise KeyboardInterrupt
        self.stop_requested = True
        self.signal_received = signum

    def _on_training_start(self) -> None:
        for signum in self.SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                return

    def _on_step(self) -> bool:
        return not self.stop_requested

    def _on_training_end(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
