"""Jobs on a Ray cluster: ``siamtrack eval ... --ray [ADDRESS]`` and ``siamtrack track-many ... --ray [ADDRESS]``.

Ray (``pip install 'siamtrack[ray]'``) runs the same Python function on this machine or on a cluster: with no
address (``--ray`` alone) a Ray instance is started here for the run; ``auto`` joins the cluster this machine is
part of, ``ray://HOST:10001`` one reached through its client server. Only this module imports Ray.

Evaluation (:func:`tracker.eval.runner.ray_calls`): one task per (tracker, sequence), asking for the CPUs (or the
GPU) it needs. A task tracks and returns its boxes, times and confidences; the driver writes the result files
atomically, as the local runner does, so a task that dies leaves no file, and Ray runs it again (``max_retries``).
Each worker process builds a tracker once per spec and reuses it for the sequences it is given (``init`` starts
every sequence afresh).
Sequences are read by the tasks from their paths, so on a cluster the dataset must be at the same path on every
node (a shared or synced folder).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable

__all__ = ["connect", "run_tasks", "resources", "fault_hook", "RayError", "FAULT_ENV"]

# Test hook: a path; a task that finds no file there creates it and kills its own worker process mid-task, once, so
# tests can check that Ray retries the task and that no partial output is left.
FAULT_ENV = "SIAMTRACK_TEST_KILL_WORKER_ONCE"
RETRIES = 3  # times Ray runs a task again whose worker process died


class RayError(ValueError):
    """Ray is missing, or the cluster cannot be reached: a one-line message naming ``--ray``."""


def connect(address: str | None, num_cpus: int | None = None) -> Any:
    """Start a Ray instance here (``address`` None or ``"local"``; ``num_cpus``: its CPUs, default all) or join
    the cluster at ``address``; returns the ``ray`` module. A missing Ray or an unreachable address is a
    :class:`RayError`."""
    try:
        import ray
    except ImportError:
        raise RayError("--ray needs Ray: pip install 'siamtrack[ray]'") from None
    if ray.is_initialized():
        return ray
    local = address in (None, "", "local")
    if not local and address != "auto":
        _check_reachable(address)
    try:
        if local:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except Exception as e:  # ConnectionError, TimeoutError, RuntimeError, ValueError, depending on the address
        where = "could not start a local Ray instance" if local else f"cannot reach the Ray cluster at {address!r}"
        raise RayError(f"--ray: {where} ({' '.join(str(e).split())[:300]})") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, with a :class:`RayError`, where nothing answers at ``address`` (``[ray://]HOST:PORT``): Ray itself
    waits minutes for a head node that is not there."""
    import socket

    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise RayError(f"--ray: {address!r} is not a cluster address (auto, HOST:PORT or ray://HOST:PORT)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise RayError(f"--ray: cannot reach the Ray cluster at {address!r} ({e.strerror or e})") from None


def fault_hook():
    """The test hook of :data:`FAULT_ENV` as an ``on_frame`` callback for a task (kills its worker process at the
    third frame, once), or None when it is not set or has fired."""
    fault = os.environ.get(FAULT_ENV)
    if not fault or os.path.exists(fault):
        return None
    seen = [0]

    def on_frame(k: int) -> None:
        seen[0] += k
        if seen[0] == 3:  # mid-sequence
            open(fault, "w").close()
            os._exit(1)
    return on_frame


def resources(device: str, threads: int) -> dict:
    """What a tracking task asks Ray for: one GPU (and a CPU) on ``cuda``, else ``threads`` CPUs."""
    if device.startswith("cuda"):
        return {"num_cpus": 1, "num_gpus": 1}
    return {"num_cpus": threads}


def run_tasks(ray, calls: Iterable[tuple[Callable, tuple, dict]], on_done: Callable[[Any], None]) -> None:
    """Run ``calls`` (function, args, Ray resource options) as Ray tasks, calling ``on_done(result)`` in this process
    as each finishes (in the order they finish); a task's exception is raised here once the others are cancelled."""
    remote = {}
    refs = []
    for fn, args, options in calls:
        if fn not in remote:
            remote[fn] = ray.remote(max_retries=RETRIES)(fn)
        refs.append(remote[fn].options(**options).remote(*args))
    try:
        while refs:
            done, refs = ray.wait(refs, num_returns=1)
            on_done(ray.get(done[0]))
    except BaseException:
        for r in refs:
            ray.cancel(r, force=True)
        raise
