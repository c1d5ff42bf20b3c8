"""The errors a downloaded file is refused with, and the sentence that says how to opt in."""

from __future__ import annotations

from pathlib import Path

OPT_IN = ("If you trust its author, load it with --trust-remote-code (Python: trust_remote_code=True): "
          "that unpickles it as Stable-Baselines3 does and runs any code it holds.")


class UnsafeAgentError(RuntimeError):
    """A downloaded agent needs code or objects rlhub does not load without ``trust_remote_code``."""


class ResourceLimitError(UnsafeAgentError):
    """A downloaded file is larger, or expands to more, than rlhub reads (see :mod:`.limits`)."""


def unsafe(what: str, reason: str) -> UnsafeAgentError:
    """``what`` was refused for ``reason``, with the opt-in spelled out."""
    return UnsafeAgentError(f"{what} {reason}. rlhub did not unpickle it, so none of it ran. {OPT_IN}")


def describe_file(path: str | Path, source: str = "") -> str:
    """How messages name a file: ``policy.zip from alice/ppo-CartPole-v1``."""
    return f"{Path(path).name}{f' from {source}' if source else ''}"
