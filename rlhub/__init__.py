"""rlhub: a plugin-based reinforcement-learning framework over Stable-Baselines3.

Importing the package is cheap: torch and Stable-Baselines3 load only when an algorithm or an
environment is actually built, so `rlhub --help` and `rlhub algos` stay fast.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rlhub")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
