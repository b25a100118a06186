"""The doc check: README.md and docs/*.md cannot drift away from the code.

- Every command in a shell code block (```sh) is checked, and any other
  command form there is an error: ``make <target> VAR=...`` must name a rule of
  the Makefile and variables it reads, and each ``python -m`` line that
  ``make -n`` prints for it must parse with that module's own argument parser;
  ``make -C build/<config>/hls ...`` is checked against the Makefile that
  ``make hls`` generates; ``python -m <module> ...`` must import and
  parse with the module's parser.  Commands in inline code are checked by name
  only (target, variable and option names; their values are placeholders).
- Cheap commands (the tiny config's export, C++ reference and vectors,
  ``model.summary``, ``model.activations``) run for real in a temporary
  directory; an output block (```text) right after such a block must match
  what they print, line by line, apart from times, byte counts and paths.
- The Python examples of docs/api.md and docs/networks.md run and print their output blocks; every
  TOML example loads (a cell config with ``Config.load``, a sweep file with
  ``study.sweep.load``).
- Repository paths in backticks exist, dotted names (``model.cycles.CycleModel``)
  resolve, every shipped config, config key and sweep-file key is documented,
  every docs page is linked from the README, and every relative link and
  anchor resolves.

Each checker returns a list of problems ("file:line: what"); the tests at the
end feed each one a deliberately broken snippet, so every check can fail.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.util
import inspect
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS_DIR = ROOT / "docs"
PAGES = [README, *sorted(DOCS_DIR.glob("*.md"))]
#: The kit's top-level packages, as pyproject.toml installs them.
PACKAGES = tuple(sorted({p.split(".")[0] for p in
                         tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]}))
#: Folders whose backticked paths must exist (``build/`` is generated, so it is not checked).
REPO_DIRS = PACKAGES + ("configs", "tests", "models", "reports", "docs")
SHELL_LANGS = ("sh", "shell", "bash", "console")
#: Commands cheap enough to run for real (well under a second each): these modules on any config ...
CHEAP_ANY_CONFIG = ("model.activations", "model.summary")
#: ... and what these make targets run, on these configs.
CHEAP_TARGETS = ("verilog", "hls", "vectors")
CHEAP_CONFIGS = ("configs/tiny.toml",)
NOT_A_PATH = re.compile(r"[<>*{}]|\.\.\.")


# ---------------------------------------------------------------- markdown


@dataclass
class Block:
    page: str
    line: int          # line of the opening fence, 1-based
    lang: str
    body: str
    next_output: "Block | None" = None   # a ```text block that directly follows


def code_blocks(text: str, page: str = "<snippet>") -> list[Block]:
    """Fenced code blocks, each linked to a ```text block that directly follows it."""
    blocks, lines, i = [], text.split("\n"), 0
    last_end = None
    while i < len(lines):
        m = re.match(r"^(```+|~~~+)\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        fence, start = m.group(1), i
        j = i + 1
        while j < len(lines) and not lines[j].startswith(fence):
            j += 1
        b = Block(page, start + 1, m.group(2).lower(), "\n".join(lines[start + 1:j]))
        if blocks and last_end is not None and b.lang == "text" \
                and all(not s.strip() for s in lines[last_end + 1:start]):
            blocks[-1].next_output = b
        blocks.append(b)
        last_end, i = j, j + 1
    return blocks


def prose(text: str) -> str:
    """The text with fenced blocks blanked out (line numbers kept)."""
    out, fence = [], None
    for line in text.split("\n"):
        m = re.match(r"^(```+|~~~+)", line)
        if fence is None and m:
            fence = m.group(1)
            out.append("")
        elif fence is not None:
            if line.startswith(fence):
                fence = None
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def inline_code(text: str) -> list[tuple[str, int]]:
    """``code`` spans outside fenced blocks, whitespace collapsed, with their line numbers."""
    body = prose(text)
    spans = []
    for m in re.finditer(r"(?<!`)`([^`]+)`(?!`)", body):
        spans.append((" ".join(m.group(1).split()), body.count("\n", 0, m.start()) + 1))
    return spans


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen, out = {}, set()
    for line in prose(text).split("\n"):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def links(text: str) -> list[tuple[str, int]]:
    body = re.sub(r"(?<!`)`[^`]+`(?!`)", lambda m: " " * len(m.group(0)), prose(text))
    return [(m.group(1), body.count("\n", 0, m.start()) + 1)
            for m in re.finditer(r"\]\(([^)\s]+)\)", body)]


# ---------------------------------------------------------------- Makefiles


