"""Which files rlhub made on this machine: the one trust decision every loader asks.

Stable-Baselines3 files are pickles, and unpickling runs whatever code their author put in them.
rlhub unpickles a file only when it can tell that it wrote the file itself, on this machine:

- when ``rlhub train`` finishes (interrupted runs too), and after each checkpoint it writes, it
  *signs* the run folder: an HMAC-SHA256,
  under a per-user secret key, over the SHA-256 of every file a loader may unpickle or import from
  (model zips, VecNormalize statistics, ``config.yml``) and of the manifest ``rlhub.json``;
- a file is trusted only if its folder's signature verifies and the file still has the hash it
  was signed with. Everything else -- a Hub download, a ``git clone``, a folder copied from another
  machine, an edited file, a file written after the last signature -- is read as data
  (:mod:`rlhub.safe_loading`) unless the user passes ``--trust-remote-code``.

The key never leaves this machine, so a downloaded folder cannot forge a signature, whatever its
manifest says (the scheme Jupyter uses for trusted notebooks). It is created on first use at
``$RLHUB_TRUST_KEY`` or ``$XDG_DATA_HOME/rlhub/trust.key`` (``~/.local/share/rlhub/trust.key``),
readable by its owner only. Folders that ``rlhub load-from-hub`` writes are signed with the origin
"download": that proves rlhub made the folder (so ``--force`` may replace it) but never makes its
files trusted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

SIGNATURE_NAME = "rlhub.signature"
SIGNATURE_FORMAT = 1
#: Files a signature covers: everything a loader unpickles, imports from or reads paths from.
SIGNED_PATTERNS = ("*.zip", "*.pkl", "*.yml", "*.yaml", "rlhub.json")
TRAINED = "train"
DOWNLOADED = "download"


def key_path() -> Path:
    """Where this user's signing key lives (``RLHUB_TRUST_KEY`` overrides)."""
    if os.environ.get("RLHUB_TRUST_KEY"):
        return Path(os.environ["RLHUB_TRUST_KEY"])
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "rlhub" / "trust.key"


def _key() -> bytes:
    """The signing key, created on first use. Two processes starting at once agree on one key:
    the key is written to a temporary file and linked into place, which fails if one exists."""
    path = key_path()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(scratch, path)
        except FileExistsError:
            pass
        finally:
            scratch.unlink()
    return path.read_text().strip().encode()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _mac(origin: str, files: dict[str, str]) -> str:
    message = json.dumps({"format": SIGNATURE_FORMAT, "origin": origin, "files": files}, sort_keys=True)
    return hmac.new(_key(), message.encode(), hashlib.sha256).hexdigest()


def sign(run_dir: str | Path, *, origin: str = TRAINED) -> Path:
    """Sign the files of ``run_dir`` that loaders open (see the module docstring)."""
    run_dir = Path(run_dir)
    names = sorted({path.name for pattern in SIGNED_PATTERNS for path in run_dir.glob(pattern) if path.is_file()})
    files = {name: _sha256(run_dir / name) for name in names}
    signature = {"format": SIGNATURE_FORMAT, "origin": origin, "files": files, "mac": _mac(origin, files)}
    scratch = run_dir / f".{SIGNATURE_NAME}.tmp"
    scratch.write_text(json.dumps(signature, indent=2) + "\n")
    scratch.replace(run_dir / SIGNATURE_NAME)  # atomic: a reader sees the old signature or the new one
    return run_dir / SIGNATURE_NAME


def _verified(run_dir: Path) -> tuple[str, dict[str, str]] | None:
    """``(origin, signed file hashes)`` if ``run_dir`` holds a signature made with this user's key."""
    path = run_dir / SIGNATURE_NAME
    try:
        if not path.is_file() or path.stat().st_size > 1 << 20:
            return None
        signature = json.loads(path.read_text())
        origin, files, mac = signature["origin"], signature["files"], signature["mac"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (isinstance(origin, str) and isinstance(files, dict) and isinstance(mac, str)):
        return None
    if not hmac.compare_digest(mac, _mac(origin, files)):
        return None
    return origin, files


def made_by_rlhub(run_dir: str | Path) -> bool:
    """Whether rlhub on this machine wrote ``run_dir`` (trained or downloaded into it)."""
    return _verified(Path(run_dir)) is not None


def is_trusted(*paths: str | Path | None) -> bool:
    """Whether every given file was written by ``rlhub train`` on this machine and is unchanged
    since (``None`` entries are skipped). Only then may it be unpickled without the user's opt-in."""
    for path in paths:
        if path is None:
            continue
        path = Path(path)
        verified = _verified(path.parent)
        if verified is None or verified[0] != TRAINED:
            return False
        expected = verified[1].get(path.name)
        if not path.is_file() or not isinstance(expected, str) or not hmac.compare_digest(expected, _sha256(path)):
            return False
    return True
