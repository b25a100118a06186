"""The network configuration: one validated :class:`~model.config.Config` per layer, the layers'
directions, the head and the parameter file, loaded from one TOML file.

A network file is a cell config file (``[cell] [formats] [modes] [activations] [hardware]``, the
defaults of every layer) plus::

    [network]
    layers = 2          # recurrent layers (default 1, or the number of [[layer]] tables)
    directions = 1      # 1 or 2 for every layer (a [[layer]] table may set its own)
    max_steps = 256     # longest sequence a bidirectional layer buffers (gateware)
    outputs = "every"   # without a head: the last layer's h(t) of every step, or of the "last" only

    [[layer]]           # optional, one per layer in order: overrides of the defaults
    directions = 2
    cell = { hidden_size = 16 }
    formats = { hidden = "s1.7" }

    [head]              # optional dense head on the last layer's last-step output
    classes = 10
    formats = { weight = "s1.7", bias = "s3.8", logits = "s6.8" }
    modes = { rounding = "half_even", overflow = "saturate" }

Layer ``l > 0`` takes ``directions * hidden_size`` inputs of layer ``l - 1`` in that layer's
``hidden`` format: its ``input_size`` and ``formats.input`` are derived (a layer table that states
other values is refused).  A cell config file is a one-layer network.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Config, _flatten_toml, _params_path, build_from_file, read_toml
from ..errors import ConfigError
from .head import HeadConfig

#: Top-level sections a network file adds to a cell config file.
NETWORK_SECTIONS = ("network", "layer", "head")
NETWORK_KEYS = ("layers", "directions", "max_steps", "outputs")
#: What a network without a head sends out: every step's h(t) or a sequence's last step's only.
OUTPUTS = ("every", "last")
#: Keys of a [[layer]] table beyond the cell config's sections.
LAYER_KEYS = ("directions",)
DEFAULT_MAX_STEPS = 256
MAX_LAYERS = 16


def is_network_file(path) -> bool:
    """True when the TOML file ``path`` has a network section (else it is a single cell's config)."""
    return _is_network(read_toml(Path(path)))


def _is_network(table: dict) -> bool:
    return any(s in table for s in NETWORK_SECTIONS)


@dataclass(frozen=True)
class NetworkConfig:
    """Layers (one :class:`Config` each, named ``<name>-l<index>``), their directions, the optional head,
    the longest bidirectional sequence and the parameter file (absolute path or None)."""

    name: str
    layers: tuple
    directions: tuple
    head: HeadConfig | None = None
    max_steps: int = DEFAULT_MAX_STEPS
    params: str | None = None
    outputs: str = "every"

    def __post_init__(self):
        for k, c in enumerate(self.layers):
            if c.interleave != 1:
                raise ConfigError(f"layer {k}: interleave = {c.interleave}: a network's layers take one sequence at a "
                                  f"time; accepted: interleave = 1 (interleave is a single cell's option)")

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    def output_size(self, layer: int = -1) -> int:
        return self.directions[layer] * self.layers[layer].hidden_size

    @property
    def bidirectional(self) -> bool:
        return any(d == 2 for d in self.directions)

    def slots(self) -> list:
        """``(layer, direction, Config)`` in PyTorch's ``h_n`` order."""
        return [(i, d, c) for i, c in enumerate(self.layers) for d in range(self.directions[i])]

    @property
    def uniform(self) -> bool:
        """States stack as PyTorch's ``(layers * directions, batch, hidden)`` arrays (:mod:`model.network.state`)."""
        from .state import uniform
        return uniform(self.slots())

    @classmethod
    def from_cell(cls, cfg: Config) -> "NetworkConfig":
        """A single-cell config as a one-layer, one-direction network."""
        return cls(cfg.name, (cfg,), (1,), params=cfg.params)

    @classmethod
    def load(cls, path) -> "NetworkConfig":
        path = Path(path)
        raw = read_toml(path)
        if not _is_network(raw):
            cell = build_from_file(path, _flatten_toml(raw, path), Config.from_dict)
            ncfg = cls.from_cell(cell)
            object.__setattr__(ncfg, "_source", cell.source)
            return ncfg
        return build_from_file(path, raw, cls.from_toml)

    @property
    def source(self):
        """The file this config was loaded from (resolved), or None for one built in code; the output folder
        ``build/<name>/`` is claimed for it (:func:`model.config.output_dir`)."""
        return getattr(self, "_source", None)

    @classmethod
    def from_toml(cls, raw: dict) -> "NetworkConfig":
        """A network from the parsed TOML of a network file (see the module docstring)."""
        base = {k: v for k, v in raw.items() if k not in NETWORK_SECTIONS}
        net = raw.get("network", {})
        if not isinstance(net, dict):
            raise ConfigError("[network] must be a table")
        unknown = sorted(set(net) - set(NETWORK_KEYS))
        if unknown:
            raise ConfigError(f"[network]: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(NETWORK_KEYS)}")
        tables = raw.get("layer", [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise ConfigError("layer must be an array of tables ([[layer]])")
        n = net.get("layers", len(tables) or 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_LAYERS:
            raise ConfigError(f"network.layers must be an integer from 1 to {MAX_LAYERS}, not {n!r}")
        if tables and len(tables) != n:
            raise ConfigError(f"network.layers = {n} but the file has {len(tables)} [[layer]] tables")
        tables = tables or [{}] * n
        default_dirs = _directions(net.get("directions", 1), "network.directions")
        max_steps = net.get("max_steps", DEFAULT_MAX_STEPS)
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or not 1 <= max_steps <= 1 << 16:
            raise ConfigError(f"network.max_steps must be an integer from 1 to 65536, not {max_steps!r}")
        outputs = net.get("outputs", "every")
        if outputs not in OUTPUTS:
            raise ConfigError(f"network.outputs must be one of {', '.join(map(repr, OUTPUTS))}, not {outputs!r}")
        name = raw.get("name", "unnamed")
        layers, dirs = [], []
        for i, t in enumerate(tables):
            where = f"layer {i}"
            unknown = sorted(set(t) - set(LAYER_KEYS) - set(base) - {"cell", "formats", "modes", "activations",
                                                                       "hardware", "bench"})
            if unknown:
                raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
            merged = _merge(base, {k: v for k, v in t.items() if k not in LAYER_KEYS})
            merged.pop("params", None)
            merged["name"] = f"{name}-l{i}"
            if i > 0:
                prev = layers[-1]
                want = {"input_size": dirs[-1] * prev.hidden_size}
                own_cell = t.get("cell", {})
                if "input_size" in own_cell and own_cell["input_size"] != want["input_size"]:
                    raise ConfigError(f"{where}: input_size = {own_cell['input_size']} but layer {i - 1} gives "
                                      f"{want['input_size']} ({dirs[-1]} direction(s) x hidden {prev.hidden_size}); "
                                      f"leave it out, it is derived")
                own_fmt = t.get("formats", {}).get("input")
                if own_fmt is not None and str(own_fmt) != str(prev.fmt("hidden")):
                    raise ConfigError(f"{where}: formats.input = {own_fmt} but the tensor between layers has layer "
                                      f"{i - 1}'s hidden format {prev.fmt('hidden')}; leave it out, it is derived")
                merged.setdefault("cell", {})["input_size"] = want["input_size"]
                merged.setdefault("formats", {})["input"] = str(prev.fmt("hidden"))
            try:
                layers.append(Config.from_dict(_flatten_toml(merged, where)))
            except ConfigError as e:
                raise ConfigError(f"{where}: {e}") from None
            dirs.append(_directions(t.get("directions", default_dirs), f"{where}: directions"))
        head = None
        if "head" in raw:
            last = layers[-1]
            head = HeadConfig.from_dict(raw["head"], dirs[-1] * last.hidden_size, last.fmt("hidden"),
                                        last.param_rounding)
        params = raw.get("params")
        if params is not None:
            params = _params_path(params)
        if head is not None and outputs != "every":
            raise ConfigError("network.outputs applies to a network without a head (a head has its own "
                              "every_step)")
        return cls(name, tuple(layers), tuple(dirs), head, max_steps, params, outputs)


def _directions(v, where) -> int:
    if v not in (1, 2) or isinstance(v, bool):
        raise ConfigError(f"{where} must be 1 or 2, not {v!r}")
    return v


def _merge(base: dict, over: dict) -> dict:
    """``base`` with ``over``'s entries; tables merge key by key (one level deep)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out
