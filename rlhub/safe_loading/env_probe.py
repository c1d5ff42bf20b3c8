"""Build a downloaded agent's environment once in a bounded child process before building it for real.

A manifest's ``env_kwargs`` choose how large the environment is: ``N: 100000`` agents make an MPE
game whose constructor alone runs for hours (its spaces are computed agent by agent, each against
every other). No allow-list can tell a hostile number from a legitimate one for every environment,
so the cost is measured instead: a forked child builds the environment, resets it and takes one
step under a CPU-time and a memory limit set with ``setrlimit``. Fork, not spawn: the child starts
with rlhub already imported, so a small environment is checked in milliseconds.

Only running out of a limit is reported here. Any other failure of the child (a missing package,
a bad keyword) is left to the real build, which reports it as it always does.
"""

from __future__ import annotations

import os
import reprlib
import resource
import signal
import sys
import time
from typing import Any, Mapping

from rlhub.safe_loading.limits import limits

_OUT_OF_MEMORY = 3
_FAILED = 4
_KILLED_FOR_CPU = (signal.SIGXCPU, signal.SIGKILL)


def check_env_cost(env_id: str, env_kwargs: Mapping[str, Any], where: str) -> None:
    """Raise :class:`ResourceLimitError` if building ``env_id`` with ``env_kwargs``, resetting it and
    stepping it once takes more CPU time or memory than :mod:`.limits` allow.

    Skipped where ``os.fork`` does not exist (Windows), and for an env made with no keyword arguments:
    without them the environment is the one its package registered.
    """
    if not env_kwargs or not hasattr(os, "fork"):
        return
    caps = limits()
    seconds, memory = caps.env_cpu_seconds, caps.env_memory_bytes
    _import_what_the_build_needs(env_id)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os._exit(_build_under_limits(env_id, dict(env_kwargs), seconds.value, memory.value))
    deadline = time.monotonic() + 4 * seconds.value + 10  # a child blocked off the CPU: wall time bounds it too
    while True:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            break
        time.sleep(0.01)
    what = f"building {where}'s environment {env_id} with env_kwargs {reprlib.repr(dict(env_kwargs))}"
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) in _KILLED_FOR_CPU:
        raise seconds.exceeded(what)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == _OUT_OF_MEMORY:
        raise memory.exceeded(what)


def _import_what_the_build_needs(env_id: str) -> None:
    """Import rlhub's env factory and the env's own module here, so that mapping their libraries
    (torch's alone reserves more than a gigabyte) does not count against the child's memory limit."""
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    from rlhub.envs import ensure_registered

    gym_id = ensure_registered(env_id)
    entry_point = gym.registry[gym_id].entry_point if gym_id in gym.registry else None
    if isinstance(entry_point, str):
        try:
            load_env_creator(entry_point)
        except (ImportError, AttributeError, gym.error.Error):
            pass  # the real build reports it


def _build_under_limits(env_id: str, env_kwargs: dict[str, Any], cpu_seconds: int, memory_bytes: int) -> int:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # the real build prints whatever the environment prints, once
        os.dup2(devnull, 2)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))  # a forked child starts at 0 s
        mapped, resident = _memory()
        if mapped:
            resource.setrlimit(resource.RLIMIT_AS, (mapped + memory_bytes, resource.RLIM_INFINITY))
        from rlhub.envs import make_single_env

        env = make_single_env(env_id, env_kwargs)
        env.reset(seed=0)
        env.step(env.action_space.sample())
        env.close()
    except MemoryError:
        return _OUT_OF_MEMORY
    except BaseException:  # noqa: BLE001  # the real build reports it
        return _FAILED
    # The address-space limit counts only new mappings; a long-lived process's allocator may hold
    # freed memory already mapped, which the build can fill unnoticed: measure what it touched too.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    if resident and peak - resident > memory_bytes:
        return _OUT_OF_MEMORY
    return 0


def _memory() -> tuple[int, int]:
    """This process's virtual and resident memory now, in bytes (RLIMIT_AS counts all virtual memory,
    torch's reserved ranges included); zeros where /proc does not tell (then only CPU time is bounded)."""
    try:
        with open("/proc/self/statm") as statm:
            size, resident = statm.read().split()[:2]
        page = os.sysconf("SC_PAGE_SIZE")
        return int(size) * page, int(resident) * page
    except (OSError, ValueError):
        return 0, 0
