"""How much rlhub reads from a downloaded file: every cap in one place, each with the environment
variable that raises it.

A cap stops a hostile file (a zip bomb, a pickle that asks for gigabytes, a YAML "billion laughs")
before it costs memory or time; a legitimate Stable-Baselines3 agent stays far below each one. The
environment is read at each call, so a cap can be raised for one command:
``RLHUB_SAFE_MAX_FILE_MB=512 rlhub enjoy --repo-id ...``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace

from rlhub.safe_loading.errors import ResourceLimitError

MiB = 1 << 20


@dataclass(frozen=True)
class Limit:
    """One cap: its value, what it bounds and the environment variable that sets it.

    :param in_mb: the value counts bytes and its variable is set in MB (fractions allowed)
    """

    value: int
    env_var: str
    what: str
    in_mb: bool = False

    def check(self, found: int, where: str) -> None:
        """Raise :class:`ResourceLimitError` if ``found`` is over the cap."""
        if found > self.value:
            raise self.exceeded(where, found)

    def exceeded(self, where: str, found: int | None = None) -> ResourceLimitError:
        """The error for ``where`` going over the cap (``found`` None: reading stopped at the cap)."""
        amount = f"more than {self.show(self.value)}" if found is None else self.show(found)
        return ResourceLimitError(
            f"{where} was refused: {self.what} is {amount}, over the limit of {self.show(self.value)} that rlhub "
            f"reads from a downloaded file. rlhub stopped reading there, so nothing from the file was loaded. If "
            f"you trust the file, raise the limit with the environment variable {self.env_var} (now "
            f"{self.setting()})."
        )

    def show(self, amount: int) -> str:
        return f"{amount / MiB:,.6g} MB" if self.in_mb else f"{amount:,}"

    def setting(self) -> str:
        """The value as its environment variable writes it."""
        return f"{self.value / MiB:.6g}" if self.in_mb else str(self.value)


@dataclass(frozen=True)
class Limits:
    """Every cap on what rlhub reads from a downloaded file, with its default."""

    file_bytes: Limit = Limit(128 * MiB, "RLHUB_SAFE_MAX_FILE_MB", "the size of one file or zip member", True)
    zip_bytes: Limit = Limit(256 * MiB, "RLHUB_SAFE_MAX_ZIP_MB", "the total size of a zip's members", True)
    zip_directory_bytes: Limit = Limit(
        1 * MiB, "RLHUB_SAFE_MAX_ZIP_DIRECTORY_MB", "the size of a zip's table of contents (central directory)", True)
    model_data_bytes: Limit = Limit(
        8 * MiB, "RLHUB_SAFE_MAX_MODEL_DATA_MB", "the size of a model zip's 'data' entry (JSON)", True)
    json_bytes: Limit = Limit(1 * MiB, "RLHUB_SAFE_MAX_JSON_MB", "the size of a JSON file", True)
    array_bytes: Limit = Limit(128 * MiB, "RLHUB_SAFE_MAX_ARRAY_MB", "the size of one array or tensor", True)
    pickle_opcodes: Limit = Limit(
        1_000_000, "RLHUB_SAFE_MAX_PICKLE_OPCODES", "the number of pickle instructions in one file")
    pickle_globals: Limit = Limit(
        10_000, "RLHUB_SAFE_MAX_PICKLE_GLOBALS", "the number of distinct classes and functions one file names")
    pickle_nodes: Limit = Limit(
        1_000_000, "RLHUB_SAFE_MAX_PICKLE_NODES",
        "the number of values in one pickled object (a value shared by several others counted for each)")
    # Configs and card front matter are a few kB; parsing is the cost (~130 bytes/ms), so keep this small.
    yaml_bytes: Limit = Limit(
        MiB // 4, "RLHUB_SAFE_MAX_YAML_MB", "the size of a YAML document (as written, and with its aliases expanded)",
        True)
    yaml_nodes: Limit = Limit(
        100_000, "RLHUB_SAFE_MAX_YAML_NODES", "the number of values in a YAML document (its aliases expanded)")
    # A dataset is read whole into memory (rlhub.datasets): its files bound what that costs.
    dataset_bytes: Limit = Limit(
        4096 * MiB, "RLHUB_SAFE_MAX_DATASET_MB", "the size of a dataset's data files (read whole into memory)", True)
    # A downloaded manifest's env_kwargs choose the environment's size (.env_probe measures its cost).
    env_cpu_seconds: Limit = Limit(
        10, "RLHUB_SAFE_MAX_ENV_SECONDS",
        "the CPU time (s) to build the environment, reset it and step it once")
    env_memory_bytes: Limit = Limit(
        2048 * MiB, "RLHUB_SAFE_MAX_ENV_MB", "the memory to build the environment, reset it and step it once", True)
    token_chars: Limit = Limit(
        4096, "RLHUB_SAFE_MAX_TOKEN_CHARS", "the length of one name, number or expression")


def limits() -> Limits:
    """The caps now: each default, unless its environment variable is set."""
    chosen = {}
    for field in fields(Limits):
        default: Limit = field.default
        text = os.environ.get(default.env_var, "").strip()
        if text:
            chosen[field.name] = replace(default, value=_parse(default, text))
    return Limits(**chosen)


def _parse(limit: Limit, text: str) -> int:
    from rlhub.config import ConfigError

    try:
        number = float(text)
    except ValueError:
        number = 0.0
    if not math.isfinite(number):
        number = 0.0
    value = int(number * MiB) if limit.in_mb else int(number)
    if not value >= 1:
        unit = "a number of MB" if limit.in_mb else "a whole number"
        raise ConfigError(f"{limit.env_var}={text!r}: expected {unit} above zero ({limit.what})")
    return value
