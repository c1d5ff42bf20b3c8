"""Property-based fuzzing of the readers in :mod:`rlhub.safe_loading` (see DESIGN.md, "Trust").

Hypothesis feeds mutated pickles, model zips, ``vec_normalize.pkl`` files and configs, grown from the
files of two real runs (a2c on Pendulum-v1 with VecNormalize, ppo on CartPole-v1) and from payload
pickles that would run code if unpickled for real. For every case:

1. nothing from the file runs: one audit hook (``sys.addaudithook``; hooks cannot be removed, so a
   flag switches it on only while a reader runs) records and blocks shell and process calls, code
   compiled or executed outside an import, imports of modules outside the trusted packages,
   writes, sockets, real unpickling and ``ctypes``; and the canary file the payloads would
   create never appears;
2. the case stays in budget: at most ``MEMORY_BUDGET`` bytes traced by ``tracemalloc`` (numpy's
   allocations included) and of new peak RSS (torch's), at most ``TIME_BUDGET`` seconds (a timer
   stops a runaway case), and an address-space limit turns anything far larger into a
   ``MemoryError``, which counts as over budget too;
3. it ends in a loaded result or a clear error: :class:`~rlhub.safe_loading.UnsafeAgentError`
   (``ResourceLimitError`` is one) or :class:`~rlhub.config.ConfigError`.

Beside the fuzz tests: ``test_seeds_load_cleanly`` and ``test_harness_catches`` check the harness
(no false alarm on real files; each kind of misbehaviour caught), ``test_payloads_are_refused_without_running``
runs the canaries through every reader, and ``test_found_failures`` keeps the minimal input of each
failure the fuzzing found (``KNOWN_BUGS`` lists those still open).

Each fuzz test runs ``RLHUB_FUZZ_EXAMPLES`` cases (by default 50 to 200, about 40 s for the file on
two cores); ``benchmarks/fuzz_safe_loading.py`` runs them long and prints what they saw (set
``RLHUB_FUZZ_STATS`` to a path and the tests write their counts there; ``RLHUB_FUZZ_SURVEY=1`` counts
failures by kind instead of stopping at the first).
"""

from __future__ import annotations

import base64
import builtins
import collections
import contextlib
import functools
import json
import os
import pickle
import pickletools
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
import yaml
from hypothesis import (
    HealthCheck,
    Phase,
    assume,
    currently_in_test_context,
    given,
    note,
    settings,
)
from hypothesis import strategies as st

from rlhub import safe_loading
from rlhub.config import ConfigError
from rlhub.safe_loading.imports import is_allowed_module

MEMORY_BUDGET = int(os.environ.get("RLHUB_FUZZ_MEMORY_MB", "64")) << 20
TIME_BUDGET = float(os.environ.get("RLHUB_FUZZ_SECONDS", "5"))
#: The readers' caps (rlhub.safe_loading.limits) lowered to fit the budget: the defaults (128 MB a
#: file or array, 256 MB a zip) suit real agents; the seeds here are a few kB. Set a variable to test others.
TEST_CAPS = {"RLHUB_SAFE_MAX_FILE_MB": "16", "RLHUB_SAFE_MAX_ZIP_MB": "32", "RLHUB_SAFE_MAX_ARRAY_MB": "16"}
TRACING_SLOWDOWN = 4
#: Beyond this much more address space, allocations fail (a safety net for the machine, not the budget).
ADDRESS_SPACE_HEADROOM = 2 << 30
EXAMPLES = int(os.environ.get("RLHUB_FUZZ_EXAMPLES", "0"))
#: Survey mode (the benchmark's): count property violations by kind instead of failing on the first.
SURVEY = os.environ.get("RLHUB_FUZZ_SURVEY", "") not in ("", "0")

#: Failures these tests found that rlhub still has (test_found_failures holds the minimal input of
#: each failure found, fixed or not). While listed, the fuzz strategies leave out the inputs that
#: find it, so each test keeps guarding everything else; delete an entry once it is fixed.
KNOWN_BUGS: set[str] = set()  # none open; e.g. {"yaml_nodes"} while a found failure is being fixed

#: The file the payloads create if anything of them runs.
MARKER = Path(tempfile.gettempdir()) / f"rlhub-fuzz-canary-{os.getpid()}"
EXEC_CODE = f"open({str(MARKER)!r}, 'w').write('x')"
SHELL_CODE = f"touch {MARKER}"

ALLOWED_ERRORS: tuple[type[BaseException], ...] = (safe_loading.UnsafeAgentError, ConfigError)


def fuzz_settings(default_examples: int, *, shrink: bool = True) -> settings:
    # No example database (CI stays stateless); the failing seed and a reproduce blob are printed.
    # No deadline: run_case times each case itself, and stops one that runs away.
    return settings(max_examples=EXAMPLES or default_examples, deadline=None, database=None, print_blob=True,
                    suppress_health_check=list(HealthCheck),
                    phases=list(Phase) if shrink else [Phase.explicit, Phase.generate])


# ---------------------------------------------------------------------------------------------
# What the readers do while they run: the audit hook


#: Standard-library modules that act on import or open processes, files or the network.
_STDLIB_DENY = frozenset({"antigravity", "this", "webbrowser", "subprocess", "pty", "socket", "ctypes", "ftplib",
                          "smtplib", "telnetlib", "http", "urllib", "xmlrpc", "turtle", "tkinter", "idlelib", "pdb",
                          "code", "codeop", "runpy", "multiprocessing", "shutil", "os", "posix", "nt", "pickle",
                          "marshal", "importlib", "builtins", "sys", "asyncio", "signal"})
#: Events that always count (the reader's own code never needs them, outside an import).
_DANGEROUS_PREFIXES = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill",
                       "os.killpg", "os.remove", "os.unlink", "os.rmdir", "os.rename", "os.replace", "os.chmod",
                       "os.chown", "os.truncate", "os.symlink", "os.link", "os.mkdir", "os.putenv", "os.unsetenv",
                       "os.startfile", "subprocess.", "pty.", "socket.", "webbrowser.", "urllib.", "http.",
                       "ftplib.", "smtplib.", "ctypes.", "shutil.", "builtins.input", "pickle.find_class",
                       "code.__new__", "function.__new__", "marshal.load", "sys.settrace", "sys.setprofile",
                       "sys.addaudithook", "cpython.run_", "glob.", "tempfile.")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class Blocked(BaseException):
    """Raised by the audit hook to stop a dangerous action (a BaseException: no reader swallows it)."""


class CaseTimeout(BaseException):
    """Raised by the timer when a case runs past ``TIME_BUDGET``."""


@dataclass
class _Watch:
    active: bool = False
    busy: bool = False
    findings: list[str] = field(default_factory=list)
    read_roots: tuple[str, ...] = ()
    input: bytes = b""  # the case's file: a module it names must be on rlhub's allow-list


_WATCH = _Watch()


def _outermost_import() -> str | None:
    """The module whose import is under way (the outermost one, which the reader's code asked for)."""
    outermost = None
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_find_and_load" and code.co_filename.startswith("<frozen importlib"):
            outermost = frame.f_locals.get("name", outermost)
        frame = frame.f_back
    return outermost


def _allowed_import(root: str) -> bool:
    """An import the readers may make: of a trusted package (torch importing its own parts on a
    code path never taken before, say) or a harmless standard module; but a module the file
    itself names only if rlhub's allow-list has it."""
    top = root.split(".")[0]
    if not (top in safe_loading.trusted_packages() or (top in sys.stdlib_module_names and top not in _STDLIB_DENY)):
        return False
    return root.encode() not in _WATCH.input or is_allowed_module(root)


