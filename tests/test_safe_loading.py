"""rlhub.safe_loading: downloaded files are read as bounded data and import only allow-listed classes.

One test per finding of the review of the restricted reader, each building its hostile file here
(raw pickle opcodes, a zip whose header lies, a YAML "billion laughs", ...) and checking that it
is refused with a clear error, fast and without allocating what it asks for; and the legitimate
files of a real (short) training run still load.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import time
import tracemalloc
import weakref
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hostile_files import zip_bomb_member
from stable_baselines3 import PPO

from rlhub import hub
from rlhub.config import ConfigError, parse_expression, resolve_section
from rlhub.safe_loading import (
    Limit,
    Limits,
    Placeholder,
    ResourceLimitError,
    UnsafeAgentError,
    audit,
    check_config_section,
    is_safe_env_module,
    limits,
    load_config,
    load_model,
    load_yaml_text,
    materialize,
    read_json,
    read_model_zip,
    read_vec_normalize,
    read_yaml,
    resolve_class,
    restore_statistics,
    restricted_loads,
    safe_import,
)
from rlhub.safe_loading.archives import read_member
from rlhub.safe_loading.imports import policy_bases
from rlhub.safe_loading.pickles import _SAFE_GLOBALS

#: Rejections must be fast; CPU time, so that a busy machine cannot fail the test.
FAST = 5.0


def cpu_time(function, *args, **kwargs):
    """``(what function raised or returned, CPU seconds it took)``."""
    started = time.process_time()
    try:
        result = function(*args, **kwargs)
    except Exception as error:  # noqa: BLE001  # the tests check which error
        result = error
    return result, time.process_time() - started


def global_opcode(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


@pytest.fixture
def model_zip(ppo_cartpole_package, tmp_path):
    """A copy of the packaged model zip, to plant attacks in."""
    path = tmp_path / "ppo-CartPole-v1.zip"
    path.write_bytes((ppo_cartpole_package / "ppo-CartPole-v1.zip").read_bytes())
    return path


def zip_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def plant_in_data(path: Path, key: str, pickled: bytes) -> None:
    """Store ``pickled`` under ``key`` of the zip's ``data`` JSON, as SB3 stores objects."""
    import base64

    members = zip_members(path)
    data = json.loads(members["data"])
    data[key] = {":type:": "<class 'abc.ABCMeta'>", ":serialized:": base64.b64encode(pickled).decode()}
    write_zip(path, {**members, "data": json.dumps(data).encode()})


# Legitimate files --------------------------------------------------------------------------------


def test_a_legitimate_agent_still_loads(ppo_cartpole_package):
    agent, seconds = cpu_time(hub.load, ppo_cartpole_package, device="cpu")
    assert isinstance(agent, PPO), agent
    assert seconds < 30


def test_legitimate_vec_normalize_statistics_are_read(tmp_path):
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=2), gamma=0.9)
    env.reset()
    for _ in range(5):
        env.step(np.zeros((2, 1), dtype=np.float32))
    env.save(str(tmp_path / "vec_normalize.pkl"))
    stats = read_vec_normalize(tmp_path / "vec_normalize.pkl")
    np.testing.assert_allclose(stats["obs_rms"]["mean"], env.obs_rms.mean)
    assert stats["gamma"] == 0.9 and stats["ret_rms"]["count"] == env.ret_rms.count

    fresh = VecNormalize(make_vec_env("Pendulum-v1", n_envs=2))
    restore_statistics(fresh, stats)  # to continue training: the statistics and settings, as VecNormalize.load
    np.testing.assert_allclose(fresh.obs_rms.var, env.obs_rms.var)
    assert fresh.gamma == 0.9 and fresh.training


# (a) An allocating callable in the allow-list ----------------------------------------------------


def test_a_allocating_callables_are_not_in_the_allow_list(model_zip):
    assert all(callable_ not in (bytearray, bytes, np.empty, np.zeros, np.ones) for callable_ in _SAFE_GLOBALS.values())
    # GLOBAL builtins.bytearray, (1 << 28,), REDUCE: a few bytes asking for 256 MB
    bomb = b"\x80\x02" + global_opcode("builtins", "bytearray") + b"J" + struct.pack("<i", 1 << 28) + b"\x85R."
    loaded, seconds = cpu_time(restricted_loads, bomb)
    assert isinstance(loaded, Placeholder) and seconds < 1  # recorded, never called
    assert audit(loaded) == ["call builtins.bytearray(268435456)"]

    plant_in_data(model_zip, "observation_space", bomb)
    with pytest.raises(UnsafeAgentError, match="would call builtins.bytearray"):
        read_model_zip(model_zip)


