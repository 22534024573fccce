"""Start or join Ray: a local Ray in-process on loopback by default, an existing
cluster with ``address`` or ``RAY_ADDRESS``."""

from __future__ import annotations

import logging
import os

import ray  # noqa: TID251 - the runner is where Ray lives


def start_ray(address: str | None = None, num_cpus: int | None = None,
              num_gpus: int | None = None) -> None:
    """Idempotent: reuses a running session (tests share one per run)."""
    quiet_ray_data()
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, logging_level=logging.WARNING,
                 log_to_driver=True, runtime_env=_runtime_env())
        return
    ray.init(
        address="local",  # never attach to a cluster left behind in /tmp/ray
        num_cpus=num_cpus,
        num_gpus=num_gpus,  # tests: logical GPUs on a machine without any
        include_dashboard=False,
        logging_level=logging.WARNING,
        configure_logging=True,
    )


def quiet_ray_data() -> None:
    """Our own progress lines replace Ray Data's per-operator log spam."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    for name in ("ray.data", "ray.data._internal.execution.streaming_executor"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _runtime_env() -> dict:
    # Workers on a cluster need this project importable; a pip-installed package is,
    # a source checkout is shipped as the working directory.
    return {}


def stop_ray() -> None:
    if ray.is_initialized():
        ray.shutdown()


def cluster_summary() -> str:
    res = ray.cluster_resources()
    return f"{int(res.get('CPU', 0))} CPUs, {int(res.get('GPU', 0))} GPUs, " \
           f"{len(ray.nodes())} node(s)"
