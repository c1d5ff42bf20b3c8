"""Hostile agent files, built the way an attacker would, for the tests and the attack benchmark.

Each builder takes a folder holding a legitimate packaged agent (``rlhub push-to-hub --local-dir``)
and plants one attack in it. The payloads are real: loading them with plain ``pickle`` or
``yaml.unsafe_load`` would run them, allocate gigabytes or never finish.
"""

from __future__ import annotations

import base64
import json
import pickle
import struct
import zipfile
from pathlib import Path


class Payload:
    """Unpickling this writes ``marker``: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def model_zip(folder: Path) -> Path:
    return next(path for path in folder.glob("*.zip") if path.name != "train_eval_metrics.zip")


def rewrite_zip(path: Path, **entries: bytes) -> None:
    """Replace (or add) members of the zip at ``path``."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members.update({name.replace("__", "."): content for name, content in entries.items()})
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def plant_in_data(path: Path, key: str, pickled: bytes) -> None:
    """Put a pickle into the SB3 zip's ``data`` JSON under ``key``, as SB3 stores objects."""
    with zipfile.ZipFile(path) as archive:
        data = json.loads(archive.read("data"))
    data[key] = {":type:": "<class 'abc.ABCMeta'>", ":serialized:": base64.b64encode(pickled).decode()}
    rewrite_zip(path, data=json.dumps(data).encode())


def code_payload(marker: Path) -> bytes:
    import cloudpickle

    return cloudpickle.dumps(Payload(marker))


def bytearray_bomb(size: int = 8 << 30) -> bytes:
    """61 bytes that ask for ``bytearray(size)``: gigabytes before any check could look."""
    return (b"\x80\x04\x8c\x08builtins\x94\x8c\tbytearray\x94\x93\x94"  # GLOBAL builtins.bytearray
            + b"\x8a\x08" + struct.pack("<q", size) + b"\x85\x94R\x94.")  # (size,) REDUCE STOP


def shared_reference_bomb(depth: int = 30, width: int = 10) -> bytes:
    """A list of ``width`` references to a list of ``width`` references ..., ``depth`` deep: tiny as
    a pickle (memo), ``width ** depth`` nodes to anything that walks it as a tree."""
    node: list = []
    for _ in range(depth):
        node = [node] * width
    return pickle.dumps(node, protocol=4)


def object_array_bomb(elements: int = 1 << 30) -> bytes:
    """An object-dtype numpy array whose state claims ``elements`` elements (8 GiB of pointers)."""
    import numpy as np

    template = pickle.dumps(np.array([None, None], dtype=object), protocol=2)
    # The array's shape is pickled as the tuple (2,) right after the version number: claim more.
    shape = b"K\x02\x85"
    assert template.count(shape) == 1
    return template.replace(shape, b"J" + struct.pack("<i", elements) + b"\x85")


def yaml_alias_bomb(levels: int = 12) -> str:
    """A "billion laughs" document: each level lists the previous one nine times."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    lines.append(f"policy_kwargs: {{net_arch: *a{levels - 1}}}")
    return "\n".join(lines) + "\n"


def zip_bomb_member(path: Path, name: str = "policy.pth", size: int = 1 << 30) -> None:
    """Add a member of ``size`` zero bytes, deflated (about 1 MB per GB), streamed so the test
    itself never holds it in memory."""
    with zipfile.ZipFile(path) as archive:
        members = {item: archive.read(item) for item in archive.namelist() if item != name}
    with zipfile.ZipFile(path, "w") as archive:
        for item, content in members.items():
            archive.writestr(item, content)
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as handle:
            block = bytes(1 << 20)
            for _ in range(size >> 20):
                handle.write(block)