# (b) Shared references expand exponentially -------------------------------------------------------


def shared_reference_pickle(depth: int, width: int = 10) -> bytes:
    node: list = []
    for _ in range(depth):
        node = [node] * width
    return pickle.dumps(node, protocol=4)


def test_b_materialize_is_memoised_and_bounds_the_expanded_size(model_zip):
    small = materialize(restricted_loads(shared_reference_pickle(3)))
    assert small[0] is small[1]  # shared values stay shared: converted once

    loaded = restricted_loads(shared_reference_pickle(7))  # 10 ** 7 nodes as a tree, 8 as a graph
    problems, audit_seconds = cpu_time(audit, loaded)
    assert problems == [] and audit_seconds < FAST
    error, seconds = cpu_time(materialize, loaded, where="policy_kwargs")
    assert isinstance(error, ResourceLimitError) and seconds < FAST
    assert "policy_kwargs" in str(error) and "RLHUB_SAFE_MAX_PICKLE_NODES" in str(error)

    # A large string shared many times is counted in bytes, so printing the value cannot blow up.
    text = "x" * (1 << 20)
    with pytest.raises(ResourceLimitError, match="RLHUB_SAFE_MAX_FILE_MB"):
        materialize(restricted_loads(pickle.dumps([text] * 200, protocol=4)))

    plant_in_data(model_zip, "learning_rate", shared_reference_pickle(30))
    from stable_baselines3.common.env_util import make_vec_env

    with pytest.raises(ResourceLimitError, match="learning_rate"):
        load_model(PPO, model_zip, make_vec_env("CartPole-v1"), device="cpu")


def test_b_keys_that_hash_slowly_or_collide_are_refused():
    # A dict keyed by a tuple of 10 references to a tuple of 10 ..., 30 deep: hashing it walks the
    # whole tree (10 ** 30). Written by hand: building it in Python would hash it here.
    opcodes = [b"\x80\x04}\x94", b")\x94" + b"0"]  # EMPTY_DICT MEMOIZE, EMPTY_TUPLE MEMOIZE POP
    opcodes += [b"(" + (b"h" + bytes([level])) * 10 + b"t\x94" + b"0" for level in range(1, 31)]  # MARK GETs TUPLE
    opcodes.append(b"h" + bytes([31]) + b"K\x01s.")  # GET the last tuple, SETITEM it to 1 in the dict
    error, seconds = cpu_time(restricted_loads, b"".join(opcodes))
    assert isinstance(error, pickle.UnpicklingError) and "of type tuple" in str(error) and seconds < FAST
    # Python hashes ints modulo 2**61 - 1: any number of multiples of it collide.
    colliding = {k * ((1 << 61) - 1): None for k in range(1, 3)}
    with pytest.raises(pickle.UnpicklingError, match="of type int"):
        restricted_loads(pickle.dumps(colliding, protocol=4))
    # SETITEM with a slice key on a list would double it: L[0:0] = L
    doubling = (b"\x80\x02]q\x00K\x01a" + global_opcode("builtins", "slice") + b"K\x00K\x00\x86R" + b"h\x00s.")
    with pytest.raises(pickle.UnpicklingError, match="cannot set items of a list"):
        restricted_loads(doubling)


# (c) YAML alias bomb -------------------------------------------------------------------------------


def billion_laughs(levels: int = 12) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]" for level in range(1, levels)]
    return "\n".join(lines) + f"\npolicy_kwargs: {{net_arch: *a{levels - 1}}}\n"