def _reading_source_lines() -> bool:
    """Whether ``linecache`` is reading a Python file (a warning or traceback quoting its caller)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.endswith(f"{os.sep}linecache.py"):
            return True
        frame = frame.f_back
    return False


def _inside_allowed_import() -> bool:
    outermost = _outermost_import()
    return outermost is not None and _allowed_import(outermost)


def _audit_hook(event: str, args: tuple) -> None:
    if not _WATCH.active or _WATCH.busy:
        return
    if event in ("builtins.id", "object.__getattr__", "object.__setattr__", "object.__delattr__", "sys._getframe",
                 "os.listdir", "os.scandir", "array.__new__", "gc.get_referrers", "gc.get_referents"):
        return
    _WATCH.busy = True
    try:
        finding = _judge(event, args)
    finally:
        _WATCH.busy = False
    if finding:
        _WATCH.findings.append(finding)
        raise Blocked(finding)


def _judge(event: str, args: tuple) -> str | None:
    if event == "import":  # raised before the import's own _find_and_load frame exists
        root = _outermost_import() or args[0]
        return None if _allowed_import(root) else f"import {args[0]} (while importing {root})"
    if event == "open":
        path, mode, flags = args
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writes:
            return None if _inside_allowed_import() else f"open {path!r} for writing"
        if isinstance(path, (str, bytes, os.PathLike)) and not _reading_source_lines():
            where = os.path.realpath(os.fsdecode(path))
            if not where.startswith(_WATCH.read_roots) and not _inside_allowed_import():
                return f"read {where} (outside the input and the installed packages)"
        return None
    if event == "compile":
        caller = sys._getframe(2).f_code
        if caller.co_name == "parse" and caller.co_filename.endswith("ast.py"):
            return None  # ast.parse: parsing config expressions, nothing runs
        return None if _inside_allowed_import() else f"compile {str(args[0])[:80]!r}"
    if event == "exec":
        return None if _inside_allowed_import() else f"exec {args[0]!r}"
    if event.startswith(_DANGEROUS_PREFIXES):
        return None if _inside_allowed_import() else f"{event}{_short(args)}"
    return None


def _short(args: tuple) -> str:
    text = repr(args)
    return text if len(text) <= 120 else text[:117] + "..."


# Hooks cannot be removed: one per import of this module, switched on by `_WATCH.active`.
sys.addaudithook(_audit_hook)


# ---------------------------------------------------------------------------------------------
# One case: run a reader under watch and within budget, then judge how it ended


@dataclass
class TargetStats:
    cases: int = 0
    loaded: int = 0
    rejected: int = 0
    failed: int = 0
    errors: collections.Counter = field(default_factory=collections.Counter)
    slowest_s: float = 0.0
    slowest_case: str = ""
    peak_bytes: int = 0
    peak_case: str = ""
    #: failure kind (what broke, and where in rlhub) -> [count, the shortest case that showed it, its message]
    failures: dict[str, list] = field(default_factory=dict)


STATS: dict[str, TargetStats] = collections.defaultdict(TargetStats)


def _rss() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def _address_space() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def _max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _origin(error: BaseException) -> str:
    """Where an exception left rlhub (or, if it never entered rlhub, where it was raised)."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in frames if f"{os.sep}rlhub{os.sep}" in frame.filename]
    frame = (ours or frames or [None])[-1]
    return f"{Path(frame.filename).name}:{frame.name}" if frame else "?"


def _chain(error: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


@contextlib.contextmanager
def _limits(seconds: float):
    def on_timer(signum, frame):
        if _WATCH.active:  # the timer repeats, in case code that swallows exceptions caught the first
            raise CaseTimeout(f"ran past {seconds:g} s")

    previous_handler = signal.signal(signal.SIGALRM, on_timer)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + ADDRESS_SPACE_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.25)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, previous_handler)


def _watched_run(read: Callable[[], Any], seconds: float) -> tuple[Any, BaseException | None, float]:
    result: Any = None
    error: BaseException | None = None
    with _limits(seconds):
        _WATCH.active = True
        start = time.perf_counter()
        try:
            result = read()
        except BaseException as raised:  # noqa: BLE001 - judged by the caller
            error = raised
        finally:
            _WATCH.active = False
            elapsed = time.perf_counter() - start
    if isinstance(error, KeyboardInterrupt):
        raise error
    return result, error, elapsed


@dataclass
class Outcome:
    result: Any
    error: BaseException | None  # an allowed, clear error (anything else fails the case)
    seconds: float
    peak_bytes: int


def run_case(target: str, description: str, read: Callable[[], Any], file: bytes = b"") -> Outcome:
    """Run ``read()`` once as a fuzz case of ``target`` (reading ``file``) and assert the properties."""
    _WATCH.input = file
    with contextlib.suppress(FileNotFoundError):
        MARKER.unlink()
    if not tracemalloc.is_tracing():
        tracemalloc.start()
    tracemalloc.reset_peak()
    traced_before = tracemalloc.get_traced_memory()[0]
    rss_before, max_rss_before = _rss(), _max_rss()
    _WATCH.findings.clear()
    # tracemalloc slows pure-Python readers (PyYAML) about fourfold: a traced run gets that much
    # time, and one that took longer than the budget is timed again untraced.
    result, error, elapsed = _watched_run(read, TIME_BUDGET * TRACING_SLOWDOWN)
    peak = tracemalloc.get_traced_memory()[1] - traced_before
    max_rss_after = _max_rss()
    if elapsed > TIME_BUDGET:
        tracemalloc.stop()
        try:
            untraced_result, untraced_error, elapsed = _watched_run(read, TIME_BUDGET)
        finally:
            tracemalloc.start()
        if isinstance(error, CaseTimeout) or isinstance(untraced_error, CaseTimeout):
            result, error = untraced_result, untraced_error

    problems: list[tuple[str, str]] = [(f"ran {finding.split(' ')[0]}", f"ran {finding!r}")
                                       for finding in _WATCH.findings]
    if MARKER.exists():
        problems.append(("canary", f"the canary file {MARKER} was created: payload code ran"))
    if any(isinstance(item, CaseTimeout) for item in _chain(error)) or elapsed > TIME_BUDGET:
        problems.append(("time", f"took {elapsed:.1f} s, over the {TIME_BUDGET:g} s budget"))
    if peak > MEMORY_BUDGET:
        problems.append(("memory", f"allocated {peak / 2**20:.0f} MiB (tracemalloc peak), over {MEMORY_BUDGET >> 20} MiB"))
    # Memory tracemalloc does not see (torch's allocator, C libraries): new peak RSS beyond what the
    # traced allocations explain (counted twice: tracemalloc's own table grows with them).
    untraced = max_rss_after - rss_before - 2 * peak
    if max_rss_after > max_rss_before and untraced > MEMORY_BUDGET:
        grown = (max_rss_after - rss_before) / 2**20
        message = (f"grew the resident set by {grown:.0f} MiB, {untraced / 2**20:.0f} MiB of it untraced, "
                   f"over {MEMORY_BUDGET >> 20} MiB")
        problems.append(("memory", message))
    if any(isinstance(item, MemoryError) for item in _chain(error)):
        problems.append(("memory", f"tried to allocate more than {ADDRESS_SPACE_HEADROOM >> 30} GiB (MemoryError)"))
    if error is not None and not isinstance(error, (*ALLOWED_ERRORS, MalformedPickle, Blocked, CaseTimeout)):
        problems.append((f"{type(error).__name__} from {_origin(error)}",
                         f"ended in {type(error).__module__}.{type(error).__qualname__}: {str(error)[:300]}"))

    stats = STATS[target]
    stats.cases += 1
    if elapsed > stats.slowest_s:
        stats.slowest_s, stats.slowest_case = elapsed, description[:300]
    if peak > stats.peak_bytes:
        stats.peak_bytes, stats.peak_case = peak, description[:300]
    if problems:
        stats.failed += 1
        message = "; ".join(text for _, text in problems)
        kind = " + ".join(sorted({kind for kind, _ in problems}))
        seen = stats.failures.setdefault(kind, [0, description, message])
        seen[0] += 1
        if len(description) < len(seen[1]):
            seen[1:] = [description, message]
        if currently_in_test_context():
            note(f"{target} case: {description[:2000]}")
        if not SURVEY:
            raise AssertionError(f"{target}: {message}") from error
    elif error is None:
        stats.loaded += 1
    else:
        stats.rejected += 1
        inner = f"({type(error.__cause__).__name__})" if isinstance(error, MalformedPickle) else ""
        stats.errors[type(error).__name__ + inner] += 1
    return Outcome(result, error, elapsed, peak)


def brief(value: Any) -> str:
    """``repr(value)`` with long strings and bytes cut short (a case's description stays readable)."""
    if isinstance(value, (str, bytes)) and len(value) > 80:
        return f"{value[:40]!r}...<{len(value)} {'chars' if isinstance(value, str) else 'bytes'}>...{value[-12:]!r}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(brief(item) for item in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{brief(key)}: {brief(item)}" for key, item in value.items()) + "}"
    return repr(value)


# ---------------------------------------------------------------------------------------------
# Pickle building blocks