@dataclass
class Makefile:
    path: Path
    targets: set = field(default_factory=set)
    variables: set = field(default_factory=set)


def parse_makefile(path: Path) -> Makefile:
    """Rule names and the variables the Makefile reads (``$(NAME)`` anywhere outside comments)."""
    mk = Makefile(path)
    for line in path.read_text().split("\n"):
        if line.startswith("\t"):
            pass
        else:
            line = line.split("#", 1)[0]
            m = re.match(r"^([^\s:=?+#][^:=?+]*?)\s*::?(?!=)", line)
            if m:
                mk.targets |= {t for t in m.group(1).split() if "$" not in t and not t.startswith(".")}
        mk.variables |= set(re.findall(r"\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]", line))
    return mk


@functools.lru_cache(maxsize=None)
def root_makefile() -> Makefile:
    return parse_makefile(ROOT / "Makefile")


@functools.lru_cache(maxsize=None)
def cheap_modules() -> frozenset:
    """The modules that run for real: CHEAP_ANY_CONFIG and what the CHEAP_TARGETS run."""
    rc, out = make_dry_run(list(CHEAP_TARGETS), [f"CONFIG={CHEAP_CONFIGS[0]}"])
    return frozenset(CHEAP_ANY_CONFIG) | {argv[0] for argv in (module_lines(out) if rc == 0 else [])}


_GENERATED = tempfile.TemporaryDirectory(prefix="rnnkit-doccheck-")


@functools.lru_cache(maxsize=None)
def generated_hls_makefile(config_name: str) -> Makefile | None:
    """The Makefile that what ``make hls`` runs writes for configs/<config_name>.toml."""
    cfg = f"configs/{config_name}.toml"
    if not (ROOT / cfg).is_file():
        return None
    rc, out = make_dry_run(["hls"], [f"CONFIG={cfg}"])
    calls = module_lines(out) if rc == 0 else []
    assert calls, f"make -n hls runs no module of the kit:\n{out}"
    module, args = calls[-1][0], [a for a in calls[-1][1:] if a != "--compile"]
    gen = Path(_GENERATED.name)
    subprocess.run([sys.executable, "-m", module, *_with_out(module_parser(module), args, gen)],
                   cwd=ROOT, check=True, capture_output=True, text=True)
    return parse_makefile(gen / config_name / "hls" / "Makefile")


def make_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return env


def make_dry_run(targets: list[str], variables: list[str]) -> tuple[int, str]:
    """``make -n`` in the repository: the commands the targets would run."""
    p = subprocess.run(["make", "-n", "-C", str(ROOT), *targets, *variables], capture_output=True,
                       text=True, env=make_env(), timeout=30)
    return p.returncode, p.stdout + p.stderr


def module_lines(make_output: str) -> list[list[str]]:
    """The ``python -m <our module> ...`` command lines in ``make -n`` output, as argv after ``-m``."""
    text = re.sub(r"\\\n", " ", make_output)
    out = []
    for line in text.split("\n"):
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if "-m" in words:
            rest = words[words.index("-m") + 1:]
            if rest and rest[0].split(".")[0] in PACKAGES:
                out.append(rest)
    return out


# ---------------------------------------------------------------- module parsers

NO_ARGUMENTS = "takes no arguments"


class _Captured(Exception):
    def __init__(self, parser):
        super().__init__("parser captured")
        self.parser = parser


@functools.lru_cache(maxsize=None)
def module_parser(name: str):
    """The module's ``argparse`` parser (caught as ``main`` calls ``parse_args``), or NO_ARGUMENTS
    for a ``main()`` without parameters.  Raises ImportError / LookupError when there is none."""
    mod = importlib.import_module(name)
    if hasattr(mod, "__path__") and importlib.util.find_spec(f"{name}.__main__"):  # python -m <package>
        mod = importlib.import_module(f"{name}.__main__")
    main = getattr(mod, "main", None)
    if main is None:
        raise LookupError(f"{name} has no main()")
    if not inspect.signature(main).parameters:
        return NO_ARGUMENTS
    original = argparse.ArgumentParser.parse_args

    def capture(self, *args, **kwargs):
        raise _Captured(self)

    argparse.ArgumentParser.parse_args = capture
    try:
        main([])
    except _Captured as c:
        return c.parser
    finally:
        argparse.ArgumentParser.parse_args = original
    raise LookupError(f"{name}.main() parsed no arguments")