def test_c_a_yaml_alias_bomb_is_refused_before_it_is_built(ppo_cartpole_package, tmp_path):
    config = tmp_path / "config.yml"
    config.write_text(billion_laughs() + (ppo_cartpole_package / "config.yml").read_text())
    error, seconds = cpu_time(load_config, config, "ppo", "CartPole-v1", PPO)
    assert isinstance(error, ResourceLimitError) and seconds < FAST, error
    assert "config.yml" in str(error) and "RLHUB_SAFE_MAX_YAML_NODES" in str(error)

    with pytest.raises(UnsafeAgentError, match="refers to itself"):
        load_yaml_text("a: &a [1, *a]\n", "config.yml")
    config.write_text("x: " + "y" * (2 << 20) + "\n")
    with pytest.raises(ResourceLimitError, match="RLHUB_SAFE_MAX_YAML_MB"):
        read_yaml(config)
    # Anchors and merge keys of ordinary size read as before.
    assert load_yaml_text("base: &base {n_envs: 8}\nCartPole-v1: {<<: *base, n_steps: 32}\n", "config.yml") == {
        "base": {"n_envs": 8}, "CartPole-v1": {"n_envs": 8, "n_steps": 32}}


# (d) Zip members inflated in memory ----------------------------------------------------------------


def test_d_a_zip_bomb_member_is_refused_by_its_declared_size(model_zip, monkeypatch):
    monkeypatch.setenv("RLHUB_SAFE_MAX_FILE_MB", "4")
    zip_bomb_member(model_zip, "policy.pth", 64 << 20)
    tracemalloc.start()
    try:
        error, seconds = cpu_time(read_model_zip, model_zip)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(error, ResourceLimitError) and seconds < FAST, error
    assert "policy.pth in ppo-CartPole-v1.zip" in str(error) and "RLHUB_SAFE_MAX_FILE_MB (now 4)" in str(error)
    assert peak < 16 << 20


def test_d_a_member_is_counted_as_it_is_read_whatever_its_header_says():
    class LyingArchive:
        """A member whose header says 10 bytes and which streams 3 MB."""

        def getinfo(self, name):
            info = zipfile.ZipInfo(name)
            info.file_size = 10
            return info

        def open(self, info):
            return io.BytesIO(bytes(3 << 20))

    cap = Limit(1 << 20, "RLHUB_SAFE_MAX_FILE_MB", "the size of one file or zip member", in_mb=True)
    with pytest.raises(ResourceLimitError, match="more than 1 MB"):
        read_member(LyingArchive(), "data", "model.zip", limit=cap)


def understate_size(path: Path, name: str, size: int) -> None:
    """Rewrite the central directory entry of ``name`` to declare ``size`` bytes (the data stays)."""
    content = bytearray(path.read_bytes())
    end = content.rfind(b"PK\x05\x06")
    entries, _, offset = struct.unpack_from("<HII", content, end + 10)
    for _ in range(entries):
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", content, offset + 28)
        if content[offset + 46: offset + 46 + name_length] == name.encode():
            struct.pack_into("<I", content, offset + 24, size)  # the uncompressed size
        offset += 46 + name_length + extra_length + comment_length
    path.write_bytes(bytes(content))


def test_d_a_header_that_understates_a_member_is_refused(model_zip):
    write_zip(model_zip, {**zip_members(model_zip), "policy.pth": bytes(8 << 20)}, zipfile.ZIP_DEFLATED)
    understate_size(model_zip, "policy.pth", 100)
    error, seconds = cpu_time(read_model_zip, model_zip)
    assert isinstance(error, UnsafeAgentError) and seconds < FAST, error
    assert "policy.pth in ppo-CartPole-v1.zip" in str(error)


def test_d_the_total_and_the_table_of_contents_are_bounded(model_zip, monkeypatch):
    monkeypatch.setenv("RLHUB_SAFE_MAX_ZIP_MB", "0.05")
    with pytest.raises(ResourceLimitError, match="RLHUB_SAFE_MAX_ZIP_MB"):
        read_model_zip(model_zip)
    monkeypatch.delenv("RLHUB_SAFE_MAX_ZIP_MB")
    monkeypatch.setenv("RLHUB_SAFE_MAX_ZIP_DIRECTORY_MB", "0.001")  # ~1 kB: a few hundred entries
    write_zip(model_zip, {**zip_members(model_zip), **{f"padding/{index}": b"" for index in range(200)}})
    with pytest.raises(ResourceLimitError, match="central directory"):
        read_model_zip(model_zip)


