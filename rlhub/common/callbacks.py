"""Callbacks rlhub adds to every training run."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback

from rlhub.run_folder import save_agent, save_statistics


class RichProgressCallback(BaseCallback):
    """A rich progress bar over the training budget.

    SB3's own bar goes through ``tqdm.rich``, which is marked experimental and warns; rich is
    used directly here. Updates are throttled to ~1% steps so the bar costs nothing measurable.
    """

    def __init__(self, total_timesteps: int, description: str = "training") -> None:
        super().__init__()
        self.total_timesteps = total_timesteps  # of this learn() call: a continued agent starts at its own count
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
            self.description, total=self.num_timesteps + self.total_timesteps, completed=self.num_timesteps, fps="-"
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
        save_statistics(self.model, self.path)
        return True


class AtomicCheckpointCallback(CheckpointCallback):
    """SB3's ``CheckpointCallback``, with its file names (which ``enjoy --load-checkpoint``, the RL Zoo
    and rlhub's ``--resume`` read), but each file written atomically and the model zip last: a crash
    or a full disk never leaves a truncated file under a checkpoint's name, and a checkpoint whose zip
    exists has its VecNormalize statistics (and replay buffer, if saved) complete.

    :param after_save: called after each checkpoint (``rlhub train`` signs the run folder there, so
        that a run killed later is resumed from files it trusts)
    """

    def __init__(self, *args: Any, after_save: Callable[[], Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.after_save = after_save

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            save_agent(self.model, Path(self._checkpoint_path(extension="zip")),
                       statistics=(Path(self._checkpoint_path("vecnormalize_", extension="pkl"))
                                   if self.save_vecnormalize else None),
                       replay_buffer=(Path(self._checkpoint_path("replay_buffer_", extension="pkl"))
                                      if self.save_replay_buffer else None))
            if self.verbose >= 2:
                print(f"Saved checkpoint {self._checkpoint_path(extension='zip')}")
            if self.after_save is not None:
                self.after_save()
        return True


class AfterEvaluation(BaseCallback):
    """Hands each evaluation of its parent ``EvalCallback`` to ``listener(index, steps, mean_return)``;
    training stops when it returns False. ``then``, another after-evaluation callback, runs first
    (SB3's EvalCallback takes one).
    """

    def __init__(self, listener: Callable[[int, int, float], bool], then: BaseCallback | None = None) -> None:
        super().__init__()
        self.listener = listener
        self.then = then
        self.n_evaluations = 0

    def _init_callback(self) -> None:
        if self.then is not None:
            self.then.parent = self.parent  # it reads the evaluation off its parent, as this one does
            self.then.init_callback(self.model)

    def _on_step(self) -> bool:
        go_on = self.then.on_step() if self.then is not None else True
        index, self.n_evaluations = self.n_evaluations, self.n_evaluations + 1
        return bool(self.listener(index, self.num_timesteps, float(self.parent.last_mean_reward))) and go_on


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
