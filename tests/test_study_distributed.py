"""A study on a real Dask cluster: a scheduler and two worker processes started on localhost with the
``dask`` command line, as a site would start them; the sweep through them gives exactly the rows of a
run in this process, and a failing task is reported while the others finish."""
import operator
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from study import distributed, run, sweep

ROOT = Path(run.__file__).resolve().parent.parent
DASK = [sys.executable, "-c", "from dask.cli import run_cli; run_cli()"]
TIMING = ("eval_s", "hw_s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scheduler():
    """``tcp://127.0.0.1:<port>`` of a scheduler with two single-threaded workers, stopped afterwards."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT, "env": env}
    procs = [subprocess.Popen(DASK + ["scheduler", "--host", "127.0.0.1", "--port", str(port),
                                      "--no-dashboard"], **quiet)]
    try:
        procs += [subprocess.Popen(DASK + ["worker", address, "--nworkers", "1", "--nthreads", "1",
                                           "--no-dashboard", "--no-nanny", "--name", f"w{k}"], **quiet) for k in range(2)]
        with Client(address, timeout=60) as c:
            c.wait_for_workers(2, timeout=60)
            assert len(c.scheduler_info()["workers"]) == 2
        yield address
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_sweep_on_a_cluster_equals_a_local_run(scheduler, tmp_path):
    text = ('model = "digits_lstm16"\ntarget = "none"\ntest_subset = 60\n[[point]]\nlabel = "16"\n'
            'weight_bits = 16\nact_bits = 16\n[[point]]\nlabel = "wrap"\nuniform = "ap_fixed<6,2>"\n'
            'rounding = "truncate"\noverflow = "wrap"\ninput_rounding = "truncate"\n'
            '[[grid]]\nlabel = "w"\nweight_bits = [4, 6]\n')
    (tmp_path / "d.toml").write_text(text)
    sw = sweep.load(tmp_path / "d.toml")
    t0 = time.perf_counter()
    here = run.run(sw, jobs=1, synth=False, progress=False, log=lambda *a: None)
    there = run.run(sw, synth=False, progress=False, log=lambda *a: None, scheduler=scheduler)
    assert time.perf_counter() - t0 < 120
    assert not here["failed"] and not there["failed"] and len(there["rows"]) == 4
    for a, b in zip(here["rows"], there["rows"]):
        assert {k: v for k, v in a.items() if k not in TIMING} == {k: v for k, v in b.items() if k not in TIMING}
    assert there["where"] == scheduler


def test_a_failing_task_is_reported_and_the_others_finish(scheduler):
    got = {}
    distributed.run_all(operator.truediv, 1, [1, 0, 4], lambda it, r, e: got.update({it: (r, e)}),
                        scheduler=scheduler)
    assert got == {1: (1.0, None), 0: (None, "ZeroDivisionError: division by zero"), 4: (0.25, None)}


def test_an_unreachable_scheduler_is_named(monkeypatch):
    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT", 2)
    with pytest.raises(distributed.ClusterError, match=r"--scheduler tcp://127.0.0.1:\d+: cannot reach the scheduler"):
        distributed.run_all(operator.neg, None, [1], lambda *a: None, scheduler=f"tcp://127.0.0.1:{_free_port()}")
