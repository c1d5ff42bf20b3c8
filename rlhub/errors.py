"""Which exceptions are the user's to fix: the CLI prints them as one plain paragraph (exit code 2),
and batch commands (``benchmark``) gather them per row instead of stopping at the first."""

from __future__ import annotations


def user_errors() -> tuple[type[Exception], ...]:
    """The exception types that are the user's to fix (imported lazily: ``rlhub --help`` stays fast)."""
    from rlhub.config import ConfigError
    from rlhub.datasets import DatasetError
    from rlhub.envs import MissingDependencyError, UnknownEnvironmentError
    from rlhub.plugins import PluginLoadError
    from rlhub.registry import DuplicateAlgorithmError, NoSamplerError, UnknownAlgorithmError
    from rlhub.run_folder import RunFolderError
    from rlhub.spec import SpaceMismatchError

    return (ConfigError, UnknownAlgorithmError, DuplicateAlgorithmError, UnknownEnvironmentError,
            MissingDependencyError, SpaceMismatchError, RunFolderError, PluginLoadError, DatasetError, NoSamplerError)
