"""The memory a run would allocate, checked against what the machine has before allocating: an
oversized request is refused in one line instead of failing deep inside NumPy."""
from __future__ import annotations

import os

from .errors import ConfigError


class MemoryLimitError(ConfigError):
    """A run that would allocate more memory than is available; the message gives both sizes."""


def available_bytes() -> int | None:
    """Memory available to a new allocation (``MemAvailable`` on Linux), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(nbytes: float) -> str:
    return f"{nbytes / 2 ** 30:,.1f} GiB"


def check_memory(nbytes: int, what: str) -> None:
    """Raise :class:`MemoryLimitError` when ``what`` needs more than :func:`available_bytes`."""
    avail = available_bytes()
    if avail is not None and nbytes > avail:
        raise MemoryLimitError(f"{what} needs about {gib(nbytes)} of memory, more than the {gib(avail)} "
                               f"available; use smaller sizes")