def push_str(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return (b"\x8c" + bytes([len(raw)]) if len(raw) < 256 else b"X" + struct.pack("<I", len(raw))) + raw


def push_bytes(raw: bytes) -> bytes:
    return (b"C" + bytes([len(raw)]) if len(raw) < 256 else b"B" + struct.pack("<I", len(raw))) + raw


def push_int(number: int) -> bytes:
    if 0 <= number < 256:
        return b"K" + bytes([number])
    if -(2**31) <= number < 2**31:
        return b"J" + struct.pack("<i", number)
    raw = pickle.encode_long(number)
    return (b"\x8a" + bytes([len(raw)]) if len(raw) < 256 else b"\x8b" + struct.pack("<i", len(raw))) + raw


def push_tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def push_global(module: str, name: str, old_style: bool = False) -> bytes:
    if old_style:  # protocol 0-3 GLOBAL
        return b"c" + f"{module}\n{name}\n".encode("utf-8", "surrogatepass")
    return push_str(module) + push_str(name) + b"\x93"


def push_call(module: str, name: str, args: bytes, old_style: bool = False) -> bytes:
    return push_global(module, name, old_style) + args + b"R"


#: Calls a hostile pickle makes: to run code, to allocate, to import, to touch files.
CALLS: list[tuple[str, str, bytes]] = [
    ("builtins", "bytearray", push_tuple(push_int(10**9))),
    ("builtins", "bytearray", push_tuple(push_int(2**40))),
    ("builtins", "bytearray", push_tuple(push_int(1 << 20))),
    ("posix", "system", push_tuple(push_str(SHELL_CODE))),
    ("os", "system", push_tuple(push_str(SHELL_CODE))),
    ("builtins", "exec", push_tuple(push_str(EXEC_CODE))),
    ("builtins", "eval", push_tuple(push_str(f"__import__('os').system({SHELL_CODE!r})"))),
    ("subprocess", "Popen", push_tuple(b"(" + push_str("touch") + push_str(str(MARKER)) + b"l")),
    ("builtins", "getattr", push_tuple(push_global("os", "path"), push_str("join"))),
    ("builtins", "__import__", push_tuple(push_str("antigravity"))),
    ("importlib", "import_module", push_tuple(push_str("this"))),
    ("pickle", "loads", push_tuple(push_bytes(b"cposix\nsystem\n(" + push_str(SHELL_CODE) + b"tR."))),
    ("torch", "load", push_tuple(push_str("/etc/passwd"))),
    ("numpy", "load", push_tuple(push_str("/etc/passwd"), b"\x88")),
    ("cloudpickle.cloudpickle", "subimport", push_tuple(push_str("os"))),
    ("numpy.core.multiarray", "_reconstruct",
     push_tuple(push_global("numpy", "ndarray"), push_tuple(push_int(10**9)), push_bytes(b"b"))),
    ("numpy._core.multiarray", "_reconstruct",
     push_tuple(push_global("numpy", "ndarray"), push_tuple(push_int(0)), push_bytes(b"b"))),
    ("numpy._core.numeric", "_frombuffer",
     push_tuple(push_bytes(b"\0" * 16), push_call("numpy", "dtype", push_tuple(push_str("f8"))),
                push_tuple(push_int(10**9)), push_str("C"))),
    ("numpy.core.numeric", "_frombuffer",
     push_tuple(b"\x96" + struct.pack("<Q", 16) + b"\0" * 16, push_call("numpy", "dtype", push_tuple(push_str("O"))),
                push_tuple(push_int(2)), push_str("C"))),
    ("numpy", "dtype", push_tuple(push_str("V2147483647"))),
    ("numpy", "dtype", push_tuple(push_str("(1000000000,)f8"))),
    ("numpy.core.multiarray", "scalar",
     push_tuple(push_call("numpy", "dtype", push_tuple(push_str("V1000000000"))), push_bytes(b"x"))),
    ("numpy._core.multiarray", "scalar",
     push_tuple(push_call("numpy", "dtype", push_tuple(push_str("(100000000,)f8"))), push_bytes(b"x" * 8))),
    ("numpy._core.multiarray", "scalar", push_tuple(push_call("numpy", "dtype", push_tuple(push_str("O"))),
                                                    push_str("x"))),
    ("collections", "deque", push_tuple(b"]", push_int(2**62))),
    ("collections", "OrderedDict", push_tuple(b"]")),
    ("builtins", "set", push_tuple(b"]")),
    ("builtins", "complex", push_tuple(push_str("1e999999j"))),
    ("builtins", "slice", push_tuple(push_int(1), push_int(2), push_int(3))),
    ("builtins", "object", b")"),
    ("_codecs", "encode", push_tuple(push_str("a" * 1000), push_str("latin1"))),
    ("_codecs", "encode", push_tuple(push_str("a"), push_str("rot13"))),
    ("copyreg", "_reconstructor", push_tuple(push_global("builtins", "object"), push_global("builtins", "object"),
                                             b"N")),
    ("copyreg", "__newobj__", push_tuple(push_global("builtins", "bytearray"), push_int(10**9))),
    ("stable_baselines3.common.vec_env.vec_normalize", "VecNormalize", b")"),
    ("builtins", "getattr", push_tuple(push_call("builtins", "__import__", push_tuple(push_str("os"))),
                                       push_str("system"))),
]

#: Module and attribute names a mutation swaps into a pickle's strings.
NAMES = ["os", "posix", "system", "builtins", "exec", "eval", "bytearray", "getattr", "__import__", "subprocess",
         "Popen", "numpy", "load", "torch", "numpy.core.multiarray", "numpy._core.multiarray", "_reconstruct",
         "numpy._core.numeric", "_frombuffer", "scalar", "dtype", "ndarray", "collections", "OrderedDict", "deque",
         "copyreg", "_reconstructor", "__newobj__", "cloudpickle.cloudpickle", "subimport", "_make_function",
         "_builtin_type", "CodeType", "stable_baselines3.common.vec_env.vec_normalize", "VecNormalize",
         "stable_baselines3.common.running_mean_std", "RunningMeanStd", "", "a" * 300, "\udcff", "f8", "O",
         "V1000000000", "(1000000000,)f8", "latin1", "obs_rms", "ret_rms", "mean", "var", "count", "clip_obs",
         "norm_obs_keys"]
INTS = [0, 1, -1, 255, 256, 2**31 - 1, -(2**31), 2**32, 2**63 - 1, -(2**63), 2**64, 10**9, 10**18, 10**100]
HUGE_MEMO_INDICES = [2**16, 2**22, 2**25, 2**27, 2**31 - 1, 2**32 - 1]

#: Bytes a mutation writes over or into a file: opcodes and lengths that lie.
INTERESTING_BYTES = [
    b"R", b"\x93", b"\x81", b"b", b"s", b"u", b"e", b"a", b"0", b"2", b"(", b")", b"]", b"}", b"N", b".", b"t",
    b"\x95", b"\x94", b"h\x00", b"r\xff\xff\xff\x7f", b"j\xff\xff\xff\x7f", b"\x8a\x08" + b"\xff" * 8,
    b"J\xff\xff\xff\x7f", b"B\xff\xff\xff\x7f", b"B\x00\x00\x00\x10", b"X\x00\x00\x00\x10",
    b"\x8e" + struct.pack("<Q", 2**28), b"\x96" + struct.pack("<Q", 2**28), b"\x8d" + struct.pack("<Q", 2**28),
    b"\x95" + struct.pack("<Q", 2**40), b"\x8b\xff\xff\xff\x7f", b"cposix\nsystem\n", b"cbuiltins\nbytearray\n",
    b"\x00", b"\xff", b"\xff\xff\xff\xff", b"\x00\x00\x00\x80",
    b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"\x00" * 8,
    b"!!python/object/apply:os.system", b"&a", b"*a", b"{", b"[", b"\n  ", b": ", b"- ", b"\t", b'"', b"'", b"\\",
]

POSITIONS = st.integers(0, 2**31)
BYTE_OPS = st.one_of(
    st.tuples(st.just("set"), POSITIONS, st.integers(0, 255)),
    st.tuples(st.just("insert"), POSITIONS, st.binary(min_size=1, max_size=8) | st.sampled_from(INTERESTING_BYTES)),
    st.tuples(st.just("overwrite"), POSITIONS, st.sampled_from(INTERESTING_BYTES)),
    st.tuples(st.just("delete"), POSITIONS, st.integers(1, 64)),
    st.tuples(st.just("truncate"), POSITIONS),
)


def apply_byte_ops(data: bytes, ops: list[tuple]) -> bytes:
    buffer = bytearray(data)
    for kind, position, *rest in ops:
        position %= len(buffer) + 1
        if kind == "set" and buffer:
            buffer[min(position, len(buffer) - 1)] = rest[0]
        elif kind == "insert":
            buffer[position:position] = rest[0]
        elif kind == "overwrite":
            buffer[position:position + len(rest[0])] = rest[0]
        elif kind == "delete":
            del buffer[position:position + rest[0]]
        elif kind == "truncate":
            del buffer[position:]
    return bytes(buffer)


# Opcode-aware splices work on a seed cut into its opcodes (FRAMEs dropped: they are optional, and
# a splice inside one would only break its length).

_VALUE_OPS = {"NONE", "NEWTRUE", "NEWFALSE", "BININT", "BININT1", "BININT2", "LONG1", "BINFLOAT", "SHORT_BINUNICODE",
              "BINUNICODE", "SHORT_BINBYTES", "BINBYTES", "EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE"}
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"}
_INT_OPS = {"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG"}


@dataclass(frozen=True)
class PickleSeed:
    label: str
    data: bytes
    chunks: tuple[tuple[str, bytes], ...]  # (opcode name, its bytes), FRAMEs dropped

    @classmethod
    def of(cls, label: str, data: bytes) -> PickleSeed:
        """Cut ``data`` into opcodes (an already mutated pickle that does not parse: one raw chunk)."""
        try:
            ops = list(pickletools.genops(data))
        except Exception:  # noqa: BLE001 - any parse failure
            return cls(label, data, (("RAW", data),))
        chunks = []
        for index, (opcode, _, start) in enumerate(ops):
            end = ops[index + 1][2] if index + 1 < len(ops) else len(data)
            if opcode.name != "FRAME":
                chunks.append((opcode.name, data[start:end]))
        return cls(label, data, tuple(chunks))


SPLICE_OPS = st.one_of(
    st.tuples(st.just("call"), POSITIONS, st.sampled_from(range(len(CALLS))), st.booleans()),
    st.tuples(st.just("hidden_call"), POSITIONS, st.sampled_from(range(len(CALLS))), st.booleans()),
    st.tuples(st.just("string"), POSITIONS, st.sampled_from(NAMES)),
    st.tuples(st.just("int"), POSITIONS, st.sampled_from(INTS) | st.integers()),
    st.tuples(st.just("memo"), POSITIONS, st.sampled_from(HUGE_MEMO_INDICES), st.booleans()),
    st.tuples(st.just("nest"), POSITIONS, st.sampled_from([10, 2000, 20_000]), st.sampled_from(["list", "tuple",
                                                                                                  "dict"])),
    st.tuples(st.just("self_ref"), POSITIONS),
    st.tuples(st.just("drop_op"), POSITIONS),
    st.tuples(st.just("dup_op"), POSITIONS),
)


def _nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"]" * depth + b"a" * (depth - 1)
    if kind == "tuple":
        return b"N" + b"\x85" * depth
    return b"}K\x00" * (depth - 1) + b"}" + b"s" * (depth - 1)


def apply_splices(seed: PickleSeed, ops: list[tuple]) -> bytes:
    chunks = [list(chunk) for chunk in seed.chunks]

    def pick(position: int, names: set[str] | None) -> int | None:
        candidates = [i for i, (name, _) in enumerate(chunks) if names is None or name in names]
        return candidates[position % len(candidates)] if candidates else None

    for kind, position, *rest in ops:
        if kind in ("call", "nest", "self_ref", "memo"):
            index = pick(position, _VALUE_OPS)
        elif kind == "string":
            index = pick(position, _STRING_OPS)
        elif kind == "int":
            index = pick(position, _INT_OPS)
        else:
            index = pick(position, None)
        if index is None:
            continue
        if kind == "call":
            module, name, args = CALLS[rest[0]]
            chunks[index] = ["CALL", push_call(module, name, args, rest[1])]
        elif kind == "hidden_call":
            module, name, args = CALLS[rest[0]]
            chunks.insert(index, ["CALL", push_call(module, name, args, rest[1]) + b"0"])
        elif kind == "string":
            chunks[index] = ["SHORT_BINUNICODE", push_str(rest[0])]
        elif kind == "int":
            chunks[index] = ["LONG1", push_int(rest[0])]
        elif kind == "memo":
            put = (b"r" if rest[1] else b"j") + struct.pack("<I", rest[0])  # LONG_BINPUT, or LONG_BINGET
            chunks[index] = ["MEMO", chunks[index][1] + put if rest[1] else put]
        elif kind == "nest":
            chunks[index] = ["NEST", _nested(*rest)]
        elif kind == "self_ref":
            chunks[index] = ["SELF", b"]2a"]  # EMPTY_LIST DUP APPEND: a list that holds itself
        elif kind == "drop_op":
            del chunks[index]
        elif kind == "dup_op":
            chunks.insert(index, list(chunks[index]))
    return b"".join(chunk for _, chunk in chunks)


@st.composite
def mutated_pickles(draw: st.DrawFn, seeds: list[PickleSeed]) -> tuple[str, bytes]:
    """``(description, pickle bytes)``: a seed with opcode splices and byte mutations."""
    seed = draw(st.sampled_from(seeds))
    splices = draw(st.lists(SPLICE_OPS, max_size=3))
    byte_ops = draw(st.lists(BYTE_OPS, min_size=0 if splices else 1, max_size=4))
    data = apply_splices(seed, splices) if splices else seed.data
    data = apply_byte_ops(data, byte_ops)
    return f"seed={seed.label!r} splices={brief(splices)} byte_ops={brief(byte_ops)}", data


# ---------------------------------------------------------------------------------------------
# Payloads: what a hostile author would upload


class ExecPayload:
    def __reduce__(self):
        return builtins.exec, (EXEC_CODE,)


class SystemPayload:
    def __reduce__(self):
        return os.system, (SHELL_CODE,)


class EvalPayload:
    def __reduce__(self):
        return builtins.eval, (f"__import__('os').system({SHELL_CODE!r})",)


def payload_pickles() -> dict[str, bytes]:
    # A schedule as old SB3 files pickle it (a function rebuilt by cloudpickle) that runs a shell.
    schedule = eval("lambda progress: __import__('os').system(SHELL) or progress", {"SHELL": SHELL_CODE})
    state = {"obs_rms": ExecPayload(), "ret_rms": None, "clip_obs": 10.0, "norm_obs": True}
    return {
        "payload:exec": cloudpickle.dumps(ExecPayload()),
        "payload:system": cloudpickle.dumps(SystemPayload()),
        "payload:eval": cloudpickle.dumps(EvalPayload()),
        # getattr(__import__("os"), "system")(...), written by hand as exploit pickles are
        "payload:getattr": (b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(Vos\ntRVsystem\ntR(V"
                            + SHELL_CODE.encode() + b"\ntR."),
        "payload:lambda_schedule": cloudpickle.dumps(schedule),
        "payload:vec_normalize_state": cloudpickle.dumps(state),
        "payload:nested_system": cloudpickle.dumps({"a": [1, (2, SystemPayload())]}),
    }


# ---------------------------------------------------------------------------------------------
# Zips


@dataclass
class Member:
    name: str
    payload: bytes  # as stored (compressed or not)
    method: int = zipfile.ZIP_STORED
    crc: int = 0
    size: int = 0

    @classmethod
    def stored(cls, name: str, content: bytes) -> Member:
        return cls(name, content, zipfile.ZIP_STORED, zlib.crc32(content), len(content))

    @classmethod
    def deflated(cls, name: str, content: bytes) -> Member:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        return cls(name, compressor.compress(content) + compressor.flush(), zipfile.ZIP_DEFLATED,
                   zlib.crc32(content), len(content))


def build_zip(members: list[Member]) -> bytes:
    """A zip archive written by hand, so a member may lie about its size, checksum or method."""
    body, central = bytearray(), bytearray()
    for member in members[:65535]:
        name = member.name.encode("utf-8", "surrogatepass")
        offset = len(body)
        common = (member.method, 0, 0x21, member.crc & 0xFFFFFFFF, len(member.payload) & 0xFFFFFFFF,
                  member.size & 0xFFFFFFFF, len(name))
        body += struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0x800, *common, 0) + name + member.payload
        central += struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0x800, *common, 0, 0, 0, 0, 0, offset) + name
    count = min(len(members), 65535)
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, count, count, len(central), len(body), 0)
    return bytes(body + central + end)


