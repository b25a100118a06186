"""Mutation harness: how many realistic one-line bugs the test suite catches.

Each mutant of :data:`MUTANTS` (``verify/mutants.toml``) replaces one exact text, which must occur
exactly once, in one tracked source file.  The harness writes the committed tree (``git archive
HEAD``) into ``build/mutate/work-<n>/`` (never touching the working tree), applies one mutant at a time there,
runs the mutant's pytest selections in order with that copy as the working directory and first on
``sys.path`` (stopping at the first failure), and restores the file.  A mutant is *killed* when a
selection fails or times out, *survived* otherwise.  A mutant the list marks ``equivalent`` (with
the reason) is expected to survive; the score counts it as a survivor all the same.

    python -m verify.mutate [--only ID ...] [--list] [--jobs N]

Reports: ``build/mutate/report.json`` and ``build/mutate/report.md``.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import subprocess
import sys
import tarfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "verify" / "mutants.toml"
OUT = ROOT / "build" / "mutate"
#: Packages whose import location proves that a run tests the copy.
PACKAGES = ("model", "rtl", "hls", "sim", "verify")
#: Seconds one pytest selection may take before the mutant counts as killed by a hang.
TIMEOUT = 900
FIELDS = {"id", "file", "original", "replacement", "bug", "tests", "equivalent"}


class MutantError(ValueError):
    """A mutant list that cannot be used (the message names the mutant and the field)."""


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    original: str
    replacement: str
    bug: str
    tests: tuple
    equivalent: str = ""


@dataclass
class Outcome:
    id: str
    status: str                 # killed / survived
    by: str = ""                # the failing test, or the selection that timed out
    seconds: float = 0.0
    ran: list = field(default_factory=list)


def load(path: Path = MUTANTS, root: Path = ROOT) -> list:
    """The mutant list, checked against the sources under ``root``."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as e:
        raise MutantError(f"{path}: not valid TOML: {e}") from None
    out, seen = [], set()
    for n, d in enumerate(raw.get("mutant", [])):
        where = f"{path}: mutant {d.get('id', n)!r}"
        unknown = set(d) - FIELDS
        missing = FIELDS - {"equivalent"} - set(d)
        if unknown or missing:
            raise MutantError(f"{where}: unknown field(s) {sorted(unknown)}, missing {sorted(missing)}; "
                              f"accepted: {', '.join(sorted(FIELDS))}")
        if d["id"] in seen:
            raise MutantError(f"{where}: id used twice")
        seen.add(d["id"])
        m = Mutant(d["id"], d["file"], d["original"], d["replacement"], d["bug"], tuple(d["tests"]),
                   d.get("equivalent", ""))
        if m.original == m.replacement:
            raise MutantError(f"{where}: replacement equals the original")
        if not m.tests:
            raise MutantError(f"{where}: tests is empty")
        src = root / m.file
        if not src.is_file():
            raise MutantError(f"{where}: file {m.file!r} does not exist")
        count = src.read_text().count(m.original)
        if count != 1:
            raise MutantError(f"{where}: original text occurs {count} times in {m.file} (must be exactly once)")
        out.append(m)
    if not out:
        raise MutantError(f"{path}: no [[mutant]] entries")
    return out


