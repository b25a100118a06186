"""Suite-wide pytest options and the run counts some tests record.

``--long``: more examples in the random-config tests (``tests/test_random_configs.py``).
A test records a count with the ``record_count`` fixture; the terminal summary prints
every count recorded in this session (also under pytest-xdist, through files in
``build/test-counts/``).
"""
import json
import time
from pathlib import Path

import pytest

COUNTS = Path(__file__).resolve().parent.parent / "build" / "test-counts"


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", default=False,
                     help="run many more random configs in tests/test_random_configs.py")


def pytest_configure(config):
    config._counts_since = time.time() - 1


@pytest.fixture
def long_mode(request) -> bool:
    """True under ``pytest --long``."""
    return request.config.getoption("--long")


@pytest.fixture
def record_count(request):
    """``record_count(what, n)``: ``n`` things of kind ``what`` ran in this test (printed in the summary)."""
    def record(what: str, n: int):
        COUNTS.mkdir(parents=True, exist_ok=True)
        name = request.node.nodeid.replace("/", "_").replace("::", "-")
        (COUNTS / f"{name}.json").write_text(json.dumps({"test": request.node.nodeid, "what": what, "n": n}))
    return record


def pytest_terminal_summary(terminalreporter, config):
    if hasattr(config, "workerinput") or not COUNTS.is_dir():
        return
    rows = [json.loads(p.read_text()) for p in sorted(COUNTS.glob("*.json"))
            if p.stat().st_mtime >= config._counts_since]
    if rows:
        terminalreporter.write_sep("-", "counts")
        for r in rows:
            terminalreporter.write_line(f"{r['n']} {r['what']} ({r['test']})")