BOMB_SIZE = 256 << 20


@dataclass(frozen=True)
class Bomb:
    """A raw deflate stream of ``BOMB_SIZE`` zero bytes (about 250 KiB) and its CRC."""

    payload: bytes
    crc: int


def make_bomb() -> Bomb:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block, parts, crc = bytes(16 << 20), [], 0
    for _ in range(BOMB_SIZE // len(block)):
        parts.append(compressor.compress(block))
        crc = zlib.crc32(block, crc)
    parts.append(compressor.flush())
    return Bomb(b"".join(parts), crc)


#: Keys a mutation sets in a model's ``data`` JSON that are bookkeeping, not constructor arguments.
DATA_KEYS = ["observation_space", "action_space", "device", "env", "_last_obs", "_last_original_obs",
             "_last_episode_starts", "ep_info_buffer", "ep_success_buffer", "policy_class", "num_timesteps",
             "_total_timesteps", "_num_timesteps_at_start", "_vec_normalize_env", "__class__", "__dict__",
             "start_time", "_episode_num", "_n_updates", "_current_progress_remaining", "tensorboard_log",
             "lr_schedule", "_stats_window_size", "_custom_objects", "unknown_attribute"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.sampled_from(INTS) | st.integers() | st.floats() | st.text(max_size=12)
    | st.sampled_from([{"net_arch": [100_000, 100_000]}, {"net_arch": [-1]}, {"net_arch": {"pi": [10**7]}},
                       {"activation_fn": "os.system"}, {"optimizer_kwargs": {"x": 1}}, [10**9], "cuda", "auto"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
#: JSON text that ``json.dumps`` would not write: deep nesting, huge numbers, non-standard constants.
RAW_JSON = ["[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000, "9" * 5000, "-" + "9" * 100_000,
            "1e999999", "NaN", "-Infinity", '"' + "\\ud800" * 10 + '"', '"' + "a" * 10**6 + '"',
            '{":serialized:": "gAVLAS4="}',  # pickle.dumps(1, protocol=5)
            '{":serialized:": "not base64 !"}', '{":serialized:": 12}', '{":serialized:": null}', "[]", "{}"]
MEMBER_NAMES = ["data", "policy.pth", "pytorch_variables.pth", "policy.optimizer.pth", "extra.pth", "../escape.pth",
                "/abs/data", "data/", "DATA", "tensors.pth", "x" * 300, "\udcff.pth", "_stable_baselines3_version"]

#: Constructor arguments SB3 saves as plain JSON; load_model hands them to the rebuilt agent.
HYPERPARAMETER_KEYS = ["n_steps", "batch_size", "n_epochs", "n_envs", "policy_kwargs", "learning_rate", "gamma",
                       "gae_lambda", "ent_coef", "vf_coef", "max_grad_norm", "use_sde", "sde_sample_freq",
                       "rollout_buffer_class", "rollout_buffer_kwargs", "normalize_advantage", "verbose", "seed",
                       "action_noise", "buffer_size", "clip_range"]
#: Values for them: sizes that allocate, wrong types.
HYPERPARAMETER_VALUES = [10**3, 10**6, 10**7, 10**9, 2**63, -1, 0, None, [], "8", 1.5, float("nan"),
                         {"net_arch": [20_000, 20_000]}, {"net_arch": [64]}, {"log_std_init": 1e308},
                         {"unknown": 1}, {"n_envs": 10**9}]
ZIP_EDITS = st.one_of(
    st.tuples(st.just("pickle"), POSITIONS, st.lists(SPLICE_OPS, max_size=2), st.lists(BYTE_OPS, max_size=3)),
    st.tuples(st.just("payload"), POSITIONS, POSITIONS),
    st.tuples(st.just("plain"), st.sampled_from(DATA_KEYS), JSON_VALUES),
    st.tuples(st.just("raw_json"), st.sampled_from(DATA_KEYS), st.sampled_from(RAW_JSON)),
    st.tuples(st.just("data_document"), st.sampled_from(RAW_JSON + ["[1, 2]", "null", "1", '"x"'])),
    st.tuples(st.just("data_bytes"), st.lists(BYTE_OPS, min_size=1, max_size=4)),
    st.tuples(st.just("member_bytes"), POSITIONS, st.lists(BYTE_OPS, min_size=1, max_size=4)),
    st.tuples(st.just("drop"), POSITIONS),
    st.tuples(st.just("duplicate"), POSITIONS, st.lists(BYTE_OPS, max_size=2)),
    st.tuples(st.just("rename"), POSITIONS, st.sampled_from(MEMBER_NAMES)),
    st.tuples(st.just("bomb"), st.sampled_from(MEMBER_NAMES[:5]), st.sampled_from(["honest", "small", "huge"])),
    st.tuples(st.just("lie"), POSITIONS, st.sampled_from(["size", "crc", "compressed"]), st.sampled_from(INTS)),
    st.tuples(st.just("method"), POSITIONS, st.sampled_from([8, 12, 14, 9, 99, 1])),
    st.tuples(st.just("deflate"), POSITIONS),
    st.tuples(st.just("many"), st.sampled_from([1000, 20_000])),  # 20 000 entries: over the 1 MB directory cap
)
def _no_large_ints(value: Any) -> bool:
    if isinstance(value, dict):
        return all(map(_no_large_ints, value.values()))
    if isinstance(value, list):
        return all(map(_no_large_ints, value))
    return not (isinstance(value, int) and abs(value) > 10**5)


#: Edits of the saved hyperparameters (see test_fuzz_model_zip_saved_hyperparameters).
_HYPERPARAMETER_VALUES = st.sampled_from(HYPERPARAMETER_VALUES) | JSON_VALUES
HYPERPARAMETER_EDITS = st.tuples(
    st.just("plain"), st.sampled_from(HYPERPARAMETER_KEYS),
    _HYPERPARAMETER_VALUES.filter(_no_large_ints) if "hyperparameter_sizes" in KNOWN_BUGS else _HYPERPARAMETER_VALUES)


@dataclass(frozen=True)
class ZipSeed:
    label: str
    members: tuple[tuple[str, bytes], ...]  # (name, content) of the real zip


def _data_document(members: list[Member]) -> tuple[int, dict[str, Any]] | None:
    """The ``data`` member's index and JSON document, when it is a stored JSON object."""
    for index, member in enumerate(members):
        if member.name == "data" and member.method == zipfile.ZIP_STORED:
            try:
                document = json.loads(member.payload)
            except (ValueError, RecursionError):  # an earlier edit made it deep or malformed on purpose
                return None
            return (index, document) if isinstance(document, dict) else None
    return None


def _serialized_keys(document: dict[str, Any]) -> list[str]:
    return [key for key, value in document.items() if isinstance(value, dict) and ":serialized:" in value]


def apply_zip_edits(seed: ZipSeed, edits: list[tuple], payloads: list[bytes], bomb: Bomb) -> bytes:
    members = [Member.stored(name, content) for name, content in seed.members]

    def index_of(position: int) -> int:
        return position % len(members)

    for kind, *args in edits:
        found = _data_document(members) if kind in ("pickle", "payload", "plain", "raw_json") else None
        if found is not None:
            index, document = found
            keys = _serialized_keys(document)
            text = None
            if kind == "pickle" and keys:
                position, splices, byte_ops = args
                key = keys[position % len(keys)]
                original = PickleSeed.of(key, base64.b64decode(document[key][":serialized:"]))
                pickled = apply_byte_ops(apply_splices(original, splices) if splices else original.data, byte_ops)
                document[key] = {":serialized:": base64.b64encode(pickled).decode()}
            elif kind == "payload":
                key = keys[args[0] % len(keys)] if keys else "lr_schedule"
                document[key] = {":serialized:": base64.b64encode(payloads[args[1] % len(payloads)]).decode()}
            elif kind == "plain":
                document[args[0]] = args[1]
            elif kind == "raw_json":
                document[args[0]] = "@@raw@@"
                text = args[1]
            content = json.dumps(document).encode()
            if text is not None:
                content = content.replace(b'"@@raw@@"', text.encode("utf-8", "surrogatepass"))
            members[index] = Member.stored("data", content)
        elif kind == "data_document":
            members = [member for member in members if member.name != "data"]
            members.insert(0, Member.stored("data", args[0].encode("utf-8", "surrogatepass")))
        elif kind == "data_bytes":
            for position, member in enumerate(members):
                if member.name == "data":
                    members[position] = Member.stored("data", apply_byte_ops(member.payload, args[0]))
        elif kind == "member_bytes" and members:
            index = index_of(args[0])
            member = members[index]
            mutated = apply_byte_ops(member.payload, args[1])
            members[index] = (Member.stored(member.name, mutated) if member.method == zipfile.ZIP_STORED else
                              Member(member.name, mutated, member.method, member.crc, member.size))
        elif kind == "drop" and members:
            del members[index_of(args[0])]
        elif kind == "duplicate" and members:
            member = members[index_of(args[0])]
            content = apply_byte_ops(member.payload, args[1]) if member.method == zipfile.ZIP_STORED else member.payload
            members.append(Member.stored(member.name, content) if member.method == zipfile.ZIP_STORED else member)
        elif kind == "rename" and members:
            members[index_of(args[0])].name = args[1]
        elif kind == "bomb":
            name, declared = args
            size = {"honest": BOMB_SIZE, "small": 100, "huge": 2**32 - 1}[declared]
            members = [member for member in members if member.name != name]
            members.append(Member(name, bomb.payload, zipfile.ZIP_DEFLATED, bomb.crc, size))
        elif kind == "lie" and members:
            member = members[index_of(args[0])]
            field_name, number = args[1], args[2] & 0xFFFFFFFF
            if field_name == "compressed":  # the payload's length is written from the payload: cut it instead
                member.payload = member.payload[: number % (len(member.payload) + 1)]
            else:
                setattr(member, field_name, number)
        elif kind == "method" and members:
            member = members[index_of(args[0])]
            member.method = args[1]
        elif kind == "deflate" and members:
            index = index_of(args[0])
            member = members[index]
            if member.method == zipfile.ZIP_STORED:
                members[index] = Member.deflated(member.name, member.payload)
        elif kind == "many":
            members += [Member.stored(f"junk/{number}", b"") for number in range(args[0])]
    return build_zip(members)


# ---------------------------------------------------------------------------------------------
# YAML

YAML_KEYS = ["policy", "policy_kwargs", "policy_kwargs.net_arch", "policy_kwargs.activation_fn",
             "policy_kwargs.optimizer_class", "env_kwargs", "normalize", "n_envs", "n_timesteps",
             "env_wrapper", "vec_env_wrapper", "frame_stack", "callback", "learning_rate", "clip_range", "n_steps",
             "gamma", "noise_type", "noise_std", "replay_buffer_class", "replay_buffer_kwargs", "rollout_buffer_class",
             "rollout_buffer_kwargs", "unknown_key", "use_sde", "<<", "default", "normalize_kwargs"]
PYTHON_TAGS = [
    f'!!python/object/apply:os.system ["{SHELL_CODE}"]',
    f'!!python/object/apply:subprocess.Popen [["touch", "{MARKER}"]]',
    f'!!python/object/new:builtins.exec ["{EXEC_CODE}"]',
    "!!python/name:os.system", "!!python/module:os", "!!python/object:builtins.object {}",
    f'!!python/object/apply:collections.OrderedDict [[[a, !!python/object/apply:os.system ["{SHELL_CODE}"]]]]',
    "!!python/object/apply:collections.OrderedDict [[[net_arch, [64, 64]]]]",
    "!!python/object/apply:collections.OrderedDict []", "!!python/object/apply:collections.OrderedDict [1]",
    "!!python/object/apply:collections.OrderedDict [[1]]",
    "!!python/tuple [1, 2]", "!!python/tuple 5", "!!python/bytes AAAA", "!!binary AAAA", "!!set {a, b}",
    "!!omap [a: 1]", "!!timestamp 2001-12-14", "!!float 1e999", "!!int 0x7fffffffffffffffffff",
]
YAML_SCALARS = [
    "1e999", "-.inf", ".nan", "~", "[]", "{}", "yes", "'lin_1e999'", "lin_-1", "lin_nan", "lin_", "'lin_1e5000'",
    '"dict(net_arch=[1000000000])"', '"dict(net_arch=[10**9])"', '"nn.ReLU"', '"os.system"', '"torch.load"',
    '"numpy.load"', "torch.nn.Module", '"gymnasium.wrappers.RecordVideo"', "\"[{'torch.load': {}}]\"",
    "'dict(activation_fn=torch.load)'", "'dict(features_extractor_class=torch.nn.Module)'",
    "'dict(activation_fn=__import__)'", "'dict(x=().__class__.__bases__[0])'", "'dict(**{})'", "'dict(' ",
    '"stable_baselines3.common.vec_env.VecFrameStack"', "'{norm_obs: true}'", "\"{'norm_obs': os.system}\"",
    "[{gymnasium.wrappers.TimeLimit: {max_episode_steps: 5}}]", "[{os.system: {}}]", "rlhub.hub.push",
    "stable_baselines3.common.buffers.ReplayBuffer", "normal", "ornstein-uhlenbeck", "1000000000", "-1", "0",
    "9" * 5000, "0b" + "1" * 10_000, "'" + "a" * 100_000 + "'",
]


def yaml_flow(value: Any) -> str:
    """``value`` as one line of YAML flow style."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9)
    return text.removesuffix("\n...\n").strip()


def alias_definitions(levels: int, width: int, kind: str) -> str:
    """A top-level ``_defs`` key whose anchors double (``width`` times) at each of ``levels`` levels."""
    lines = ["_defs:", '  - &b0 "lol"']
    for level in range(1, levels + 1):
        refs = [f"*b{level - 1}"] * width
        body = ", ".join(refs) if kind == "list" else ", ".join(f"k{i}: {ref}" for i, ref in enumerate(refs))
        lines.append(f"  - &b{level} {'[' if kind == 'list' else '{'}{body}{']' if kind == 'list' else '}'}")
    return "\n".join(lines) + "\n"


YAML_VALUES = st.one_of(
    st.sampled_from(PYTHON_TAGS),
    st.sampled_from(YAML_SCALARS),
    st.just("@ALIAS@"),
    st.sampled_from(["&r [*r]", "&r {a: *r}", "&r {net_arch: *r}", "&r [[*r]]", "!!python/tuple &r [*r]",
                     "!!python/object/apply:collections.OrderedDict &r [[[a, *r]]]"]),
    st.builds(lambda depth, kind: ("[" * depth + "]" * depth) if kind == "list" else ("{a: " * depth + "1" + "}" * depth),
              st.sampled_from([10, 1000, 100_000]), st.sampled_from(["list", "dict"])),
    st.builds(lambda n, kind: {"string": "'" + "a" * n + "'", "net_arch": '"dict(net_arch=[' + "64, " * n + '])"',
                               "list": "[" + "1, " * n + "]"}[kind],
              # 10**5 (100 000 values, 300 kB: near the YAML caps) costs seconds a case: long runs only
              st.sampled_from([10, 10**4, 10**6, *([10**5] if EXAMPLES else [])]),
              st.sampled_from(["string", "net_arch", "list"])),
    JSON_VALUES.map(yaml_flow),
)


@dataclass(frozen=True)
class YamlSeed:
    label: str
    algo_id: str
    env_id: str
    section: dict[str, Any]


def render_yaml(seed: YamlSeed, edits: list[tuple[str, str]], aliases: tuple[int, int, str] | None,
                whole_document: str | None) -> str:
    if whole_document is not None:
        text = whole_document
    else:
        lines = [f"  {key}: {yaml_flow(value)}"
                 for key, value in seed.section.items() if key not in {key for key, _ in edits}]
        for key, value in edits:
            if key.startswith("policy_kwargs."):
                lines.append(f"  policy_kwargs: {{{key.split('.', 1)[1]}: {value}}}")
            else:
                lines.append(f"  {key}: {value}")
        text = f"{seed.env_id}:\n" + "\n".join(lines) + "\n"
    if "@ALIAS@" in text:
        levels, width, kind = aliases or (3, 2, "list")
        text = alias_definitions(levels, width, kind) + text.replace("@ALIAS@", f"*b{levels}")
    return text


# ---------------------------------------------------------------------------------------------
# The corpus: files of two real runs, built once per module


@dataclass
class Agent:
    label: str
    algo_id: str
    env_id: str
    algo_class: type
    env: Any
    config: Any
    run_dir: Path


@dataclass
class Corpus:
    agents: list[Agent]
    pickles: list[PickleSeed]
    payloads: dict[str, bytes]
    zips: list[ZipSeed]
    yamls: list[YamlSeed]
    vec_normalize: bytes
    bomb: Bomb
    scratch: Path

    def __repr__(self) -> str:  # Hypothesis prints the fixture with a failing case
        return f"<fuzz corpus of {', '.join(agent.label for agent in self.agents)}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Iterator[Corpus]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in TEST_CAPS.items():  # a cap already set in the environment wins
            patch.setenv(name, os.environ.get(name, value))
        yield from _build_corpus(tmp_path_factory)


def _build_corpus(tmp_path_factory) -> Iterator[Corpus]:
    from rlhub.envs import make_vec_env
    from rlhub.experiment import TrainOptions, train
    from rlhub.registry import get_algorithm

    logs = tmp_path_factory.mktemp("fuzz_runs")
    agents, pickles, zips, yamls = [], [], [], []
    for algo_id, env_id in (("a2c", "Pendulum-v1"), ("ppo", "CartPole-v1")):
        run_dir = train(TrainOptions(algo_id, env_id, n_timesteps=64, log_folder=logs, seed=0, eval_freq=-1,
                                     verbose=0, device="cpu")).run_dir
        algo_class = get_algorithm(algo_id).load()
        config = safe_loading.load_config(run_dir / "config.yml", algo_id, env_id, algo_class)
        label = f"{algo_id}-{env_id}"
        agents.append(Agent(label, algo_id, env_id, algo_class, make_vec_env(env_id, n_envs=1), config, run_dir))
        with zipfile.ZipFile(run_dir / f"{env_id}.zip") as archive:
            members = tuple((info.filename, archive.read(info)) for info in archive.infolist())
        zips.append(ZipSeed(label, members))
        for key, value in json.loads(dict(members)["data"]).items():
            if isinstance(value, dict) and ":serialized:" in value:
                pickles.append(PickleSeed.of(f"{label}:{key}", base64.b64decode(value[":serialized:"])))
        raw = yaml.safe_load((run_dir / "config.yml").read_text())
        yamls.append(YamlSeed(label, algo_id, env_id, raw[env_id]))
    vec_normalize = (agents[0].run_dir / "vec_normalize.pkl").read_bytes()
    pickles.append(PickleSeed.of("vec_normalize.pkl", vec_normalize))
    payloads = payload_pickles()
    pickles += [PickleSeed.of(label, data) for label, data in payloads.items()]
    scratch = tmp_path_factory.mktemp("fuzz_cases")
    _WATCH.read_roots = tuple(os.path.realpath(root) + os.sep for root in
                              {scratch, logs, sys.prefix, sys.base_prefix, sys.exec_prefix,
                               Path(safe_loading.__file__).parents[1], Path(yaml.__file__).parents[1]})
    built = Corpus(agents, pickles, payloads, zips, yamls, vec_normalize, make_bomb(), scratch)
    for agent in agents:  # warm up: the first load imports what every later one uses
        load_agent_files(agent, agent.run_dir / f"{agent.env_id}.zip", agent.run_dir / "config.yml")
    safe_loading.read_vec_normalize(agents[0].run_dir / "vec_normalize.pkl")
    yield built
    if os.environ.get("RLHUB_FUZZ_STATS"):
        _write_stats(Path(os.environ["RLHUB_FUZZ_STATS"]))


def _write_stats(path: Path) -> None:
    existing = json.loads(path.read_text()) if path.exists() and path.stat().st_size else {}
    for target, stats in STATS.items():
        existing[target] = {**stats.__dict__, "errors": dict(stats.errors)}
    path.write_text(json.dumps(existing, indent=2))


def load_agent_files(agent: Agent, zip_path: Path, config_path: Path | None = None) -> Any:
    config = agent.config
    if config_path is not None:
        config = safe_loading.load_config(config_path, agent.algo_id, agent.env_id, agent.algo_class)
    return safe_loading.load_model(agent.algo_class, zip_path, agent.env, config=config, device="cpu")


class MalformedPickle(Exception):
    """``restricted_loads`` refused a malformed pickle with a plain exception (``UnpicklingError``,
    ``EOFError``, ``KeyError``, ...). It is the low-level reader: every caller (the model zip and
    VecNormalize readers, tested below) turns any ``Exception`` from it into ``UnsafeAgentError``, so
    here that is a clear refusal too; resource errors (``MemoryError``, ``RecursionError``) are not."""


def read_pickle(data: bytes) -> list[str]:
    """What a loader does with a pickle: read it, audit it, and take it as data if it is data."""
    try:
        obj = safe_loading.restricted_loads(data)
    except (*ALLOWED_ERRORS, MemoryError, RecursionError):
        raise
    except Exception as error:
        raise MalformedPickle(f"{type(error).__name__}: {error}") from error
    problems = safe_loading.audit(obj)
    with contextlib.suppress(safe_loading.NotData):  # materialize's answer for objects
        safe_loading.materialize(obj)
    return problems


def read_statistics(path: Path, env: Any) -> Any:
    return safe_loading.wrap_vec_normalize(env, safe_loading.read_vec_normalize(path))


def read_config(path: Path, seed: YamlSeed, agent: Agent) -> Any:
    safe_loading.read_yaml(path)
    return safe_loading.load_config(path, seed.algo_id, seed.env_id, agent.algo_class)


# ---------------------------------------------------------------------------------------------
# The properties


def test_seeds_load_cleanly(corpus):
    """The harness itself: real files load under watch and within budget (no false alarms)."""
    for agent in corpus.agents:
        zip_path, config_path = agent.run_dir / f"{agent.env_id}.zip", agent.run_dir / "config.yml"
        read = functools.partial(load_agent_files, agent, zip_path, config_path)
        outcome = run_case("seeds", f"{agent.label} model", read, zip_path.read_bytes() + config_path.read_bytes())
        assert outcome.error is None, outcome.error
    outcome = run_case("seeds", "vec_normalize.pkl",
                       lambda: read_statistics(corpus.agents[0].run_dir / "vec_normalize.pkl", corpus.agents[0].env),
                       corpus.vec_normalize)
    assert outcome.error is None, outcome.error
    for seed in corpus.pickles:
        if not seed.label.startswith("payload:"):
            outcome = run_case("seeds", seed.label, functools.partial(read_pickle, seed.data), seed.data)
            assert outcome.error is None and outcome.result == [], (seed.label, outcome)


#: The minimal input of each failure these tests found: (bug, target, agent index, zip edits or config text).
FOUND_FAILURES = [
    # a zip member marked LZMA that is not: _lzma.LZMAError escaped archives.read_member
    ("lzma", "model_zip", 1, [("method", 0, 14)]),
    # TypeError escaped read_yaml (configs._ordered_dict)
    ("ordered_dict", "config", 1, "!!python/object/apply:collections.OrderedDict [1]\n"),
    ("ordered_dict", "config", 1, "!!python/object/apply:collections.OrderedDict [[1]]\n"),
    # TypeError escaped load_config (rlhub.config._resolve_normalize)
    ("normalize_kwargs", "config", 1, "CartPole-v1:\n  normalize: true\n  normalize_kwargs: '5'\n"),
    ("normalize_kwargs", "config", 1, "CartPole-v1:\n  normalize: true\n  normalize_kwargs: '[1]'\n"),
    # SB3's own errors escaped load_model for saved values of the wrong type
    ("hyperparameter_types", "model_zip", 1, [("plain", "n_steps", None)]),  # TypeError
    ("hyperparameter_types", "model_zip", 1, [("plain", "seed", "8")]),  # TypeError
    ("hyperparameter_types", "model_zip", 1, [("plain", "clip_range", None)]),  # AssertionError
    ("hyperparameter_types", "model_zip", 0, [("plain", "rollout_buffer_class", {})]),  # TypeError
    ("hyperparameter_types", "model_zip", 1, [("plain", "n_steps", 2**63)]),  # ValueError
    ("hyperparameter_types", "model_zip", 0, [("plain", "policy_kwargs", {"net_arch": [-1]})]),  # RuntimeError
    # sizes: memory (net_arch: torch's, which tracemalloc does not see; the RSS check does)
    ("hyperparameter_sizes", "model_zip", 0, [("plain", "n_steps", 10**7)]),  # 381 MiB of rollout buffer
    ("hyperparameter_sizes", "model_zip", 1, [("plain", "n_steps", 10**9)]),  # numpy asked for 15 GiB
    ("network_size", "model_zip", 0, [("plain", "policy_kwargs", {"net_arch": [20_000, 20_000]})]),  # 1.5 GB
    # a state dict renamed to tensors.pth: its names set as variables, AttributeError escaped load_model
    ("variable_names", "model_zip", 1, [("plain", "start_time", [1000000000]), ("duplicate", 345180266, []),
                                        ("rename", 8980, "tensors.pth")]),
    # memory: 300 000 YAML values in 0.9 MB, composed before the node cap is checked
    ("yaml_nodes", "config", 1, "CartPole-v1:\n  policy: [" + "1, " * 300_000 + "]\n"),
]


#: Cases that take seconds (PyYAML composing 300 000 values under tracemalloc): run with ``-m slow``.
_SLOW_CASES = {"yaml_nodes"}


@pytest.mark.parametrize(("bug", "target", "index", "case"), [
    pytest.param(*case, marks=[pytest.mark.xfail(case[0] in KNOWN_BUGS, reason=f"known bug: {case[0]}", strict=False),
                               *([pytest.mark.slow] if case[0] in _SLOW_CASES else [])])
    for case in FOUND_FAILURES], ids=[f"{case[0]}-{number}" for number, case in enumerate(FOUND_FAILURES)])
def test_found_failures(corpus, bug, target, index, case):
    """Each failure the fuzzing found, by its minimal input (a known bug's fails until it is fixed)."""
    agent = corpus.agents[index]
    failed_before = STATS["found_failures"].failed
    if target == "config":
        path = corpus.scratch / "config.yml"
        path.write_text(case)
        run_case("found_failures", brief(case), lambda: read_config(path, corpus.yamls[index], agent), case.encode())
    else:
        archive = apply_zip_edits(corpus.zips[index], case, list(corpus.payloads.values()), corpus.bomb)
        path = corpus.scratch / f"{agent.env_id}.zip"
        path.write_bytes(archive)
        run_case("found_failures", f"agent={agent.label} edits={brief(case)}", lambda: load_agent_files(agent, path), archive)
    assert STATS["found_failures"].failed == failed_before  # (survey mode counts instead of raising)


def _sleep_past_budget() -> None:
    time.sleep(3 * TIME_BUDGET)


@pytest.mark.parametrize(("what", "read"), [
    ("a shell command", lambda: os.system("true")),
    ("exec of a string", lambda: exec("1 + 1")),  # noqa: S102 - what the hook must catch
    ("an import outside the trusted packages", lambda: __import__("rlhub_fuzz_no_such_module")),
    ("writing the canary", lambda: MARKER.write_text("x")),
    ("real unpickling", lambda: pickle.loads(b"cbuiltins\nlen\n.")),
    ("100 MB of numpy", lambda: __import__("numpy").ones(100 << 17)),
    ("an unclear error", lambda: {}["key"]),
    ("a hang", _sleep_past_budget),
])
def test_harness_catches(corpus, what, read, monkeypatch):
    """The harness itself: each kind of misbehaviour fails a case (and is stopped where it can be)."""
    monkeypatch.setattr(sys.modules[__name__], "TIME_BUDGET", 0.2)
    failed_before = STATS["harness"].failed
    try:
        run_case("harness", what, read)
    except AssertionError:
        pass
    assert STATS["harness"].failed == failed_before + 1, f"{what} went unnoticed"
    assert not MARKER.exists()


@pytest.mark.parametrize("payload", sorted(payload_pickles()))
def test_payloads_are_refused_without_running(corpus, payload):
    """The canaries: each payload is refused (a cloudpickled function is kept as inert data) and never runs."""
    data = corpus.payloads[payload]
    inert = payload == "payload:lambda_schedule"  # a rebuilt function is data until someone calls it
    outcome = run_case("payloads", f"{payload} pickle", lambda: read_pickle(data), data)
    assert inert or outcome.error is not None or outcome.result, f"{payload} passed the audit"

    statistics = corpus.scratch / "vec_normalize.pkl"
    statistics.write_bytes(data)
    outcome = run_case("payloads", f"{payload} as vec_normalize.pkl",
                       lambda: read_statistics(statistics, corpus.agents[0].env), data)
    assert isinstance(outcome.error, safe_loading.UnsafeAgentError), outcome

    agent, seed = corpus.agents[1], corpus.zips[1]
    archive = corpus.scratch / f"{agent.env_id}.zip"
    archive.write_bytes(apply_zip_edits(seed, [("payload", 0, 0)], [data], corpus.bomb))
    outcome = run_case("payloads", f"{payload} as a model's first pickle", lambda: load_agent_files(agent, archive),
                       archive.read_bytes())
    assert inert or isinstance(outcome.error, safe_loading.UnsafeAgentError), outcome
    assert not MARKER.exists()


@fuzz_settings(200)
@given(data=st.data())
def test_fuzz_pickle_reader(corpus, data):
    """restricted_loads + audit + materialize on mutated pickles."""
    description, pickled = data.draw(mutated_pickles(corpus.pickles), label="pickle")
    if len(pickled) <= 400:
        note(f"pickle bytes: {pickled!r}")
    run_case("pickle", description, lambda: read_pickle(pickled), pickled)


@fuzz_settings(100)
@given(data=st.data())
def test_fuzz_vec_normalize(corpus, data):
    """read_vec_normalize (and wrapping an env with what it read) on mutated statistics."""
    seeds = [seed for seed in corpus.pickles if seed.label == "vec_normalize.pkl"] * 4 + corpus.pickles
    description, pickled = data.draw(mutated_pickles(seeds), label="vec_normalize.pkl")
    path = corpus.scratch / "vec_normalize.pkl"
    path.write_bytes(pickled)
    run_case("vec_normalize", description, lambda: read_statistics(path, corpus.agents[0].env), pickled)


def _fuzz_model_zip(corpus: Corpus, data: Any, edit_strategy: Any, target: str) -> None:
    index = data.draw(st.sampled_from(range(len(corpus.agents))), label="agent")
    agent, seed = corpus.agents[index], corpus.zips[index]
    edits = data.draw(st.lists(edit_strategy, min_size=1, max_size=3), label="edits")
    byte_ops = data.draw(st.lists(BYTE_OPS, max_size=2), label="zip byte_ops")
    archive = apply_byte_ops(apply_zip_edits(seed, edits, list(corpus.payloads.values()), corpus.bomb), byte_ops)
    path = corpus.scratch / f"{agent.env_id}.zip"
    path.write_bytes(archive)
    run_case(target, f"agent={agent.label} edits={brief(edits)} byte_ops={brief(byte_ops)}",
             lambda: load_agent_files(agent, path), archive)


@fuzz_settings(100)
@given(data=st.data())
def test_fuzz_model_zip(corpus, data):
    """load_model (read_model_zip, then rebuilding the agent) on mutated model zips."""
    _fuzz_model_zip(corpus, data, ZIP_EDITS, "model_zip")


@fuzz_settings(50)
@given(data=st.data())
def test_fuzz_model_zip_saved_hyperparameters(corpus, data):
    """load_model on zips whose ``data`` JSON gives the constructor arguments other values: values of
    the wrong type, and sizes that allocate (``n_steps``, ``policy_kwargs.net_arch``; left out while
    "hyperparameter_sizes" is a known bug)."""
    _fuzz_model_zip(corpus, data, HYPERPARAMETER_EDITS, "model_zip_hyperparameters")


@fuzz_settings(150)
@given(data=st.data())
def test_fuzz_config(corpus, data):
    """read_yaml and load_config on mutated configs: Python tags, alias bombs, deep nesting, long strings."""
    index = data.draw(st.sampled_from(range(len(corpus.yamls))), label="config")
    seed, agent = corpus.yamls[index], corpus.agents[index]
    edits = data.draw(st.lists(st.tuples(st.sampled_from(YAML_KEYS), YAML_VALUES), max_size=3), label="edits")
    aliases = data.draw(st.tuples(st.integers(1, 40), st.integers(2, 10), st.sampled_from(["list", "dict"])),
                        label="aliases (levels, width, kind)")
    whole = data.draw(st.none() | YAML_VALUES, label="whole document") if data.draw(st.booleans()) else None
    byte_ops = data.draw(st.lists(BYTE_OPS, max_size=3), label="byte_ops")
    text = render_yaml(seed, edits, aliases if "@ALIAS@" in str(edits) + str(whole) else None, whole)
    raw = apply_byte_ops(text.encode("utf-8", "surrogatepass"), byte_ops)
    if "yaml_nodes" in KNOWN_BUGS:  # where that bug lives: over 400 kB, under the 1 MB cap
        assume(not 400_000 < len(raw) <= 1 << 20)
    if len(raw) <= 600:
        note(f"config.yml bytes: {raw!r}")
    path = corpus.scratch / "config.yml"
    path.write_bytes(raw)
    description = (f"config={seed.label} edits={brief(edits)} aliases={aliases!r} whole={brief(whole)} "
                   f"byte_ops={brief(byte_ops)}")
    run_case("config", description, lambda: read_config(path, seed, agent), raw)