def parse_with(parser, args: list[str]):
    """Parse ``args`` with the module's parser; returns (namespace, error message or None)."""
    if parser is NO_ARGUMENTS:
        return None, (f"takes no arguments, got {' '.join(args)}" if args else None)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            ns = parser.parse_args(args)
    except SystemExit:
        return None, err.getvalue().strip().split("\n")[-1]
    return ns, None


def option_names(parser) -> set[str]:
    return set() if parser is NO_ARGUMENTS else set(parser._option_string_actions)


# ---------------------------------------------------------------- commands


@dataclass
class Command:
    kind: str              # "make", "python", "activate"
    words: list
    where: str
    module: str = ""
    args: list = field(default_factory=list)
    directory: str = ""    # make -C
    targets: list = field(default_factory=list)
    variables: list = field(default_factory=list)


def split_shell(body: str) -> list[tuple[list[str], int]]:
    """The commands of a shell block: continuation lines joined, comments dropped."""
    out, pending, first = [], "", 0
    for n, line in enumerate(body.split("\n")):
        if not pending:
            first = n
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        words = shlex.split(pending + line, comments=True)
        pending = ""
        if words:
            out.append((words, first))
    return out


def classify(words: list[str], where: str) -> tuple[Command | None, str | None]:
    if words[:1] in ([".", ], ["source"]) and words[1:] == [".venv/bin/activate"]:
        return Command("activate", words, where), None
    if any(w in ("|", "&&", "||", ";", ">", "<") for w in words):
        return None, f"{where}: `{' '.join(words)}`: pipes, redirections and command lists are not checked"
    if words[0] == "make":
        cmd = Command("make", words, where)
        it = iter(words[1:])
        for w in it:
            if w == "-C":
                cmd.directory = next(it, "")
            elif w.startswith("-"):
                return None, f"{where}: `{' '.join(words)}`: make option {w} is not checked"
            elif re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w):
                cmd.variables.append(w)
            else:
                cmd.targets.append(w)
        return cmd, None
    if words[0] in ("python", "python3", ".venv/bin/python") and words[1:2] == ["-m"] and len(words) > 2:
        return Command("python", words, where, module=words[2], args=words[3:]), None
    return None, f"{where}: `{' '.join(words)}` is not a command the doc check knows (make, python -m)"


def check_command(cmd: Command, full: bool) -> list[str]:
    """Check one command; ``full`` parses values too (shell blocks), otherwise names only."""
    where, shown = cmd.where, " ".join(cmd.words)
    problems = []
    if cmd.kind == "activate":
        return []
    if cmd.kind == "python":
        if cmd.module.split(".")[0] not in PACKAGES:
            return [f"{where}: `{shown}`: {cmd.module} is not a module of this kit ({', '.join(PACKAGES)})"]
        try:
            parser = module_parser(cmd.module)
        except (ImportError, LookupError) as e:
            return [f"{where}: `{shown}`: {e}"]
        if full:
            _, err = parse_with(parser, cmd.args)
            if err:
                problems.append(f"{where}: `{shown}`: {cmd.module} refuses it: {err}")
        else:
            known = option_names(parser)
            for a in cmd.args:
                if a.startswith("-") and a.split("=", 1)[0] not in known:
                    problems.append(f"{where}: `{shown}`: {cmd.module} has no option {a.split('=', 1)[0]}"
                                    f" (it has {', '.join(sorted(known)) or 'none'})")
        return problems
    # make
    if cmd.directory:
        m = re.match(r"^build/([\w.-]+)/hls/?$", cmd.directory)
        mk = generated_hls_makefile(m.group(1)) if m else None
        if mk is None:
            return [f"{where}: `{shown}`: -C {cmd.directory} is not build/<a config in configs/>/hls"]
    else:
        mk = root_makefile()
    for t in cmd.targets:
        if t not in mk.targets and t != "...":
            problems.append(f"{where}: `{shown}`: no target {t!r} in {mk.path.name} "
                            f"(it has {', '.join(sorted(mk.targets))})")
    for v in cmd.variables:
        name = v.split("=", 1)[0]
        if name not in mk.variables:
            problems.append(f"{where}: `{shown}`: {mk.path.name} does not read {name}")
    if full and not cmd.directory and not problems:
        rc, out = make_dry_run(cmd.targets, cmd.variables)
        if rc != 0:
            problems.append(f"{where}: `{shown}`: make -n fails: {out.strip().splitlines()[-1:]}")
        for argv in module_lines(out):
            try:
                parser = module_parser(argv[0])
            except (ImportError, LookupError) as e:
                problems.append(f"{where}: `{shown}` runs {argv[0]}: {e}")
                continue
            _, err = parse_with(parser, argv[1:])
            if err:
                problems.append(f"{where}: `{shown}` runs `python -m {' '.join(argv)}`, "
                                f"which {argv[0]} refuses: {err}")
    return problems


