"""The control register map of a network core: registers, the parameter window and the state window.

One definition, derived from a :class:`rtl.network.Network` (its write port, state readout and status
bits, themselves derived from :mod:`rtl.layout`), serves every consumer: the register file's decoder
(:mod:`rtl.regfile`), the bus adapters (:mod:`rtl.axi`, the board's UART link), the host driver
(:mod:`host.driver`), and the exported files (:meth:`RegisterMap.to_json`, :meth:`RegisterMap.c_header`,
:meth:`RegisterMap.markdown`).  No Amaranth import, so a host can use it.

Byte addresses, 32-bit words.  With ``wb`` = :attr:`RegisterMap.window_bits`, ``addr[wb+2 : wb+4]``
selects the region:

======  =========  ========================================================================
region  base       what
======  =========  ========================================================================
0       0          registers (:attr:`RegisterMap.registers`)
1       ``1 << (wb + 2)``  parameter window, write only: the word at ``base + 4 * a`` is the
                   network's write port at address ``a`` (weights, biases, auxiliary words,
                   initial state and the head; :meth:`rtl.network.Network.cell_targets`)
2       ``2 << (wb + 2)``  state window, read only: ``base + 4 * a`` is the final state at
                   ``state_addr = a`` (:meth:`rtl.network.Network.state_reads`), sign-extended
======  =========  ========================================================================

An access anywhere else (an unmapped register, a read of the parameter window, a write of the state
window or of a read-only register, a state address no cell has) sets ``ERRORS.bad_access``, answers
with an error response, and changes nothing.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

#: ``ID`` register: ASCII "RNNK".
ID_MAGIC = 0x524E4E4B
#: ``VERSION`` register: the register map's layout version (major << 16 | minor).
MAP_VERSION = (1 << 16) | 0
#: Region numbers (``addr[wb+2 : wb+4]``).
REGION_REGS, REGION_PARAMS, REGION_STATE = 0, 1, 2
#: Width of the bus address, data words.
WORD_BYTES = 32 // 8


@dataclass(frozen=True)
class Register:
    """One 32-bit register: ``role`` is ``const`` (a read-only value fixed by the config), ``counter``
    (read only), ``flags`` (sticky bits, write 1 to clear), ``control`` (write only, bits act for one
    cycle)."""
    name: str
    offset: int
    role: str
    doc: str
    value: int | None = None
    bits: tuple = ()

    @property
    def access(self) -> str:
        return {"const": "ro", "counter": "ro", "flags": "rw1c", "control": "wo"}[self.role]

    @property
    def all_bits(self) -> int:
        """The word with every named bit set (written to a flags register, it clears them all)."""
        return (1 << len(self.bits)) - 1

    def decode(self, value: int) -> dict:
        """``{bit name: 0 or 1}`` of a value read from this register."""
        return {n: (value >> b) & 1 for b, n in enumerate(self.bits)}


@dataclass(frozen=True)
class Window:
    name: str
    base: int
    words: int
    access: str
    doc: str


def _cell(text: str) -> str:
    """``text`` inside a Markdown table cell."""
    return text.replace("|", "\\|")


def _fmt_word(f) -> int:
    """A format as ``signed << 16 | width << 8 | frac_bits``."""
    return (int(f.signed) << 16) | (f.width << 8) | f.frac_bits


def config_id(ncfg) -> int:
    """CRC-32 of everything the gateware's numerics and ports depend on: kinds, sizes, options, formats,
    modes, activations, lanes, directions, the head, ``max_steps`` and ``outputs`` (not names or
    parameter values, which a host may load itself)."""
    layers = [{k: v for k, v in c.to_dict().items() if k not in ("name", "params", "float_max_abs", "float_rms")}
              for c in ncfg.layers]
    head = None
    if ncfg.head is not None:
        h = ncfg.head
        head = {"classes": h.classes, "features": h.features, "in": str(h.in_fmt),
                "formats": {k: str(v) for k, v in sorted(h.formats.items()) if v is not None},
                "mode": [h.mode.rounding, h.mode.overflow], "param_rounding": h.param_rounding,
                "every_step": h.every_step}
    text = json.dumps({"layers": layers, "directions": list(ncfg.directions), "head": head,
                       "max_steps": ncfg.max_steps, "outputs": ncfg.outputs}, sort_keys=True)
    return zlib.crc32(text.encode())


def config_words(ncfg) -> list[tuple[str, int, str]]:
    """``(name, value, doc)`` of the configuration read-back registers."""
    from model.kinds import names  # noqa: PLC0415
    kinds = names()
    out = [("LAYERS", ncfg.num_layers, "recurrent layers"),
           ("DIRECTIONS", sum((d == 2) << k for k, d in enumerate(ncfg.directions)),
            "bit k: layer k is bidirectional"),
           ("IN_FORMAT", _fmt_word(ncfg.layers[0].fmt("input")), "x elements: signed << 16 | width << 8 | frac"),
           ("OUT_FORMAT", _fmt_word(ncfg.head.formats["logits"] if ncfg.head else ncfg.layers[-1].fmt("hidden")),
            "output elements (logits with a head, else the last layer's h): signed << 16 | width << 8 | frac"),
           ("HEAD", (ncfg.head.classes | (ncfg.head.every_step << 16)) if ncfg.head else 0,
            "classes (0: no head) | every_step << 16"),
           ("MAX_STEPS", ncfg.max_steps, "longest sequence a bidirectional layer buffers")]
    for k, c in enumerate(ncfg.layers):
        out += [(f"L{k}_KIND", kinds.index(c.kind), f"layer {k}'s cell kind: index in {', '.join(kinds)}"),
                (f"L{k}_SIZES", c.input_size | (c.hidden_size << 16), f"layer {k}: input_size | hidden_size << 16"),
                (f"L{k}_LANES", c.lanes, f"layer {k}: MAC lanes per direction")]
    return out


@dataclass(frozen=True)
class RegisterMap:
    """Registers and windows of one network core (:meth:`for_network`)."""
    name: str
    config_id: int
    registers: tuple
    windows: tuple
    window_bits: int
    addr_bits: int            # bus address width (bytes)
    w_addr_bits: int          # the network write port's address width
    w_data_bits: int          # ... and its data width (the low bits of a parameter-window word)
    state_addr_bits: int
    state_valid: tuple        # (cell, words): state addresses cell << state_bits | a, a < words
    state_bits: int
    status_bits: tuple        # the network's status bit names, STATUS0 bit 0 first

    @classmethod
    def for_network(cls, net) -> "RegisterMap":
        """The map of ``net`` (an :class:`rtl.network.Network`; only its port widths and address
        functions are used, nothing is elaborated)."""
        ncfg = net.config
        status = tuple(net.status.shape().members)
        regs = [("ID", "const", "ASCII 'RNNK'", ID_MAGIC, ()),
                ("VERSION", "const", "register map version: major << 16 | minor", MAP_VERSION, ()),
                ("CONFIG_ID", "const", "CRC-32 of the configuration (rtl.regmap.config_id)", config_id(ncfg), ()),
                ("CONTROL", "control", "bit 0: clear the counters", None, ("clear_counters",)),
                ("ERRORS", "flags", "sticky bus errors, write 1 to clear", None, ("bad_access",)),
                ("STEPS", "counter", "x vectors accepted (s_axis transfers with tlast)", None, ()),
                ("SEQUENCES", "counter", "sequences started (tuser bit 0)", None, ()),
                ("OUTPUTS", "counter", "output vectors sent (m_axis transfers with tlast)", None, ()),
                ("CYCLES_LO", "counter", "clock cycles since reset or clear, low word (reading it latches "
                 "CYCLES_HI)", None, ()),
                ("CYCLES_HI", "counter", "clock cycles, high word as latched by the last CYCLES_LO read", None, ())]
        for k in range(0, len(status), 32):
            regs.append((f"STATUS{k // 32}", "flags", "the network's sticky status bits, write 1 to clear",
                         None, status[k:k + 32]))
        regs += [(f"CFG_{n}", "const", doc, v, ()) for n, v, doc in config_words(ncfg)]
        registers = tuple(Register(n, WORD_BYTES * i, role, doc, v, bits) for i, (n, role, doc, v, bits) in
                          enumerate(regs))
        ww = net.write_word()
        w_addr_bits, w_data_bits = ww.field("addr").width, ww.field("data").width
        state_addr_bits = len(net.state_addr)
        wb = max(w_addr_bits, state_addr_bits, (len(registers) - 1).bit_length())
        windows = (Window("PARAMS", REGION_PARAMS << (wb + 2), 1 << w_addr_bits, "wo",
                          "the network's write port: word a is write address a (weights, biases, initial state, "
                          f"head), data in the low {w_data_bits} bits"),
                   Window("STATE", REGION_STATE << (wb + 2), 1 << state_addr_bits, "ro",
                          "final state: word a is state address a, sign-extended"))
        valid = tuple((k, 2 * cfg.hidden_size) for k, (cfg, _) in enumerate(net.cell_targets()))
        return cls(ncfg.name, config_id(ncfg), registers, windows, wb, wb + 4, w_addr_bits, w_data_bits,
                   state_addr_bits, valid, net.state_bits, status)

    @classmethod
    def for_config(cls, ncfg) -> "RegisterMap":
        """The map of the core built for ``ncfg`` (a network config)."""
        from .network import address_model  # noqa: PLC0415
        return cls.for_network(address_model(ncfg))

    # ---- lookups ---------------------------------------------------------------------------------
    def register(self, name: str) -> Register:
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(f"no register {name!r}; registers: {', '.join(r.name for r in self.registers)}")

    def window(self, name: str) -> Window:
        return next(w for w in self.windows if w.name == name)

    def param_address(self, w_addr: int) -> int:
        """Bus address of write-port address ``w_addr``."""
        return self.window("PARAMS").base + WORD_BYTES * w_addr

    def state_address(self, state_addr: int) -> int:
        """Bus address of state readout address ``state_addr``."""
        return self.window("STATE").base + WORD_BYTES * state_addr

    @property
    def flag_registers(self) -> tuple:
        """The sticky-flag registers (ERRORS, STATUS0, ...), in address order."""
        return tuple(r for r in self.registers if r.role == "flags")

    def status_location(self, bit: str) -> tuple[str, int]:
        """``(register name, bit index)`` of a status or error bit."""
        for r in self.flag_registers:
            if bit in r.bits:
                return r.name, r.bits.index(bit)
        raise KeyError(f"no status bit {bit!r}")

    # ---- exports ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "name": self.name, "version": MAP_VERSION, "config_id": self.config_id, "addr_bits": self.addr_bits,
            "word_bytes": WORD_BYTES,
            "registers": [{"name": r.name, "offset": r.offset, "access": r.access, "role": r.role, "doc": r.doc,
                           **({"value": r.value} if r.value is not None else {}),
                           **({"bits": list(r.bits)} if r.bits else {})} for r in self.registers],
            "windows": [{"name": w.name, "base": w.base, "words": w.words, "access": w.access, "doc": w.doc}
                        for w in self.windows],
            "params": {"w_addr_bits": self.w_addr_bits, "w_data_bits": self.w_data_bits},
            "state": {"addr_bits": self.state_addr_bits, "cell_shift": self.state_bits,
                      "cells": [{"cell": k, "words": n} for k, n in self.state_valid]},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def c_header(self) -> str:
        """A C header: ``RNN_<REG>`` offsets, ``RNN_<REG>_<BIT>`` masks, window bases and sizes, constants."""
        guard = f"RNNKIT_{self.name.upper().replace('-', '_')}_REGS_H"
        lines = [f"/* Register map of the rnnkit core '{self.name}' (map version {MAP_VERSION >> 16}."
                 f"{MAP_VERSION & 0xFFFF}); generated by rtl.regmap. */",
                 f"#ifndef {guard}", f"#define {guard}", "", f"#define RNN_ADDR_BITS {self.addr_bits}", ""]
        for r in self.registers:
            lines.append(f"#define RNN_{r.name} 0x{r.offset:04X}u  /* {r.access}: {r.doc} */")
            if r.value is not None:
                lines.append(f"#define RNN_{r.name}_VALUE 0x{r.value:08X}u")
            for b, n in enumerate(r.bits):
                lines.append(f"#define RNN_{r.name}_{n.upper()} (1u << {b})")
        lines.append("")
        for w in self.windows:
            lines += [f"#define RNN_{w.name}_BASE 0x{w.base:04X}u  /* {w.access}: {w.doc} */",
                      f"#define RNN_{w.name}_WORDS {w.words}u"]
        lines += [f"#define RNN_STATE_CELL_SHIFT {self.state_bits}", "", f"#endif /* {guard} */", ""]
        return "\n".join(lines)

    def markdown(self) -> str:
        """The map as Markdown tables."""
        lines = [f"# Register map of `{self.name}`", "",
                 f"Map version {MAP_VERSION >> 16}.{MAP_VERSION & 0xFFFF}, config ID `0x{self.config_id:08X}`, "
                 f"{self.addr_bits}-bit byte addresses, 32-bit words.", "",
                 "| offset | name | access | value / bits | meaning |", "|---:|---|---|---|---|"]
        for r in self.registers:
            what = f"`0x{r.value:08X}`" if r.value is not None else ", ".join(
                f"{b}: `{n}`" for b, n in enumerate(r.bits))
            lines.append(f"| `0x{r.offset:04X}` | `{r.name}` | {r.access} | {what} | {_cell(r.doc)} |")
        lines += ["", "| window | base | words | access | meaning |", "|---|---:|---:|---|---|"]
        lines += [f"| `{w.name}` | `0x{w.base:04X}` | {w.words} | {w.access} | {_cell(w.doc)} |" for w in self.windows]
        lines += ["", "An access outside these sets `ERRORS.bad_access`, gets an error response and changes "
                  "nothing.", ""]
        return "\n".join(lines)