def test_d_tensor_files_are_checked_before_torch_load(model_zip):
    members = zip_members(model_zip)
    policy = members["policy.pth"]
    with zipfile.ZipFile(io.BytesIO(policy)) as inner:
        records = {name: inner.read(name) for name in inner.namelist()}

    def tensor_file(records: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression) as archive:
            for name, content in records.items():
                archive.writestr(name, content)
        return buffer.getvalue()

    write_zip(model_zip, {**members, "policy.pth": tensor_file(records, zipfile.ZIP_DEFLATED)})
    with pytest.raises(UnsafeAgentError, match="compressed record"):
        read_model_zip(model_zip)

    # torch's own weights_only reader allows builtins.bytearray, which allocates what it is asked.
    pickle_name = next(name for name in records if name.endswith("data.pkl"))
    bomb = b"\x80\x02" + global_opcode("builtins", "bytearray") + b"J" + struct.pack("<i", 1 << 20) + b"\x85R."
    write_zip(model_zip, {**members, "policy.pth": tensor_file({**records, pickle_name: bomb})})
    with pytest.raises(UnsafeAgentError, match=r"holds more than tensors \(it names builtins.bytearray\)"):
        read_model_zip(model_zip)


def test_transposed_arrays_read_as_data():
    """numpy >= 2.3 pickles a transposed array in its memory order ("K" and the axes' permutation): an
    Atari agent's ``_last_obs`` after VecTransposeImage is one. It reads back equal; a bad order is refused."""
    frames = np.arange(2 * 84 * 84 * 4, dtype=np.uint8).reshape(2, 84, 84, 4).transpose(0, 3, 1, 2)
    for protocol in (2, 5):
        assert np.array_equal(materialize(restricted_loads(pickle.dumps(frames, protocol=protocol))), frames)
    data = pickle.dumps(frames, protocol=5)
    if b"K" not in data:
        pytest.skip(f"numpy {np.__version__} pickles transposed arrays in C order")
    order = b"(K\x00K\x03K\x01K\x02t"  # the axis order (0, 3, 1, 2), as the pickle writes it
    assert data.count(order) == 1
    for bad in (b"(K\x00K\x00K\x01K\x02t", b"(X\x01\x00\x00\x00aK\x03K\x01K\x02t"):  # a repeated axis, a string
        with pytest.raises(pickle.UnpicklingError, match="axis order"):
            restricted_loads(data.replace(order, bad))


# (e) Array state allocated before any check --------------------------------------------------------


def object_array_pickle(elements: int) -> bytes:
    template = pickle.dumps(np.array([None, None], dtype=object), protocol=2)
    shape = b"K\x02\x85"  # the shape (2,), right after the version number
    assert template.count(shape) == 1
    return template.replace(shape, b"J" + struct.pack("<i", elements) + b"\x85")


