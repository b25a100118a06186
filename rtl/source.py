"""Digest of every source file the exported gateware depends on: the one cache key that simulation
builds (:mod:`sim.runner`), synthesis results (:mod:`rtl.synth`) and study runs share."""
from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def source_digest() -> str:
    """SHA-256 over the ``.py`` files of ``rtl/`` and ``model/`` (subpackages included), by relative path."""
    h = hashlib.sha256()
    for sub in ("rtl", "model"):
        for p in sorted((ROOT / sub).rglob("*.py")):
            h.update(p.relative_to(ROOT).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()
