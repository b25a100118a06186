"""Where a study's points run: a Dask cluster, or this process.

:func:`run_all` sends the shared context to every worker once, each work item
as a task, and hands each result (or its failure) back as it arrives:

- no scheduler and one worker: in this process, one item after another;
- no scheduler: a ``distributed.LocalCluster`` of ``workers`` processes with
  one thread each, started and stopped here (what ``make quant`` does on one
  machine);
- a scheduler address (``tcp://host:8786``): an existing cluster, started by
  ``dask scheduler`` and ``dask worker`` or by ``dask-jobqueue`` on SLURM or
  HTCondor (docs/studies.md).  Its workers must import this checkout (the
  same path, or it on ``PYTHONPATH``) with the same packages.

A failing item (an exception, or a worker that died on it three times) comes
back as its error text; the other items go on.
"""
from __future__ import annotations

import logging
import re
from contextlib import contextmanager

#: Scheduler addresses accepted: a protocol Dask speaks, then host:port.
ADDRESS = re.compile(r"^(tcp|tls|ws|wss|ucx|inproc)://[^\s/]+$")
#: Seconds to wait for an existing scheduler before giving up.
CONNECT_TIMEOUT = 20


class ClusterError(ValueError):
    """A scheduler address that is malformed or cannot be reached."""


def check_address(address: str) -> str:
    """``address`` if it is a scheduler address (``tcp://host:port``); else :class:`ClusterError`."""
    if not isinstance(address, str) or not ADDRESS.match(address):
        raise ClusterError(f"--scheduler must be a Dask scheduler address such as tcp://host:8786, not {address!r}")
    return address


def error_text(e: BaseException) -> str:
    """``Type: first line of the message``: how a failed item is reported."""
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def run_all(fn, shared, items, on_result, scheduler: str | None = None, workers: int = 2) -> None:
    """Call ``fn(shared, item)`` for every item of ``items`` and ``on_result(item, result, error)`` as each
    finishes, in the order they finish (``error`` is None, or the failure's :func:`error_text` and then
    ``result`` is None).  ``fn`` must be importable by the workers (a module-level function)."""
    if scheduler is None and workers == 1:
        for it in items:
            try:
                r = fn(shared, it)
            except Exception as e:  # noqa: BLE001  (a failed item is reported, the others go on)
                on_result(it, None, error_text(e))
                continue
            on_result(it, r, None)
        return
    from distributed import as_completed  # noqa: PLC0415  (imported only when a cluster runs)

    with _client(scheduler, workers) as client:
        shared_f = client.scatter(shared, broadcast=True, hash=False)
        futures = {client.submit(fn, shared_f, it, pure=False): it for it in items}
        for fut in as_completed(futures):
            it = futures[fut]
            if fut.status == "error":
                on_result(it, None, error_text(fut.exception()))
            else:
                on_result(it, fut.result(), None)
            fut.release()


@contextmanager
def _client(scheduler: str | None, workers: int):
    from distributed import Client, LocalCluster  # noqa: PLC0415

    if scheduler is None:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          scheduler_kwargs={"dashboard_address": ":0"},  # its HTTP server on a free port
                          silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            yield client
        return
    check_address(scheduler)
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise ClusterError(f"--scheduler {scheduler}: cannot reach the scheduler ({error_text(e)})") from None
    with client:
        yield client