def test_e_array_state_is_checked_before_numpy_allocates(tmp_path):
    path = tmp_path / "vec_normalize.pkl"
    path.write_bytes(object_array_pickle(1 << 27))  # 1 GB of pointers
    tracemalloc.start()
    try:
        error, seconds = cpu_time(read_vec_normalize, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(error, ResourceLimitError) and seconds < FAST, error
    assert "vec_normalize.pkl" in str(error) and "RLHUB_SAFE_MAX_ARRAY_MB" in str(error)
    assert peak < 16 << 20

    # The data must fit the shape, for numbers as for objects.
    numbers = pickle.dumps(np.arange(4.0), protocol=2)
    assert np.array_equal(materialize(restricted_loads(numbers)), np.arange(4.0))
    lying = numbers.replace(b"K\x04\x85", b"K\x05\x85")
    with pytest.raises(pickle.UnpicklingError, match="does not fit its shape"):
        restricted_loads(lying)
    with pytest.raises(pickle.UnpicklingError, match="do not fit its shape"):
        restricted_loads(object_array_pickle(3))


# (f) The memo, the instruction count, the names ---------------------------------------------------


def test_f_a_huge_memo_index_allocates_nothing():
    # LONG_BINPUT 2**24: the C unpickler would grow its memo to 2**25 pointers (256 MB) here.
    pickled = b"\x80\x02N" + b"r" + struct.pack("<I", 1 << 24) + b"."
    tracemalloc.start()
    try:
        loaded = restricted_loads(pickled)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert loaded is None and peak < 1 << 20
    with pytest.raises(pickle.UnpicklingError, match="longer than the pickle"):
        restricted_loads(b"\x80\x05\x96" + struct.pack("<Q", 1 << 33) + b".")  # BYTEARRAY8 of 8 GB


def test_f_instructions_and_names_are_capped(monkeypatch):
    monkeypatch.setenv("RLHUB_SAFE_MAX_PICKLE_OPCODES", "1000")
    with pytest.raises(ResourceLimitError, match="RLHUB_SAFE_MAX_PICKLE_OPCODES"):
        restricted_loads(pickle.dumps(list(range(2000)), protocol=2), where="data")
    monkeypatch.delenv("RLHUB_SAFE_MAX_PICKLE_OPCODES")

    monkeypatch.setenv("RLHUB_SAFE_MAX_PICKLE_GLOBALS", "100")
    many = b"\x80\x02(" + b"".join(global_opcode("somewhere", f"Name{index}") for index in range(101)) + b"l."
    with pytest.raises(ResourceLimitError, match="distinct classes and functions"):
        restricted_loads(many)


def test_f_placeholder_classes_belong_to_one_read():
    pickled = b"\x80\x02" + global_opcode("somewhere", "Thing") + b")\x81."  # NEWOBJ of somewhere.Thing
    first, second = restricted_loads(pickled), restricted_loads(pickled)
    assert type(first).describe() == "somewhere.Thing" and type(first) is not type(second)
    gone = weakref.ref(type(first))
    del first
    import gc

    gc.collect()
    assert gone() is None  # nothing process-wide keeps the class of a file read and dropped


# (g) Imports from downloaded configs ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["nn.ReLU", "torch.optim.Adam", "stable_baselines3.HerReplayBuffer",
                                  "gymnasium.wrappers.TimeLimit", "th.optim.RMSprop",
                                  "sb3_contrib.common.wrappers.TimeFeatureWrapper"])
def test_g_the_importer_accepts_allow_listed_classes(path):
    assert isinstance(safe_import(path), type)


@pytest.mark.parametrize("path, reason", [
    ("os.system", "outside the packages"),
    ("builtins.eval", "outside the packages"),
    ("torch.hub.load", "outside the packages"),
    ("subprocess.Popen", "outside the packages"),
    ("torch.utils.model_dump.__main__.X", "only public names"),
    ("stable_baselines3._private.X", "only public names"),
    ("stable_baselines3.common.callbacks.os.system", "goes through the module os"),
    ("stable_baselines3.common.utils", "where only classes"),
    ("stable_baselines3.common.utils.th.load", "goes through the module torch"),
    ("stable_baselines3.common.utils.th.onnx.export", "goes through the module torch"),
])
def test_g_the_importer_refuses_everything_else(path, reason):
    before = set(sys.modules)
    with pytest.raises(UnsafeAgentError, match=reason):
        safe_import(path)
    assert not {name for name in set(sys.modules) - before if "__main__" in name or name.startswith("torch.hub")}


def test_g_a_downloaded_config_cannot_import_a_main_module(ppo_cartpole_package, tmp_path):
    config = yaml.safe_load((ppo_cartpole_package / "config.yml").read_text())
    for key, value in [("env_wrapper", "torch.utils.model_dump.__main__.X"),
                       ("policy_kwargs", "dict(activation_fn=torch.utils.model_dump.__main__.X)"),
                       ("replay_buffer_class", "torch.utils.bottleneck.__main__.main"),
                       ("policy", "torch.utils.model_dump.__main__.X")]:
        (tmp_path / "config.yml").write_text(yaml.safe_dump({**config, key: value}))
        with pytest.raises(UnsafeAgentError, match="only public names"):
            load_config(tmp_path / "config.yml", "ppo", "CartPole-v1", PPO)
        assert "torch.utils.model_dump.__main__" not in sys.modules
        assert "torch.utils.bottleneck.__main__" not in sys.modules
    with pytest.raises(UnsafeAgentError, match="outside the packages"):
        check_config_section({"policy_kwargs": "dict(activation_fn=torch.utils.model_dump.X)"}, "config.yml")