def make_copy(dest: Path, root: Path = ROOT, rev: str = "HEAD") -> Path:
    """The files of commit ``rev`` written into ``dest`` (a committed tree is consistent, while the
    working tree may hold others' unfinished edits); unchanged files and build caches are kept."""
    tar = subprocess.run(["git", "archive", "--format=tar", rev], cwd=root, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        for member in tf.getmembers():
            if not member.isfile():
                continue
            data = tf.extractfile(member).read()
            dst = dest / member.name
            if not dst.is_file() or dst.read_bytes() != data:
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(data)
                dst.chmod(member.mode)
    return dest


def env_for(copy: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    return env


def check_imports(copy: Path) -> None:
    """Assert that Python started in ``copy`` imports every package from ``copy``, not the working tree."""
    probe = "import json, importlib; print(json.dumps({p: importlib.import_module(p).__file__ for p in %r}))"
    r = subprocess.run([sys.executable, "-c", probe % (PACKAGES,)], cwd=copy, env=env_for(copy),
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"the copy in {copy} cannot import its packages: {r.stderr.strip().splitlines()[-1]}")
    for pkg, path in json.loads(r.stdout).items():
        if not Path(path).resolve().is_relative_to(copy.resolve()):
            raise RuntimeError(f"the copy in {copy} imports {pkg} from {path}, not from the copy")


def _failed_test(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" ", 1)[1].split(" - ")[0]
    return ""


def run_mutant(m: Mutant, copy: Path, timeout: int = TIMEOUT) -> Outcome:
    """Apply ``m`` in ``copy``, run its selections until one fails, restore the file."""
    src = copy / m.file
    text = src.read_text()
    if text.count(m.original) != 1:
        raise MutantError(f"mutant {m.id!r}: original text occurs {text.count(m.original)} times in {src}")
    t0 = time.monotonic()
    res = Outcome(m.id, "survived")
    try:
        src.write_text(text.replace(m.original, m.replacement))
        for sel in m.tests:
            res.ran.append(sel)
            cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                   "-rfE", *shlex.split(sel)]
            try:
                r = subprocess.run(cmd, cwd=copy, env=env_for(copy), capture_output=True, text=True,
                                   timeout=timeout)
            except subprocess.TimeoutExpired:
                res.status, res.by = "killed", f"timeout after {timeout} s: {sel}"
                break
            if r.returncode == 5:
                raise MutantError(f"mutant {m.id!r}: selection {sel!r} collected no tests")
            if r.returncode != 0:
                res.status, res.by = "killed", _failed_test(r.stdout) or f"{sel} (exit {r.returncode})"
                break
    finally:
        src.write_text(text)
    res.seconds = round(time.monotonic() - t0, 1)
    return res


def score(outcomes: list) -> tuple:
    killed = sum(o.status == "killed" for o in outcomes)
    return killed, len(outcomes), 100.0 * killed / len(outcomes) if outcomes else 0.0


def by_area(mutants: list, outcomes: list) -> list:
    """``(top-level folder, killed, total)`` rows, in the list's order of first appearance."""
    area = {m.id: m.file.split("/")[0] for m in mutants}
    rows = {}
    for o in outcomes:
        k, n = rows.get(area[o.id], (0, 0))
        rows[area[o.id]] = (k + (o.status == "killed"), n + 1)
    return [(a, k, n) for a, (k, n) in rows.items()]


def report(mutants: list, outcomes: list, wall: float, out: Path = OUT) -> str:
    """Write report.json and report.md under ``out``; return the Markdown."""
    by_id = {m.id: m for m in mutants}
    killed, total, pct = score(outcomes)
    lines = [f"# Mutation score: {killed} of {total} killed ({pct:.1f} %), wall time {wall:.0f} s", "",
             "| folder | killed | mutants |", "|---|---:|---:|"]
    lines += [f"| {a}/ | {k} | {n} |" for a, k, n in by_area(mutants, outcomes)]
    lines += ["", "| mutant | file | result | by | s |", "|---|---|---|---|---:|"]
    for o in outcomes:
        lines.append(f"| {o.id} | {by_id[o.id].file} | {o.status} | {o.by} | {o.seconds:.1f} |")
    surv = [o for o in outcomes if o.status == "survived"]
    if surv:
        lines += ["", "## Survivors", ""]
        for o in surv:
            m = by_id[o.id]
            why = f"equivalent: {m.equivalent}" if m.equivalent else "NOT EXPLAINED: a test is missing"
            lines.append(f"- `{o.id}` ({m.file}): {m.bug}; {why}")
    md = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(md)
    (out / "report.json").write_text(json.dumps(
        {"killed": killed, "total": total, "score_percent": round(pct, 2), "wall_seconds": round(wall, 1),
         "outcomes": [asdict(o) | {"file": by_id[o.id].file, "bug": by_id[o.id].bug,
                                   "equivalent": by_id[o.id].equivalent} for o in outcomes]}, indent=2) + "\n")
    return md


def run(mutants: list, jobs: int = 1, out: Path = OUT, progress=print) -> list:
    """Run every mutant of ``mutants`` in ``jobs`` copies under ``out``; outcomes in list order."""
    copies = [make_copy(out / f"work-{n}") for n in range(jobs)]
    for c in copies:
        check_imports(c)
    free = list(copies)
    outcomes = {}

    def one(m):
        copy = free.pop()
        try:
            o = run_mutant(m, copy)
        finally:
            free.append(copy)
        word = o.status + (f" by {o.by}" if o.by else "")
        progress(f"{m.id:32} {word}  ({o.seconds:.1f} s)")
        outcomes[m.id] = o
        return o

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, mutants))
    return [outcomes[m.id] for m in mutants]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m verify.mutate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--jobs", type=int, default=1, help="mutants run at once, each in its own copy (default 1)")
    ap.add_argument("--mutants", type=Path, default=MUTANTS, help="the mutant list (default verify/mutants.toml)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be at least 1, not {args.jobs}")
    try:
        mutants = load(args.mutants)
    except MutantError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.only:
        unknown = sorted(set(args.only) - {m.id for m in mutants})
        if unknown:
            print(f"error: --only: unknown mutant id(s) {', '.join(unknown)}; see --list", file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m.id in args.only]
    if args.list:
        for m in mutants:
            print(f"{m.id:32} {m.file:24} {m.bug}" + (" [equivalent]" if m.equivalent else ""))
        return 0
    t0 = time.monotonic()
    outcomes = run(mutants, args.jobs)
    md = report(mutants, outcomes, time.monotonic() - t0)
    killed, total, pct = score(outcomes)
    print()
    print(f"{'folder':8} {'killed':>6} {'of':>4}")
    for a, k, n in by_area(mutants, outcomes):
        print(f"{a + '/':8} {k:6} {n:4}")
    print(md.splitlines()[0].lstrip("# "))
    for o in outcomes:
        if o.status == "survived":
            m = next(m for m in mutants if m.id == o.id)
            print(f"  survivor {o.id}: " + (f"equivalent ({m.equivalent})" if m.equivalent else "not explained"))
    print(f"reports: {OUT.relative_to(ROOT)}/report.md, report.json")
    unexplained = [o for o in outcomes if o.status == "survived" and not next(
        m for m in mutants if m.id == o.id).equivalent]
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