def repo_path_problem(token: str, where: str) -> str | None:
    """A backticked repository path that does not exist."""
    if not re.match(rf"^({'|'.join(REPO_DIRS)})/\S*$", token):
        return None
    if "*" in token and not re.search(r"[<>{}]|\.\.\.", token):
        return None if list(ROOT.glob(token)) else f"{where}: `{token}` matches no file"
    m = NOT_A_PATH.search(token)
    path = token[:m.start()].rsplit("/", 1)[0] if m else token
    return None if (ROOT / path).exists() else f"{where}: `{token}`: {path} does not exist"


def check_shell_block(block: Block) -> list[str]:
    problems = []
    for words, n in split_shell(block.body):
        where = f"{block.page}:{block.line + 1 + n}"
        cmd, err = classify(words, where)
        if err:
            problems.append(err)
            continue
        problems += check_command(cmd, full=True)
        for w in words[1:]:
            p = repo_path_problem(w.split("=", 1)[-1], where)
            if p:
                problems.append(p)
    return problems


def check_inline(text: str, page: str) -> list[str]:
    """Inline ``make ...`` / ``python -m ...`` commands (names only) and repository paths."""
    problems = []
    for code, line in inline_code(text):
        where = f"{page}:{line}"
        p = repo_path_problem(code, where)
        if p:
            problems.append(p)
        if re.match(r"^(make|python3?|\.venv/bin/python) ", code) and (code.startswith("make")
                                                                        or " -m " in code):
            try:
                words = shlex.split(code)
            except ValueError:
                continue
            cmd, err = classify(words, where)
            if err:
                problems.append(err)
            else:
                problems += check_command(cmd, full=False)
    return problems


def check_dotted_names(text: str, page: str) -> list[str]:
    """``model.x.y`` style names in inline code resolve to a module or attribute."""
    problems = []
    for code, line in inline_code(text):
        name = code.split("(", 1)[0]
        if not re.match(rf"^({'|'.join(PACKAGES)})(\.[A-Za-z_]\w*)+$", name):
            continue
        parts = name.split(".")
        obj, k = None, len(parts)
        while k > 0:
            try:
                obj = importlib.import_module(".".join(parts[:k]))
                break
            except ModuleNotFoundError:
                k -= 1
        for attr in parts[k:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if obj is None:
            problems.append(f"{page}:{line}: `{code}`: {name} does not resolve")
    return problems


def check_links(text: str, page: Path) -> list[str]:
    problems = []
    for target, line in links(text):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        where = f"{page.name}:{line}"
        if not dest.exists():
            problems.append(f"{where}: link {target}: {path} does not exist")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
            problems.append(f"{where}: link {target}: no heading #{anchor} in {dest.name}")
    return problems


def check_pages_linked(readme_text: str, pages: list[Path]) -> list[str]:
    linked = {(README.parent / t.partition("#")[0]).resolve() for t, _ in links(readme_text)}
    return [f"README.md: docs/{p.name} is not linked from the README" for p in pages
            if p.resolve() not in linked]


# ---------------------------------------------------------------- running commands for real


def normalize(line: str, tmp: Path | None = None) -> str:
    if tmp is not None:
        line = line.replace(str(tmp), "build")
    line = line.replace(str(ROOT) + "/", "")
    line = re.sub(r"\d[\d,]*(\.\d+)? s\b", "<t> s", line)
    line = re.sub(r"\d+ bytes", "<n> bytes", line)
    line = re.sub(r"[\d,]+ cycles/s\b", "<n> cycles/s", line)
    return " ".join(line.split())


def compare_output(shown: str, real: str, where: str, tmp: Path | None = None) -> list[str]:
    """Every line shown must appear in the real output, in the same order."""
    got = [normalize(s, tmp) for s in real.split("\n")]
    k = 0
    for line in shown.split("\n"):
        want = normalize(line, tmp)
        if not want:
            continue
        try:
            k = got.index(want, k) + 1
        except ValueError:
            return [f"{where}: the output shown has\n    {line.strip()}\nbut the command prints "
                    f"(from that point on):\n    " + "\n    ".join(s for s in got[k:k + 12] if s)]
    return []


def _with_out(parser, args: list[str], out: Path) -> list[str]:
    args = list(args)
    if parser is NO_ARGUMENTS or "--out" not in option_names(parser):
        return args
    if "--out" in args:
        args[args.index("--out") + 1] = str(out)
    else:
        args += ["--out", str(out)]
    return args


def runnable(block: Block) -> list | None:
    """The argv lists that run the block's commands in a temporary directory, or None when a
    command is not cheap (then nothing in the block runs)."""
    try:
        return _plan(block)
    except (ImportError, LookupError, ValueError, OSError, subprocess.SubprocessError):
        return None


def _plan(block: Block) -> list | None:
    plan = []
    for words, _ in split_shell(block.body):
        cmd, err = classify(words, block.page)
        if err or cmd is None:
            return None
        if cmd.kind == "activate":
            continue
        if cmd.kind == "make" and cmd.directory:
            if not shutil.which("make") or not shutil.which("g++"):
                return None
            plan.append(("make-C", cmd))
            continue
        if cmd.kind == "make":
            rc, out = make_dry_run(cmd.targets, cmd.variables)
            calls = module_lines(out) if rc == 0 else []
            if not calls:
                return None
            mods = [(argv[0], argv[1:]) for argv in calls]
        else:
            mods = [(cmd.module, cmd.args)]
        for module, args in mods:
            if module not in cheap_modules():
                return None
            parser = module_parser(module)
            ns, err = parse_with(parser, args)
            if err:
                return None
            config = getattr(ns, "config", None)
            if config is not None and module not in CHEAP_ANY_CONFIG and config not in CHEAP_CONFIGS:
                return None
            if getattr(ns, "compile", False) and not shutil.which("g++"):
                return None
            plan.append(("python", (module, args)))
    return plan or None


def run_block(block: Block, tmp: Path) -> tuple[str, list[str]]:
    """Run a runnable block in ``tmp``; returns (stdout, problems)."""
    out, problems = [], []
    for kind, what in runnable(block):
        if kind == "python":
            module, args = what
            argv = [sys.executable, "-m", module, *_with_out(module_parser(module), args, tmp)]
        else:
            cmd = what
            argv = ["make", "-C", str(tmp / cmd.directory.removeprefix("build/")), *cmd.targets,
                    *cmd.variables]
        p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, env=make_env())
        out.append(p.stdout)
        if p.returncode != 0:
            problems.append(f"{block.page}:{block.line}: `{' '.join(argv)}` exits {p.returncode}:\n"
                            f"{(p.stdout + p.stderr)[-2000:]}")
    return "\n".join(out), problems


