"""Start or join Ray: a local Ray in-process on loopback by default, an existing
cluster with ``address`` or ``RAY_ADDRESS``. Quiet: our progress view replaces Ray
Data's per-operator bars; Ray's own warnings that are not about the user's run
(token authentication of a loopback-only local node, progress bars disabled) are
turned off; the dashboard address is printed once when there is one."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import ray  # noqa: TID251 - the runner is where Ray lives


def start_ray(address: str | None = None, num_cpus: int | None = None,
              say: Callable[[str], None] | None = None, num_gpus: int | None = None,
              filter_stderr: bool = False) -> None:
    """Idempotent: reuses a running session (tests share one per run).
    ``filter_stderr`` (the CLI) drops Ray's known-spurious native log lines; it starts
    after Ray's own processes, so they never write into the filter's pipe."""
    if ray.is_initialized():
        quiet_ray_data()
        tighten_scheduling_tick()
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ctx = ray.init(address=address, logging_level=logging.WARNING,
                       log_to_driver=True)
        url = getattr(ctx, "dashboard_url", None)
        if url and say is not None:
            say(f"curate: Ray dashboard: http://{url}")
    else:
        # A local node bound to loopback serves nobody else: no token to set up.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the node
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        ray.init(
            address="local",  # never attach to a cluster left behind in /tmp/ray
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            include_dashboard=False,
            logging_level=logging.WARNING,
            configure_logging=True,
        )
    quiet_ray_data()
    tighten_scheduling_tick()
    if filter_stderr:
        from curation.stderr_filter import StderrFilter

        StderrFilter().start()


# How long Ray Data's scheduling loop waits for running tasks before it looks again.
# Ray's 0.1 s is a wait for *all* running tasks (``ray.wait(num_returns=all)``), so
# a task that finishes early leaves its CPU idle for up to 0.1 s before the next one
# starts: measured at 40% of a pass of 0.2 s units (re-filter, 60k docs: 4,480 ->
# 6,150 docs/s) and 25-30% of the decision-applying passes of bench/scale.py. At
# 0.01 s the loop costs the driver ~5% of a core.
SCHEDULING_TICK_S = 0.01


def tighten_scheduling_tick(tick_s: float = SCHEDULING_TICK_S) -> bool:
    """Shorten Ray Data's task-completion wait (a module constant, no public knob).
    Returns False when this Ray has no such constant (a test pins that it does)."""
    from ray.data._internal.execution import streaming_executor_state as state

    if not hasattr(state, "WAIT_FOR_TASK_COMPLETION_TIMEOUT_S"):
        return False
    state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S = tick_s
    return True


def quiet_ray_data() -> None:
    """Our own progress view replaces Ray Data's per-operator output."""
    from ray.data import DataContext
    from ray.util.debug import log_once

    ctx = DataContext.get_current()
    # An infrastructure fault inside a stage is retried by Ray Data (the whole map
    # task, twice); data errors never reach this point (they become drops).
    ctx.retried_map_errors = ["InfrastructureError"]
    ctx.max_map_retries = 2
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    log_once("ray_data_progress_manager_disabled")  # "Progress bars disabled" once
    # "no available CPUs, the job will hang" is a one-instant snapshot taken when an
    # execution starts: between our back-to-back passes and fits it catches the last
    # tasks of the previous one releasing their CPUs, and nothing hangs
    log_once("cpu_warning")
    for name in ("ray.data", "ray.data._internal.execution.streaming_executor"):
        logging.getLogger(name).setLevel(logging.WARNING)


def stop_ray() -> None:
    """End the session. A local node's autoscaler monitor is stopped first: it
    ignores the SIGTERM of ``ray.shutdown()``, which then waits a full second for it
    before killing it (1.0 of the 1.4 s a shutdown took); a single local node has
    nothing for it to scale, nor any state to save."""
    if not ray.is_initialized():
        return
    kill_local_monitor()
    ray.shutdown()


def kill_local_monitor() -> None:
    """SIGKILL the autoscaler monitor of the node this process started, if any (a
    driver attached to a cluster started none: its node lists no processes)."""
    from ray._private import worker

    node = getattr(worker, "_global_node", None)
    processes = getattr(node, "all_processes", None) or {}
    for info in processes.get("monitor", []):
        process = getattr(info, "process", None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=5)


def cluster_summary() -> str:
    res = ray.cluster_resources()
    return f"{int(res.get('CPU', 0))} CPUs, {int(res.get('GPU', 0))} GPUs, " \
           f"{len(ray.nodes())} node(s)"
