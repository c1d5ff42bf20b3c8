"""The hooks a plugin may implement.

A plugin is a module registered under the entry point group ``rlhub``; it implements any of
these hooks with the :data:`hookimpl` marker::

    from rlhub import hookimpl

    @hookimpl
    def rlhub_algorithms():
        return [AlgorithmSpec("my_algo", "my_plugin.algo:MyAlgo", action_spaces=("Discrete",))]

Hook modules must stay import-light: return specs that name classes by import path, so that
listing algorithms never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from rlhub.spec import AlgorithmSpec

PROJECT_NAME = "rlhub"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def rlhub_algorithms() -> list[AlgorithmSpec]:
    """Return the algorithms this plugin contributes.

    :return: one :class:`rlhub.spec.AlgorithmSpec` per algorithm. Each ``algo_id`` must be unique
        across all installed plugins; a duplicate is an error naming both plugins.
    """


@hookspec
def rlhub_register_envs() -> None:
    """Register the Gymnasium (or PettingZoo) environments this plugin ships.

    Called once, before any environment is made. Use ``gymnasium.register`` with an
    ``entry_point`` string so that registering imports nothing heavy.
    """


@hookspec
def rlhub_zoo_config_dirs() -> list[Path]:
    """Return directories holding ``<algo_id>.yml`` hyperparameter files in the RL Zoo's schema.

    rlhub's own ``zoo_configs`` come first; a plugin's directories are searched after them, so a
    plugin ships defaults for its algorithms without touching rlhub.
    """


@hookspec
def rlhub_class_aliases() -> dict[str, str]:
    """Return short names a zoo config may use for classes this plugin ships, mapped to import paths.

    As the RL Zoo's files write ``replay_buffer_class: HerReplayBuffer``, a plugin's
    ``{"PrioritizedReplayBuffer": "my_plugin.buffers.PrioritizedReplayBuffer"}`` lets a config write
    ``replay_buffer_class: PrioritizedReplayBuffer``. SB3's own short names take precedence.
    """


@hookspec
def rlhub_training_callbacks(model: Any) -> list[Any]:
    """Return SB3 callbacks to add to a training run of ``model`` (built, not yet learning).

    For what a plugin's class needs during any algorithm's training, e.g. a replay buffer class it
    ships that must read the algorithm's losses. Return ``[]`` for a model the plugin has nothing for.
    """


@hookspec
def rlhub_hyperparameter_samplers() -> dict[str, str]:
    """Return the search spaces ``rlhub tune`` samples this plugin's algorithms from.

    Maps an algorithm id to the import path (``"my_plugin.samplers:sample_my_algo"``) of a function
    that takes an ``optuna.Trial`` and returns the trial's hyperparameters as a zoo config section
    would write them (``{"learning_rate": 0.001, "policy_kwargs": {"net_arch": [64]}}``). Import
    paths, as for algorithms, so that listing plugins imports no optuna. An algorithm with no
    sampler cannot be tuned. The algorithm's own plugin's sampler wins over another plugin's.
    """
