"""Running an algorithm that learns through another one's ``learn`` (GAIL's generator, curiosity's base).

An outer algorithm (a ``BaseAlgorithm``) builds an inner one and calls its ``learn``; the caller's
callbacks must still see the outer algorithm as their model, so that an evaluation or a checkpoint
saves all of it (a discriminator, a curiosity module), and the outer one trains its own part after
each of the inner one's rollouts.
"""

from __future__ import annotations

from collections.abc import Callable

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import MaybeCallback


class AsOuterAlgorithm(BaseCallback):
    """Passed to the inner algorithm's ``learn``: runs the caller's callbacks with ``outer`` as their
    model, keeps ``outer``'s logger, step count and episode buffers the inner one's, and calls
    ``after_rollout`` after each rollout (``before_training`` once, before the first).

    :param outer: the algorithm the caller trains
    :param callback: the caller's callbacks
    :param progress_bar: as ``learn``'s
    :param after_rollout: the outer algorithm's own update
    :param before_training: run once at the start (e.g. pretraining), with the logger in place
    """

    def __init__(self, outer: BaseAlgorithm, callback: MaybeCallback, progress_bar: bool,
                 after_rollout: Callable[[], None], before_training: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.outer, self.callback, self.progress_bar = outer, callback, progress_bar
        self.after_rollout, self.before_training = after_rollout, before_training
        self.inner: BaseCallback | None = None

    def _on_training_start(self) -> None:
        outer = self.outer
        outer._logger = self.model.logger
        outer.num_timesteps = self.model.num_timesteps
        outer.ep_info_buffer = self.model.ep_info_buffer
        outer.ep_success_buffer = self.model.ep_success_buffer
        if self.before_training is not None:
            self.before_training()
        self.inner = outer._init_callback(self.callback, self.progress_bar)
        self.inner.on_training_start(self.locals, self.globals)

    def _on_rollout_start(self) -> None:
        assert self.inner is not None
        self.inner.on_rollout_start()

    def _on_step(self) -> bool:
        assert self.inner is not None
        self.outer.num_timesteps = self.model.num_timesteps
        self.inner.update_locals(self.locals)
        return self.inner.on_step()

    def _on_rollout_end(self) -> None:
        assert self.inner is not None
        self.outer._current_progress_remaining = self.model._current_progress_remaining  # its lr schedule
        self.after_rollout()
        self.inner.on_rollout_end()

    def _on_training_end(self) -> None:
        assert self.inner is not None
        self.outer.num_timesteps = self.model.num_timesteps
        self.inner.on_training_end()
