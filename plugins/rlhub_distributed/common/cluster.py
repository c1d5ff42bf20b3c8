"""Joining a Ray cluster, or starting an embedded one for the length of a run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rlhub.config import ConfigError
from rlhub.envs import MissingDependencyError

#: Workers an embedded Ray instance runs per CPU at most (each steps its envs in a process of its own).
MAX_LOCAL_WORKERS_PER_CPU = 4

INSTALL_HINT = "pip install 'rlhub[ray]' (or: pip install 'ray>=2.9')"


def import_ray() -> Any:
    """Ray itself, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as error:
        raise MissingDependencyError(f"the distributed algorithms run their workers on Ray, which is not installed: "
                          f"{INSTALL_HINT}") from error
    return ray


@contextmanager
def ray_session(address: str | None, n_workers: int) -> Iterator[Any]:
    """Ray, connected for the ``with`` block.

    ``address`` (else ``$RAY_ADDRESS``) joins an existing cluster; without either, a local Ray
    instance sized to the machine (but with room for every worker) starts here and stops after.
    A session the caller opened already is used and left open.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    quiet = dict(log_to_driver=False, include_dashboard=False, configure_logging=False)
    if address is None and n_workers > MAX_LOCAL_WORKERS_PER_CPU * (os.cpu_count() or 1):
        raise ConfigError(f"{n_workers} workers on a machine of {os.cpu_count()} CPUs would spend their time waiting "
                          "for one: ask for fewer (--n-workers), or join a cluster with room for them (--ray-address)")
    if address is None:
        # Ray runs its workers at niceness 15, to keep its own daemons responsive; but here the workers
        # are the run's work, and at 15 any other busy process starves them (65 instead of 1,300 steps/s
        # beside two other jobs on 2 cores).
        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, n_workers), _system_config={"worker_niceness": 0},
                 **quiet)
    else:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ConfigError(f"cannot join the Ray cluster at {address}: {error}. Start one with `ray start "
                                  "--head`, or leave out --ray-address (and RAY_ADDRESS) for a local one") from error
        _check_room(ray, n_workers, address)
    try:
        yield ray
    finally:
        ray.shutdown()  # stops an embedded instance; only disconnects from a cluster


def _check_room(ray: Any, n_workers: int, address: str) -> None:
    cpus = ray.cluster_resources().get("CPU", 0)
    if cpus < n_workers:
        ray.shutdown()
        raise ConfigError(f"the Ray cluster at {address} has {cpus:g} CPUs and each of the {n_workers} workers needs "
                         "one: add nodes or ask for fewer workers (--n-workers)")
