"""The Ray session the runner starts: Ray Data's scheduling tick is tightened, and
stopping it does not wait a second for the autoscaler monitor."""

from curation.runner.session import SCHEDULING_TICK_S, tighten_scheduling_tick


def test_scheduling_tick_is_tightened_in_the_session(ray_session):
    # A Ray that renames or drops the constant must fail here, not silently bring
    # back the 0.1 s idle gap after every task.
    from ray.data._internal.execution import streaming_executor_state as state

    assert state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == SCHEDULING_TICK_S < 0.1
    assert tighten_scheduling_tick(0.05) is True
    assert state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == 0.05
    tighten_scheduling_tick()
    assert state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == SCHEDULING_TICK_S


def test_the_executor_reads_the_tick_when_it_waits():
    # The wait reads the module global at call time: patching it takes effect.
    import inspect

    from ray.data._internal.execution import streaming_executor_state as state

    source = inspect.getsource(state.process_completed_tasks)
    assert "timeout=WAIT_FOR_TASK_COMPLETION_TIMEOUT_S" in source


def test_a_local_session_has_the_monitor_that_stop_kills_first(ray_session):
    # stop_ray SIGKILLs it before ray.shutdown() (which would wait 1 s for it to
    # ignore SIGTERM); a Ray that stops starting it, or renames it, fails here.
    from ray._private import worker

    infos = worker._global_node.all_processes.get("monitor", [])
    assert infos and infos[0].process.poll() is None