# ---------------------------------------------------------------- examples and keys


def check_toml_example(block: Block, tmp: Path) -> list[str]:
    from model.config import Config, ConfigError
    from model.network import NetworkConfig
    from study import sweep

    where = f"{block.page}:{block.line}"
    path = tmp / f"example_{block.line}.toml"
    path.write_text(block.body + "\n")
    try:
        if re.search(r"^\[(network|\[layer\]|head)\]", block.body, re.M):
            NetworkConfig.load(path)
        elif re.search(r"^\[cell\]", block.body, re.M):
            Config.load(path)
        elif re.search(r"^\[(defaults|\[grid\]|\[point\])\]", block.body, re.M):
            sweep.load(path)
        else:
            return [f"{where}: a TOML example that is neither a cell config nor a sweep file"]
    except (ConfigError, sweep.SweepError, OSError) as e:
        return [f"{where}: the TOML example does not load: {e}"]
    return []


def _accepted(message: str) -> list[str]:
    m = re.search(r"accepted: (.*)$", message)
    assert m, f"the error message no longer lists what is accepted: {message}"
    return [w.strip() for w in m.group(1).split(",")]


def config_keys() -> dict[str, list[str]]:
    """Every TOML key of a cell config, as Config.load's own errors list them."""
    from model.config import Config, ConfigError

    tiny = (ROOT / "configs" / "tiny.toml").read_text()
    probes = {
        "top level": "bogus_doc_check = 1\n" + tiny,
        "[cell]": tiny.replace("[cell]\n", "[cell]\nbogus_doc_check = 1\n"),
        "[hardware]": tiny.replace("[hardware]\n", "[hardware]\nbogus_doc_check = 1\n"),
        "[activations]": tiny.replace("[activations]\n", "[activations]\nbogus_doc_check = 1\n"),
        "[bench]": tiny.replace("[bench]\n", "[bench]\nbogus_doc_check = 1\n"),
        "[formats]": tiny.replace("[formats]\n", "[formats]\nbogus_doc_check = \"s1.7\"\n"),
        "[modes]": tiny.replace("[modes]\n", "[modes]\nbogus_doc_check = { rounding = \"truncate\" }\n"),
    }
    keys = {}
    with tempfile.TemporaryDirectory() as d:
        for section, text in probes.items():
            p = Path(d) / "probe.toml"
            p.write_text(text)
            try:
                Config.load(p)
            except ConfigError as e:
                keys[section] = _accepted(str(e))
            else:
                raise AssertionError(f"Config.load accepted an unknown key in {section}")
    keys["[modes] keys"] = ["rounding", "overflow"]
    return keys


