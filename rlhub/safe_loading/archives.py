"""Bounded reads of downloaded files and zip members: nothing is read past its cap (:mod:`.limits`).

A zip member's header says how large it is, but the header is the attacker's to write, so a member
is refused when its declared size is over the cap *and* read in chunks that are counted, stopping
one byte past the cap. A zip's table of contents is bounded before :mod:`zipfile` parses it.
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

from rlhub.safe_loading.errors import UnsafeAgentError
from rlhub.safe_loading.limits import Limit, limits

_CHUNK = 1 << 20


def read_file_bounded(path: str | Path, limit: Limit, what: str) -> bytes:
    """The bytes of the file at ``path``, refused (:class:`ResourceLimitError`) past ``limit``."""
    with open(path, "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise UnsafeAgentError(f"{what} is not a regular file: rlhub reads only files")
        limit.check(status.st_size, what)
        return read_counted(handle, limit, what)  # the size on disk can lie too (a growing file, /proc)


def read_counted(stream: IO[bytes], limit: Limit, what: str) -> bytes:
    """All of ``stream``, read in chunks that are counted: refused one byte past ``limit``."""
    chunks, size = [], 0
    while size <= limit.value:
        chunk = stream.read(min(_CHUNK, limit.value + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit.value:
        raise limit.exceeded(what)
    return b"".join(chunks)


def read_json(path: str | Path, where: str) -> Any:
    """A downloaded JSON file (a manifest, evaluation results) as data, read within the JSON cap."""
    text = read_file_bounded(path, limits().json_bytes, where)
    return parse_json(text, where)


def parse_json(text: bytes, where: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise UnsafeAgentError(f"{where} is nested too deeply to be read as JSON") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, an integer of too many digits
        raise UnsafeAgentError(f"{where} is not valid JSON ({error})") from None


class ByteBudget:
    """Bytes read so far from one archive, against a cap on their total."""

    def __init__(self, limit: Limit, where: str) -> None:
        self.limit, self.where, self.used = limit, where, 0

    def spend(self, count: int) -> None:
        self.used += count
        self.limit.check(self.used, self.where)


def open_zip(source: str | Path | IO[bytes], where: str) -> zipfile.ZipFile:
    """``source`` opened as a zip whose table of contents is within the cap; an error if it is no zip."""
    try:
        if isinstance(source, (str, Path)):
            with open(source, "rb") as handle:
                _check_directory_size(handle, where)
        else:
            _check_directory_size(source, where)
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise UnsafeAgentError(f"{where} is not a readable zip file ({error})") from None


def _check_directory_size(handle: IO[bytes], where: str) -> None:
    # zipfile reads the whole central directory, and builds an object per entry, as it opens a
    # file: read the size it will read from the end record first, found as zipfile finds it.
    end_record = zipfile._EndRecData(handle)  # type: ignore[attr-defined]
    if end_record is None:
        raise zipfile.BadZipFile("no end of central directory record")
    limits().zip_directory_bytes.check(end_record[zipfile._ECD_SIZE], where)  # type: ignore[attr-defined]


def check_declared_sizes(archive: zipfile.ZipFile, where: str, *, total: Limit) -> None:
    """Refuse an archive whose members say, in their headers, that they hold more than ``total``."""
    total.check(sum(info.file_size for info in archive.infolist()), where)


def read_member(archive: zipfile.ZipFile, name: str, where: str, *, limit: Limit,
                budget: ByteBudget | None = None) -> bytes:
    """Member ``name`` of ``archive``, inflated in counted chunks and refused past ``limit``."""
    what = f"{name} in {where}"
    info = archive.getinfo(name)
    limit.check(info.file_size, what)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        # zipfile inflates bzip2 and LZMA without a bound on each step's output: never read them.
        raise UnsafeAgentError(f"{what} is compressed with method {info.compress_type}: rlhub reads only stored "
                               "or deflated members")
    try:
        with archive.open(info) as member:
            data = read_counted(member, limit, what)
    except UnsafeAgentError:  # over the limit (a RuntimeError, as zipfile's error for encrypted members)
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError) as error:
        raise UnsafeAgentError(f"{what} cannot be read ({error})") from None
    if budget is not None:
        budget.spend(len(data))
    return data


def tensor_file_pickles(data: bytes, where: str) -> list[bytes]:
    """The pickles of a ``torch.save`` file (itself a zip), after checking its table of contents.

    ``torch.load`` allocates each record at the size its header declares before reading it, and
    inflates compressed records in memory. ``torch.save`` writes records uncompressed, so a tensor
    file is refused if any record is compressed or if the records together declare more bytes than
    the file holds.
    """
    archive = open_zip(io.BytesIO(data), where)
    with archive:
        records = archive.infolist()
        for record in records:
            if record.compress_type != zipfile.ZIP_STORED or record.file_size != record.compress_size:
                raise UnsafeAgentError(f"{where} has a compressed record ({record.filename!r}), which torch.save "
                                       "never writes: not a tensor file")
        if sum(record.file_size for record in records) > len(data):
            raise UnsafeAgentError(f"{where} declares records larger than the file: not a tensor file")
        cap = limits().file_bytes
        return [read_member(archive, record.filename, where, limit=cap) for record in records
                if record.filename.endswith("data.pkl")]
