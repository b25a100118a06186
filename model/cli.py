"""Argument types shared by every ``python -m`` command line of the kit, so bad input reads the same
everywhere: one line naming the option (and the make variable that sets it), the value and what is
accepted, before any work starts."""
from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from .config import Config
from .errors import ConfigError


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line, ``error: <message>`` (exit status 2)."""

    def error(self, message):
        # a type's message already names the option: drop argparse's "argument --x: " in front of it
        message = re.sub(r"^argument (\S+): (?=\1\b)", "", message)
        self.exit(2, f"error: {message}\n")


def _label(name: str, make_var: str | None) -> str:
    return f"{name} ({make_var})" if make_var else name


def int_option(name: str, make_var: str | None = None, minimum: int = 1):
    """An argparse type accepting an integer >= ``minimum``; the error names the option and its make variable."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text):
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < minimum:
            raise argparse.ArgumentTypeError(f"{_label(name, make_var)} must be {what}, not {text!r}")
        return v
    return parse


def positive_int(name: str, make_var: str | None = None):
    return int_option(name, make_var, 1)


def nonneg_int(name: str, make_var: str | None = None):
    return int_option(name, make_var, 0)


def positive_number(name: str, make_var: str | None = None):
    """An argparse type accepting a finite number > 0 (a float); the error names the option and its make variable."""
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            v = None
        if v is None or not math.isfinite(v) or v <= 0:
            raise argparse.ArgumentTypeError(f"{_label(name, make_var)} must be a positive number, not {text!r}")
        return v
    return parse


def config_file(name: str = "--config", make_var: str | None = "CONFIG", networks: bool = False):
    """An argparse type accepting the path of a config file that loads (:meth:`Config.load`; with ``networks``
    also a network file, :meth:`model.network.NetworkConfig.load`); returns the path.

    A missing file names the shipped configs; a config that does not validate gives the loader's message;
    a network file where only a cell config is accepted says so.
    """
    def parse(text):
        label = _label(name, make_var)
        if not Path(text).is_file():
            shipped = sorted(str(c) for c in Path("configs").glob("*.toml"))
            raise argparse.ArgumentTypeError(
                f"{label} = {text!r}: no such file (does not exist or is not a file); accepted: a config TOML file"
                + (f", e.g. {', '.join(shipped)}" if shipped else ""))
        from .network.config import NetworkConfig, is_network_file  # noqa: PLC0415
        try:
            if is_network_file(text):
                if not networks:
                    raise ConfigError(f"{text} is a network config; this command takes a cell config "
                                      f"(networks: make sim, make verilog, make hls)")
                NetworkConfig.load(text)
            else:
                Config.load(text)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(f"{label}: {e}") from None
        return text
    return parse