def check_keys_documented(text: str, keys, page: str) -> list[str]:
    return [f"{page}: key `{k}` is not documented" for k in keys
            if not re.search(rf"`[^`\n]*(?<![\w.]){re.escape(k)}(?![\w])[^`\n]*`", text)]


# ================================================================ the tests


def _pages(lang=None):
    for page in PAGES:
        for b in code_blocks(page.read_text(), str(page.relative_to(ROOT))):
            if lang is None or b.lang in lang:
                yield b


SHELL_BLOCKS = list(_pages(SHELL_LANGS))
RUNNABLE = [b for b in SHELL_BLOCKS if runnable(b)]


def test_there_is_something_to_check():
    assert len(PAGES) >= 8 and len(SHELL_BLOCKS) >= 8
    assert {"rtl.export", "model.summary", "model.activations"} <= cheap_modules() and len(cheap_modules()) >= 5
    assert len(RUNNABLE) >= 5, [f"{b.page}:{b.line}" for b in RUNNABLE]


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda b: f"{b.page}:{b.line}")
def test_shell_block_commands(block):
    problems = check_shell_block(block)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_inline_commands_and_paths(page):
    problems = check_inline(page.read_text(), page.name) + check_dotted_names(page.read_text(), page.name)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: f"{b.page}:{b.line}")
def test_cheap_commands_run_and_print_what_is_shown(block, tmp_path):
    out, problems = run_block(block, tmp_path)
    assert not problems, "\n".join(problems)
    if block.next_output is not None:
        problems = compare_output(block.next_output.body, out, f"{block.page}:{block.next_output.line}",
                                  tmp_path)
        assert not problems, "\n".join(problems)


#: Pages whose Python examples run and print their output blocks.
PYTHON_EXAMPLE_PAGES = ("api.md", "networks.md")


@pytest.mark.parametrize("page", PYTHON_EXAMPLE_PAGES)
def test_python_examples_print_their_output(page, tmp_path):
    examples = [b for b in code_blocks((DOCS_DIR / page).read_text(), f"docs/{page}") if b.lang == "python"]
    assert examples, f"docs/{page} has no Python example"
    for d in ("configs", "models"):
        (tmp_path / d).symlink_to(ROOT / d)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for example in examples:
        assert example.next_output is not None, f"docs/{page}:{example.line}: the example has no output block after it"
        p = subprocess.run([sys.executable, "-c", example.body], cwd=tmp_path, capture_output=True, text=True,
                           env=env, timeout=120)
        assert p.returncode == 0, p.stderr[-3000:]
        problems = compare_output(example.next_output.body, p.stdout, f"docs/{page}:{example.next_output.line}")
        assert not problems, "\n".join(problems)