def test_g_downloaded_configs_use_the_safe_importer_and_local_ones_import_as_before(ppo_cartpole_package, tmp_path):
    config = yaml.safe_load((ppo_cartpole_package / "config.yml").read_text())
    (tmp_path / "config.yml").write_text(yaml.safe_dump({**config, "policy_kwargs": "dict(activation_fn=nn.Tanh)"}))
    loaded = load_config(tmp_path / "config.yml", "ppo", "CartPole-v1", PPO)
    import torch

    assert loaded.hyperparams["policy_kwargs"]["activation_fn"] is torch.nn.Tanh
    asked = []
    resolve_section("ppo", "CartPole-v1", PPO, {"n_timesteps": 10, "policy_kwargs": "dict(activation_fn=nn.Tanh)"},
                    source=None, section="x", importer=lambda path: asked.append(path) or torch.nn.ReLU)
    assert asked == ["nn.Tanh"]
    assert parse_expression("dict(f=collections.OrderedDict)")["f"].__name__ == "OrderedDict"  # local: anything


def test_g_pickled_classes_and_env_modules_use_the_same_allow_list():
    assert resolve_class("stable_baselines3.common.policies", "ActorCriticPolicy", policy_bases()) is not None
    assert resolve_class("os", "system", (object,)) is None
    assert resolve_class("collections", "OrderedDict", (object,)) is None
    assert resolve_class("torch.utils.model_dump.__main__", "X", (object,)) is None
    assert is_safe_env_module("gymnasium") and is_safe_env_module("rlhub_bandits.envs")
    for module in ("os", "antigravity", "gymnasium.__main__", "_private", "not_an_installed_package_rlhub"):
        assert not is_safe_env_module(module), module


def test_an_environment_whose_keywords_make_it_huge_is_refused_before_it_is_built():
    # In a fresh process, as `rlhub enjoy` runs: a test worker's allocator may hold freed memory that
    # the probe's child could fill without mapping more.
    code = """
from rlhub.safe_loading import ResourceLimitError, check_env_cost
rows = ["S" + "F" * 499, *["F" * 500] * 498, "F" * 499 + "G"]  # a 1 MB manifest, a transition table of GBs
try:
    check_env_cost("FrozenLake-v1", {"desc": rows}, "mallory/lake")
except ResourceLimitError as error:
    print("refused:", error)
check_env_cost("FrozenLake-v1", {"map_name": "8x8", "is_slippery": False}, "alice/lake")  # a legitimate one
print("legitimate: built")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "RLHUB_SAFE_MAX_ENV_MB": "50"})
    assert result.returncode == 0, result.stderr
    assert "refused:" in result.stdout and "RLHUB_SAFE_MAX_ENV_MB" in result.stdout, result.stdout
    assert "legitimate: built" in result.stdout


# Limits and the small readers ------------------------------------------------------------------


def test_limits_are_read_from_the_environment_at_each_call(monkeypatch):
    assert limits() == Limits() and limits().file_bytes.value == 128 << 20
    monkeypatch.setenv("RLHUB_SAFE_MAX_FILE_MB", "1.5")
    monkeypatch.setenv("RLHUB_SAFE_MAX_PICKLE_NODES", "1e3")
    assert limits().file_bytes.value == 3 << 19 and limits().pickle_nodes.value == 1000
    monkeypatch.setenv("RLHUB_SAFE_MAX_YAML_NODES", "lots")
    with pytest.raises(ConfigError, match="RLHUB_SAFE_MAX_YAML_NODES"):
        limits()


def test_json_and_yaml_text_readers_are_bounded(tmp_path, monkeypatch):
    path = tmp_path / "rlhub.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UnsafeAgentError, match="nested too deeply"):
        read_json(path, "rlhub.json")
    path.write_text("{not json")
    with pytest.raises(UnsafeAgentError, match="not valid JSON"):
        read_json(path, "rlhub.json")
    path.write_text(json.dumps({"algo_id": "ppo", "padding": "x" * (2 << 20)}))
    with pytest.raises(ResourceLimitError, match="RLHUB_SAFE_MAX_JSON_MB"):
        read_json(path, "rlhub.json")
    path.write_text(json.dumps({"algo_id": "ppo"}))
    assert read_json(path, "rlhub.json") == {"algo_id": "ppo"}
    assert load_yaml_text("license: mit\ntags: [a, b]\n", "the front matter of README.md") == {
        "license": "mit", "tags": ["a", "b"]}
    with pytest.raises(UnsafeAgentError, match="Python tag"):
        load_yaml_text("!!python/object/apply:os.system ['true']\n", "README.md")