@pytest.mark.parametrize("block", list(_pages(("toml",))), ids=lambda b: f"{b.page}:{b.line}")
def test_toml_examples_load(block, tmp_path):
    problems = check_toml_example(block, tmp_path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_and_anchors_resolve(page):
    problems = check_links(page.read_text(), page)
    assert not problems, "\n".join(problems)


def test_every_docs_page_is_linked_from_the_readme():
    problems = check_pages_linked(README.read_text(), PAGES[1:])
    assert not problems, "\n".join(problems)


def test_every_config_key_and_shipped_config_is_documented():
    text = (DOCS_DIR / "configs.md").read_text()
    problems = []
    for section, keys in config_keys().items():
        problems += check_keys_documented(text, keys, f"docs/configs.md ({section})")
    for cfg in sorted((ROOT / "configs").glob("*.toml")):
        if f"`configs/{cfg.name}`" not in text:
            problems.append(f"docs/configs.md: the shipped config configs/{cfg.name} is not listed")
    assert not problems, "\n".join(problems)


def test_every_sweep_key_and_shipped_study_is_documented():
    from study import sweep

    text = (DOCS_DIR / "studies.md").read_text()
    problems = check_keys_documented(text, sorted(sweep.TOP_KEYS | set(sweep.POINT_KEYS)), "docs/studies.md")
    for s in sorted((ROOT / "configs" / "studies").glob("*.toml")):
        if f"configs/studies/{s.name}" not in text:
            problems.append(f"docs/studies.md: the study configs/studies/{s.name} is not mentioned")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- the checker catches breakage


def _shell(body: str) -> Block:
    return Block("snippet.md", 1, "sh", body)


@pytest.mark.parametrize("body, expected", [
    ("make no-such-target", "no target 'no-such-target'"),
    ("make sim NO_SUCH_VARIABLE=1", "does not read NO_SUCH_VARIABLE"),
    ("make vectors CONFIG=configs/tiny.toml SEQS=0", "--seqs (SEQS) must be a positive integer"),
    ("make -C build/no_such_config/hls check", "is not build/<a config in configs/>/hls"),
    ("make -C build/tiny/hls no-such-target", "no target 'no-such-target' in Makefile"),
    ("make -C build/tiny/hls check NO_SUCH=1", "does not read NO_SUCH"),
    ("make -j2 sim", "make option -j2 is not checked"),
    ("python -m model.no_such_module", "No module named"),
    ("python -m rtl.export --no-such-flag", "rtl.export refuses it"),
    ("python -m rtl.export --config configs/tiny.toml --seed x", "rtl.export refuses it"),
    ("python -m model.activations --config configs/tiny.toml", "takes no arguments"),
    ("python -m model.summary --config configs/no_such.toml", "configs/no_such.toml does not exist"),
    ("python -m numpy.f2py", "not a module of this kit"),
    ("rm -rf build", "not a command the doc check knows"),
    ("python -m model.activations | head", "pipes"),
])
def test_checker_rejects_a_broken_shell_block(body, expected):
    problems = check_shell_block(_shell(body))
    assert any(expected in p for p in problems), problems


def test_checker_accepts_good_shell_commands():
    body = ("make sim CONFIG=configs/tiny.toml SIM=icarus WAVES=1   # a comment\n"
            "make -C build/tiny/hls check VECTORS=../vectors\n"
            ". .venv/bin/activate\n"
            "python -m rtl.export \\\n  --config configs/tiny.toml --seed 3\n")
    assert check_shell_block(_shell(body)) == []


@pytest.mark.parametrize("snippet, expected", [
    ("Run `make sim NO_SUCH=1` now.", "does not read NO_SUCH"),
    ("Run `make no-such-target`.", "no target"),
    ("Run `python -m rtl.synth --no-such-flag`.", "has no option --no-such-flag"),
    ("Run `python -m model.no_such --config ...`.", "No module named"),
    ("See `configs/no_such.toml`.", "configs/no_such.toml does not exist"),
    ("See `models/<name>.npz` in `no_dir/<x>`.\nAnd `model/no_such/<x>.py`.", "model/no_such does not exist"),
    ("See `tests/test_no_such_*.py`.", "matches no file"),
    ("Call `model.cycles.NoSuchModel`.", "does not resolve"),
    ("Call `model.no_such_module.f(x)`.", "does not resolve"),
])
def test_checker_rejects_broken_inline_code(snippet, expected):
    problems = check_inline(snippet, "snippet.md") + check_dotted_names(snippet, "snippet.md")
    assert any(expected in p for p in problems), problems


def test_checker_accepts_good_inline_code():
    snippet = ("`make sim CONFIG=... SIM=icarus`, `make -C build/tiny/hls check-ap AP_TYPES=...`, "
               "`python -m rtl.synth --config ... --compare-kinds`, `models/<name>.npz`, "
               "`tests/test_docs.py`, `tests/test_study_*.py`, `model.cycles.CycleModel.for_config(cfg)`, "
               "`build/anything`, `lanes = 8`")
    assert check_inline(snippet, "s.md") + check_dotted_names(snippet, "s.md") == []


def test_checker_rejects_broken_links(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## A section\n")
    text = ("# Page\n\n[ok](other.md#a-section) [ok](#page) [web](https://example.com)\n"
            "[gone](missing.md) [bad anchor](other.md#no-such-section) [bad local](#nowhere)\n"
            "`[not a link](missing2.md)`\n```\n[in code](missing3.md)\n```\n")
    page.write_text(text)
    problems = check_links(text, page)
    assert len(problems) == 3, problems
    assert "missing.md does not exist" in problems[0]
    assert "no heading #no-such-section" in problems[1] and "no heading #nowhere" in problems[2]


def test_checker_rejects_an_unlinked_page():
    pages = [DOCS_DIR / "numerics.md", DOCS_DIR / "no-such-page.md"]
    problems = check_pages_linked("[numerics](docs/numerics.md#activations)", pages)
    assert problems == ["README.md: docs/no-such-page.md is not linked from the README"]


def test_slugs_follow_github():
    assert slug("Trained parameters (`params`)") == "trained-parameters-params"
    assert slug("Gateware: one gate pipeline for the LSTM and the GRU (`rtl/`)") == \
        "gateware-one-gate-pipeline-for-the-lstm-and-the-gru-rtl"
    assert anchors("# A\n## B b\n## B b\n```\n# not a heading\n```\n") == {"a", "b-b", "b-b-1"}


def test_checker_rejects_output_that_drifted(tmp_path):
    block = code_blocks("```sh\npython -m model.activations\n```\n\n```text\n"
                        "sigmoid  lut_interp     64     8  0.000761  0.000282\n"
                        "sigmoid  pwl             -     -  0.018941  0.005714\n```\n", "s.md")[0]
    out, problems = run_block(block, tmp_path)
    assert problems == [] and compare_output(block.next_output.body, out, "s.md") == []
    drifted = block.next_output.body.replace("0.018941", "0.018000")
    assert "0.018000" in compare_output(drifted, out, "s.md")[0]
    swapped = "\n".join(reversed(block.next_output.body.split("\n")))
    assert compare_output(swapped, out, "s.md"), "lines shown in another order must not match"


def test_checker_reports_a_failing_run(tmp_path):
    block = _shell("python -m rtl.export --config configs/tiny.toml --params no_such.npz")
    assert runnable(block)
    out, problems = run_block(block, tmp_path)
    assert problems and "exits" in problems[0]


def test_only_cheap_blocks_run():
    assert runnable(_shell("make sim")) is None
    assert runnable(_shell("python -m rtl.export --config configs/default.toml")) is None
    assert runnable(_shell("make verilog CONFIG=configs/tiny.toml\nmake synth")) is None
    assert runnable(_shell("make verilog CONFIG=configs/tiny.toml"))


def test_output_normalization():
    tmp = Path("/tmp/xyz")
    assert normalize("wrote /tmp/xyz/tiny/tiny.v  (top module lstm_cell, 98339 bytes)", tmp) == \
        "wrote build/tiny/tiny.v (top module lstm_cell, <n> bytes)"
    assert normalize("golden time           0.003 s") == "golden time <t> s"
    assert normalize("h vs float 1.464e-03") == "h vs float 1.464e-03"
    assert normalize("(60423, 35,439 cycles/s); 71 cycles/step") == "(60423, <n> cycles/s); 71 cycles/step"


def test_checker_rejects_bad_toml_examples(tmp_path):
    bad_config = Block("s.md", 1, "toml", (ROOT / "configs" / "tiny.toml").read_text().replace(
        'kind = "lstm"', 'kind = "rnn"'))
    assert "does not load" in check_toml_example(bad_config, tmp_path)[0]
    bad_sweep = Block("s.md", 2, "toml", 'model = "fsdd_lstm32"\n[defaults]\nweight_bits = 40\n'
                      '[[point]]\nlabel = "x"\n')
    assert "does not load" in check_toml_example(bad_sweep, tmp_path)[0]
    assert "neither" in check_toml_example(Block("s.md", 3, "toml", "a = 1\n"), tmp_path)[0]
    good = Block("s.md", 4, "toml", (ROOT / "configs" / "tiny.toml").read_text())
    assert check_toml_example(good, tmp_path) == []


def test_checker_rejects_an_undocumented_key():
    keys = config_keys()
    assert "kind" in keys["[cell]"] and "lanes" in keys["[hardware]"] and "hidden" in keys["[formats]"]
    assert "params" in keys["top level"] and "pre" in keys["[modes]"]
    text = "| `[cell] kind` | `lanes` | `a, hidden_size` | `[modes] rounding` |"
    assert check_keys_documented(text, ["kind", "lanes", "hidden_size", "rounding"], "p") == []
    assert check_keys_documented(text, ["size", "input_size", "hidden"], "p") == [
        "p: key `size` is not documented", "p: key `input_size` is not documented",
        "p: key `hidden` is not documented"]


def test_code_blocks_and_outputs():
    text = "x\n```sh\nmake sim\n```\n\n```text\nout\n```\n```sh\nmake test\n```\ntext\n```text\nno\n```\n"
    bs = code_blocks(text)
    assert [b.lang for b in bs] == ["sh", "text", "sh", "text"]
    assert bs[0].next_output is bs[1] and bs[2].next_output is None
    assert split_shell("a b \\\n  c   # comment\n\n# only a comment\nd") == [(["a", "b", "c"], 0), (["d"], 4)]
