"""Design-space explorer: one cell config at many lanes (and beats, interleaves), timed by the cycle model and
measured by synthesis, with the Pareto front and the cheapest point within a latency budget.

::

    python -m rtl.explore --config configs/default.toml [--lanes 1,4,16] [--beat 1,2] [--interleave 1,2]
                          [--budget-us 2] [--no-synth] [--no-pnr] [--no-cache] [--out build/explore]
                          [--device 85k] [--freq 100] [--seed 1 | --params p.npz] [--timeout S]

``make explore CONFIG=... LANES=... BUDGET=...`` runs it (docs/explore.md).

Each sweep point is the user's config with ``lanes`` (and ``beat``, ``interleave``) replaced through
:meth:`model.config.Config.replace`; the config's validation and the gateware's limits
(:func:`rtl.cell.check_buildable`) decide which points exist, so a limit lifted there widens the sweep here
without an edit.  A refused value is printed with the reason and skipped.  Without ``--lanes`` the lanes are
1, 2, 4, ... up to the largest value accepted, plus that largest value; without ``--beat`` / ``--interleave``
the values :data:`DEFAULT_VALUES` that are accepted (an axis the config has no field for is then left out).

Per point: the cycle model (:class:`model.cycles.CycleModel`: cycles per step in a steady stream, the first
step, the ideal ``rows * (input + hidden) / lanes`` and the MAC utilization) and, unless ``--no-synth``, ECP5
synthesis and place and route by :func:`rtl.synth.synthesize` into ``<out>/<name>/points/<point>/``, with its
cache (an unchanged point is read back in seconds; ``--no-cache`` reruns the tools).  Latency per step in
microseconds is cycles per step at the measured Fmax; throughput per sequence is Fmax / cycles per step, in
total that times the sequences in flight (``interleave``, 1 without it).  A point whose netlist exceeds the
largest ECP5 part is not placed and has no Fmax.

The Pareto front is over (microseconds per step, LUTs, DSPs), all minimized, among the points with an Fmax.
The budget answer (``--budget-us``, default :data:`DEFAULT_BUDGET_US`) is the cheapest point within it,
cheapest by DSPs, then LUTs, then block RAMs.

Writes ``explore.md``, ``explore.csv``, ``explore.json`` and ``explore.png`` (latency against LUTs and DSPs,
the front marked) into ``<out>/<config name>/`` (``--out`` default ``build/explore``), rewritten after every
point so an interrupted run leaves the points done so far.  Progress: one line per point with its result and
an estimate of the time left; synthesis's own lines are prefixed with the point.

Bad input (a list that does not parse, a value not positive, a missing config file, a budget not positive, no
point the config accepts) is refused in one line naming the option, the value and what is accepted, exit
status 2, before any synthesis.
"""
from __future__ import annotations

import csv
import itertools
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from model.cli import Parser, config_file, nonneg_int
from model.config import Config, ConfigError, output_dir
from model.cycles import CycleModel

from .cell import check_buildable
from .export import load_for_export
from .synth import DEVICES, ToolError, _positive, synthesize

#: The swept fields, in table order.
AXES = ("lanes", "beat", "interleave")
#: Values of ``beat`` and ``interleave`` tried without ``--beat`` / ``--interleave`` (those accepted are kept).
DEFAULT_VALUES = (1, 2, 4)
#: Default of ``--budget-us``: the question the explorer answers, "the cheapest hardware for 2 us per step".
DEFAULT_BUDGET_US = 2.0
#: Default output root (``<root>/<config name>/``).
DEFAULT_OUT = Path("build") / "explore"
#: Largest lanes value the search for the largest accepted one tries.
LANES_PROBE_LIMIT = 1 << 20
#: The synthesis target the explorer measures (the one with place and route, hence an Fmax).
TARGET = "ecp5"
#: Cheapest first: the order of the budget answer.
COST_ORDER = ("dsps", "luts", "brams")
#: Axes of the Pareto front, all minimized.
FRONT_KEYS = ("us_per_step", "luts", "dsps")
#: Output files in ``<out>/<config name>/``.
FILES = ("explore.md", "explore.csv", "explore.json", "explore.png")


@dataclass
class Point:
    """One sweep point: its swept values, its config and, once measured, its row of the table."""
    values: dict
    config: Config
    row: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``lanes16`` or ``lanes16-beat2-interleave2`` (the config's own beat/interleave of 1 not named)."""
        parts = [f"lanes{self.values['lanes']}"]
        parts += [f"{a}{self.values[a]}" for a in AXES[1:] if self.values.get(a, 1) != 1]
        return "-".join(parts)

    @property
    def title(self) -> str:
        return ", ".join(f"{a} {v}" for a, v in self.values.items())


# ---- arguments ------------------------------------------------------------------------------------------------

def parse_values(text: str, option: str, make_var: str) -> tuple:
    """``"1, 4,16"`` -> ``(1, 4, 16)``: positive integers, duplicates dropped, order kept.

    Raises ``ValueError`` naming ``option`` (and its make variable), the value and what is accepted.
    """
    accepted = "a comma-separated list of positive integers, e.g. 1,4,16"
    words = [w.strip() for w in str(text).split(",")]
    if not any(words):
        raise ValueError(f"{option} ({make_var}) is empty ({text!r}); accepted: {accepted}")
    out = []
    for w in words:
        try:
            v = int(w)
        except ValueError:
            v = None
        if v is None or v <= 0:
            raise ValueError(f"{option} ({make_var}) {text!r}: {w!r} is not a positive integer; accepted: {accepted}")
        out.append(v)
    return tuple(dict.fromkeys(out))


# ---- the points ---------------------------------------------------------------------------------------------

def accept(cfg: Config, **changes) -> Config:
    """``cfg`` with ``changes``, as the config's validation and the gateware's limits accept it.

    Raises :class:`ConfigError` (the refusal's own message) for a point that does not exist.
    """
    c = cfg.replace(**changes)
    check_buildable(c)
    return c


def _base(cfg: Config, **changes) -> Config:
    """``cfg`` with ``changes`` at its own lanes, or else at one lane (a beat or interleave may need fewer
    lanes than the config has); raises the refusal at its own lanes when neither is accepted."""
    try:
        return accept(cfg, **changes)
    except ConfigError as e:
        try:
            return accept(cfg, lanes=1, **changes)
        except ConfigError:
            raise e from None


def _accepted(cfg: Config, lanes: int) -> bool:
    try:
        accept(cfg, lanes=lanes)
    except ConfigError:
        return False
    return True


def largest_lanes(cfg: Config) -> int | None:
    """The largest lanes value ``cfg`` accepts (doubling, then bisection below the first refused power of
    two), or None when it accepts not even one lane."""
    if not _accepted(cfg, 1):
        return None
    lo = 1
    while lo < LANES_PROBE_LIMIT and _accepted(cfg, lo * 2):
        lo *= 2
    hi = min(lo * 2, LANES_PROBE_LIMIT + 1)  # refused (or past the probe limit)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _accepted(cfg, mid) else (lo, mid)
    return lo


def default_lanes(cfg: Config) -> tuple:
    """1, 2, 4, ... up to the largest lanes ``cfg`` accepts, plus that largest value (empty if none)."""
    top = largest_lanes(cfg)
    if top is None:
        return ()
    powers = [1 << k for k in range(top.bit_length()) if 1 << k <= top]
    return tuple(dict.fromkeys(powers + [top]))


def plan(cfg: Config, lanes=None, beat=None, interleave=None, note=print) -> list:
    """The sweep points of ``cfg`` (a list of :class:`Point`), every refused value reported through ``note``.

    ``lanes``, ``beat``, ``interleave``: tuples of values, or None for the defaults (module docstring).
    Raises :class:`ConfigError` when an axis given explicitly has no accepted value, or no point is left.
    """
    given = {"lanes": lanes, "beat": beat, "interleave": interleave}
    kept = {}
    for axis in AXES[1:]:
        values = given[axis] if given[axis] is not None else DEFAULT_VALUES
        ok, refused = [], {}
        for v in values:
            try:
                _base(cfg, **{axis: v})
                ok.append(v)
            except ConfigError as e:
                refused.setdefault(str(e), []).append(v)
        for reason, vs in refused.items():
            note(f"[explore] {axis} {', '.join(map(str, vs))}: refused: {reason}")
        if ok:
            kept[axis] = ok
        elif given[axis] is not None:
            raise ConfigError(f"--{axis} ({axis.upper()}) {','.join(map(str, values))}: the config accepts none of "
                              f"these values (see the lines above)")
        else:
            note(f"[explore] {axis}: not swept (the config accepts none of {', '.join(map(str, values))})")
    points = []
    for combo in itertools.product(*kept.values()):
        extra = dict(zip(kept, combo))
        try:
            base = _base(cfg, **extra)
        except ConfigError as e:
            note(f"[explore] {', '.join(f'{a} {v}' for a, v in extra.items())}: refused: {e}")
            continue
        lanes_values = given["lanes"] if given["lanes"] is not None else default_lanes(base)
        for n in lanes_values:
            values = {"lanes": n, **extra}
            try:
                points.append(Point(values, accept(base, lanes=n)))
            except ConfigError as e:
                note(f"[explore] {', '.join(f'{a} {v}' for a, v in values.items())}: refused: {e}")
    if not points:
        raise ConfigError("no sweep point is left: the config refuses every one (see the lines above); "
                          "accepted: --lanes (LANES) values the config's validation and the gateware accept")
    return points


# ---- the measurements ------------------------------------------------------------------------------------------

def cycle_row(p: Point) -> dict:
    """The cycle model's columns of ``p``."""
    cm = CycleModel.for_config(p.config)
    return {**p.values, "label": p.label, "cycles_per_step": cm.cycles_per_step,
            "first_step_cycles": cm.first_step_cycles, "ideal_cycles_per_step": round(cm.ideal_cycles_per_step, 2),
            "mac_utilization": round(cm.mac_utilization, 4)}


def device_utilization(nextpnr: dict) -> tuple:
    """``(fraction, resource)`` of the most used resource in nextpnr's utilization report."""
    best = (0.0, None)
    for name, u in (nextpnr.get("utilization") or {}).items():
        if u.get("available"):
            best = max(best, (u["used"] / u["available"], name))
    return best


def synth_columns(report: dict, cycles_per_step: int, sequences: int) -> dict:
    """The synthesis columns of a point from its :func:`rtl.synth.synthesize` report."""
    r = report["targets"][TARGET]
    s = r["summary"]
    out = {"luts": s["luts"], "ffs": s["ffs"], "dsps": s["dsps"], "brams": s["brams"], "lutram": s.get("lutram"),
           "cached": bool(r.get("cached")), "synth_seconds": r["seconds"]}
    p = report.get("nextpnr")
    if p and p.get("fmax_mhz"):
        fmax = p["fmax_mhz"]
        frac, res = device_utilization(p)
        per_seq = fmax * 1e6 / cycles_per_step
        out.update(fmax_mhz=fmax, device=p["device"], us_per_step=round(cycles_per_step / fmax, 3),
                   steps_per_s=round(per_seq), steps_per_s_total=round(per_seq * sequences),
                   utilization=round(frac, 4), utilization_of=res, status="ok")
        out["cached"] = out["cached"] and bool(p.get("cached"))
        out["synth_seconds"] += p["seconds"]
    elif r.get("over_part"):
        out["status"] = f"not placed: {r['over_part']}"
    elif report.get("nextpnr_error"):
        out["status"] = f"nextpnr failed: {report['nextpnr_error']}"
    else:
        out["status"] = "not placed (--no-pnr)"
    return out


def pareto_front(rows: list, keys=FRONT_KEYS) -> list:
    """Indices of the rows no other row dominates (no worse in every key of ``keys``, better in one);
    rows lacking a key are not candidates."""
    cand = [i for i, r in enumerate(rows) if all(r.get(k) is not None for k in keys)]

    def dominates(a, b):
        return all(a[k] <= b[k] for k in keys) and any(a[k] < b[k] for k in keys)
    return [i for i in cand if not any(dominates(rows[j], rows[i]) for j in cand if j != i)]


def cheapest(rows: list, budget_us: float):
    """The cheapest row (by :data:`COST_ORDER`) whose ``us_per_step`` is within ``budget_us``, or None."""
    ok = [r for r in rows if r.get("us_per_step") is not None and r["us_per_step"] <= budget_us]
    return min(ok, key=lambda r: tuple(r[k] for k in COST_ORDER) + (r["us_per_step"],), default=None)


def budget_answer(rows: list, budget_us: float, synthesized: bool) -> str:
    """One paragraph answering "the cheapest hardware for ``budget_us`` per step", with measured numbers."""
    if not synthesized:
        return (f"Budget {budget_us:g} us per step: not answered without synthesis (--no-synth gives cycles, "
                f"not an Fmax).")
    best = cheapest(rows, budget_us)
    timed = [r for r in rows if r.get("us_per_step") is not None]
    untimed = [r["label"] for r in rows if "status" in r and r.get("us_per_step") is None]  # synthesized
    rule = "cheapest by DSPs, then LUTs, then block RAMs"
    tail = f" Not timed (no Fmax): {', '.join(untimed)}." if untimed else ""
    if best is not None:
        return (f"Cheapest point within {budget_us:g} us per step ({rule}): {best['label']}, "
                f"{best['us_per_step']:g} us per step ({best['cycles_per_step']} cycles at {best['fmax_mhz']:g} MHz), "
                f"{best['dsps']} DSPs, {best['luts']} LUTs, {best['brams']} block RAMs.{tail}")
    if not timed:
        return f"Budget {budget_us:g} us per step: no point was placed, so none is timed.{tail}"
    fast = min(timed, key=lambda r: r["us_per_step"])
    return (f"No point meets {budget_us:g} us per step. The fastest is {fast['label']}: {fast['us_per_step']:g} us "
            f"per step ({fast['cycles_per_step']} cycles at {fast['fmax_mhz']:g} MHz; {budget_us:g} us would need "
            f"{fast['cycles_per_step'] / budget_us:.0f} MHz at its cycles), {fast['dsps']} DSPs, {fast['luts']} LUTs, "
            f"{fast['brams']} block RAMs.{tail}")


# ---- outputs ------------------------------------------------------------------------------------------------

def _columns(axes, synthesized):
    cols = [(a, a) for a in axes] + [
        ("cycles_per_step", "cycles/step"), ("first_step_cycles", "first step"), ("ideal_cycles_per_step", "ideal"),
        ("mac_utilization", "MAC util")]
    if synthesized:
        cols += [("fmax_mhz", "Fmax MHz"), ("us_per_step", "us/step"), ("steps_per_s", "steps/s per seq"),
                 ("steps_per_s_total", "steps/s total"), ("dsps", "DSPs"), ("brams", "BRAMs"), ("luts", "LUTs"),
                 ("ffs", "FFs"), ("utilization", "device util"), ("pareto", "Pareto"), ("status", "status")]
    return cols


def _fmt(key, r):
    v = r.get(key)
    if v is None:
        return "-"
    if key == "mac_utilization":
        return f"{v:.1%}"
    if key == "utilization":
        return f"{v:.1%} {r.get('utilization_of', '')}".strip()
    if key == "pareto":
        return "yes" if v else ""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10_000:
        return f"{v:,}"
    return str(v)


def markdown(result: dict) -> str:
    """``explore.md``: the table, the front and the budget answer."""
    rows, cols = result["rows"], _columns(result["axes"], result["synthesized"])
    lines = [f"# Design space of {result['config']} ({result['variant']}, input {result['input_size']}, "
             f"hidden {result['hidden_size']})", ""]
    if result["synthesized"]:
        lines += [f"Synthesis: {result['target_family']}, place and route on {result.get('device') or '-'} "
                  f"out of context; latency per step = cycles per step / Fmax. Pareto front over "
                  f"(us/step, LUTs, DSPs). Device util: the most used resource.", ""]
    lines += ["| " + " | ".join(h for _, h in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_fmt(k, r) for k, _ in cols) + " |" for r in rows]
    lines += ["", f"Points: {len(rows)}" + (f" ({result['done']} done)" if result["done"] < len(rows) else ""), ""]
    if result["synthesized"]:
        front = [rows[i]["label"] for i in result["pareto"]]
        lines += [f"Pareto front: {', '.join(front) or 'none (no point has an Fmax)'}", ""]
    lines += [result["budget"]["answer"], ""]
    return "\n".join(lines)


def write_csv(result: dict, path: Path) -> None:
    keys = ["label", *result["axes"], "cycles_per_step", "first_step_cycles", "ideal_cycles_per_step",
            "mac_utilization"]
    if result["synthesized"]:
        keys += ["fmax_mhz", "us_per_step", "steps_per_s", "steps_per_s_total", "dsps", "brams", "luts", "ffs",
                 "lutram", "utilization", "utilization_of", "pareto", "cached", "synth_seconds", "status"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys)
        for r in result["rows"]:
            w.writerow(["" if r.get(k) is None else r[k] for k in keys])


def plot(result: dict, path: Path) -> None:
    """Latency per step against LUTs and DSPs (front marked, budget dashed); without synthesis, cycles per step
    against lanes with the ideal."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib import ticker  # noqa: PLC0415
    rows, front = result["rows"], set(result["pareto"])
    title = f"{result['config']}: {result['variant']}, input {result['input_size']}, hidden {result['hidden_size']}"
    if not result["synthesized"]:
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        groups = {}
        for r in rows:
            groups.setdefault(tuple((a, r[a]) for a in result["axes"][1:]), []).append(r)
        for key, rs in groups.items():
            name = ", ".join(f"{a} {v}" for a, v in key) or "cycle model"
            ax.plot([r["lanes"] for r in rs], [r["cycles_per_step"] for r in rs], "o-", label=name)
            ax.plot([r["lanes"] for r in rs], [r["ideal_cycles_per_step"] for r in rs], ":", color="grey")
        ax.plot([], [], ":", color="grey", label="ideal (all MACs busy)")
        ax.set(xscale="log", yscale="log", xlabel="lanes", ylabel="cycles per step", title=title)
        _plain_ticks(ax, ticker)
        ax.legend(fontsize=8)
    else:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
        timed = [(i, r) for i, r in enumerate(rows) if r.get("us_per_step") is not None]
        for ax, key, name in ((axes[0], "luts", "LUTs"), (axes[1], "dsps", "DSPs")):
            for i, r in timed:
                on = i in front
                ax.plot(r[key], r["us_per_step"], "o", color="tab:red" if on else "tab:blue",
                        markersize=8 if on else 6)
                ax.annotate(r["label"].replace("lanes", "L"), (r[key], r["us_per_step"]), fontsize=7,
                            xytext=(4, 3), textcoords="offset points")
            ax.axhline(result["budget"]["us"], ls="--", color="grey")
            ax.set(xscale="log", yscale="log", xlabel=f"{name} ({result['target_family']})")
            _plain_ticks(ax, ticker)
        axes[0].set_ylabel("latency per step at Fmax (us)")
        axes[0].plot([], [], "o", color="tab:red", label="Pareto front (us, LUTs, DSPs)")
        axes[0].plot([], [], "o", color="tab:blue", label="dominated")
        axes[0].plot([], [], "--", color="grey", label=f"budget {result['budget']['us']:g} us")
        axes[0].legend(fontsize=8)
        fig.suptitle(title)
        if not timed:
            axes[0].text(0.5, 0.5, "no point placed", transform=axes[0].transAxes, ha="center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plain_ticks(ax, ticker) -> None:
    """Log axes labelled with plain numbers (``500``, ``0.6``); minor ticks too on an axis within a decade."""
    ax.autoscale_view()
    plain = ticker.FuncFormatter(lambda v, _: f"{v:g}")
    for axis in (ax.xaxis, ax.yaxis):
        lo, hi = sorted(axis.get_view_interval())
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(plain if lo > 0 and hi / lo < 10 else ticker.NullFormatter())


def write_outputs(result: dict, folder: Path) -> None:
    """The four files of :data:`FILES` in ``folder``."""
    (folder / "explore.md").write_text(markdown(result))
    write_csv(result, folder / "explore.csv")
    (folder / "explore.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, folder / "explore.png")


# ---- the run ---------------------------------------------------------------------------------------------------

def summarize(cfg: Config, points: list, *, synthesized: bool, budget_us: float, done: int,
              device: str | None = None) -> dict:
    """The result record (``explore.json``): rows, front and budget answer from the points measured so far."""
    rows = [p.row for p in points]
    front = pareto_front(rows) if synthesized else []
    for i, r in enumerate(rows):
        if synthesized:
            r["pareto"] = i in front
    axes = [a for a in AXES if any(a in p.values for p in points)]
    best = cheapest(rows, budget_us) if synthesized else None
    return {"config": cfg.name, "source": str(cfg.source) if cfg.source else None, "variant": cfg.variant,
            "input_size": cfg.input_size, "hidden_size": cfg.hidden_size, "axes": axes, "synthesized": synthesized,
            "target": TARGET, "target_family": "Lattice ECP5", "device": device, "done": done, "rows": rows,
            "pareto": front,
            "budget": {"us": budget_us, "rule": f"within the budget, cheapest by {', then '.join(COST_ORDER)}",
                       "cheapest": best["label"] if best else None,
                       "answer": budget_answer(rows, budget_us, synthesized)}}


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def explore(cfg: Config, qparams, folder: Path, points: list, *, synthesize_points=True, budget_us=DEFAULT_BUDGET_US,
            synth_options=None, weights=None, log=print) -> dict:
    """Measure ``points`` (from :func:`plan`) one after the other; write the outputs after each; return the
    result record.  ``synth_options``: keywords for :func:`rtl.synth.synthesize` (``pnr``, ``device``, ``freq``,
    ``seed``, ``timeout``, ``cache``)."""
    for p in points:
        p.row = cycle_row(p)
    opts = dict(synth_options or {})
    device, spent, t_run = None, [], time.perf_counter()
    if synthesize_points:
        log(f"[explore] {cfg.name}: {len(points)} points to synthesize for {TARGET} "
            f"({', '.join(p.label for p in points)}), outputs in {folder}/")
        for n, p in enumerate(points, 1):
            t0 = time.perf_counter()
            tag = f"[explore {n}/{len(points)} {p.label}]"
            try:
                report = synthesize(p.config, qparams, folder / "points" / p.label, targets=(TARGET,),
                                    weights=weights, log=lambda m, tag=tag: log(f"{tag} {m}"), **opts)
                p.row.update(synth_columns(report, p.row["cycles_per_step"], p.values.get("interleave", 1)))
                device = device or (report.get("nextpnr") or {}).get("device")
            except (ToolError, ConfigError) as e:
                p.row["status"] = f"failed: {str(e).splitlines()[0]}"
            secs = time.perf_counter() - t0
            if not p.row.get("cached"):
                spent.append(secs)
            result = summarize(cfg, points, synthesized=True, budget_us=budget_us, done=n, device=device)
            write_outputs(result, folder)
            r = p.row
            what = (f"{r['us_per_step']} us/step ({r['cycles_per_step']} cycles at {r['fmax_mhz']} MHz), "
                    if r.get("us_per_step") else f"{r['cycles_per_step']} cycles/step, {r['status']}; ")
            res = (f"{r['dsps']} DSPs, {r['brams']} BRAMs, {r['luts']} LUTs" if "luts" in r else r["status"])
            left = len(points) - n
            todo = f"{left} point{'s' if left > 1 else ''}"
            eta = (f"about {_minutes(left * sum(spent) / len(spent))} left: {todo} at "
                   f"{_minutes(sum(spent) / len(spent))} per synthesized point" if left and spent
                   else f"{todo} left" if left else f"all done in {_minutes(time.perf_counter() - t_run)}")
            log(f"[explore] {n}/{len(points)} {p.title}: {what}{res}"
                f"{' (cached)' if r.get('cached') else f' in {secs:.0f} s'}; {eta}")
    else:
        result = summarize(cfg, points, synthesized=False, budget_us=budget_us, done=len(points))
        write_outputs(result, folder)
    return result


def main(argv=None) -> int:
    ap = Parser(prog="python -m rtl.explore",
                description="Sweep lanes (beat, interleave) of a cell config with the cycle model and cached ECP5 "
                            "synthesis; table, plot, Pareto front and the cheapest point within a latency budget.")
    ap.add_argument("--config", type=config_file(), default="configs/default.toml", help="cell config (TOML)")
    ap.add_argument("--lanes", default=None,
                    help="comma-separated lanes values (default: 1, 2, 4, ... up to the largest accepted, and it)")
    ap.add_argument("--beat", default=None,
                    help=f"comma-separated beat values (default: those of {','.join(map(str, DEFAULT_VALUES))} "
                         f"the config accepts)")
    ap.add_argument("--interleave", default=None,
                    help=f"comma-separated interleave values (default: those of "
                         f"{','.join(map(str, DEFAULT_VALUES))} the config accepts)")
    ap.add_argument("--budget-us", default=str(DEFAULT_BUDGET_US),
                    help=f"latency budget per step in microseconds (default {DEFAULT_BUDGET_US:g})")
    ap.add_argument("--no-synth", action="store_true", help="cycle model only (no synthesis, no Fmax)")
    ap.add_argument("--no-pnr", action="store_true", help="Yosys only (resources, no Fmax)")
    ap.add_argument("--no-cache", action="store_true", help="run the tools even for a point with a cached result")
    ap.add_argument("--out", default=str(DEFAULT_OUT),
                    help=f"output root; files go to <out>/<config name>/ (default {DEFAULT_OUT})")
    ap.add_argument("--device", default=None, choices=DEVICES, help="nextpnr-ecp5 device (rtl.synth's default)")
    ap.add_argument("--freq", default=None, help="nextpnr target frequency in MHz (rtl.synth's default)")
    ap.add_argument("--timeout", default=None, help="seconds allowed per tool run")
    ap.add_argument("--params", default=None, help="parameters (.npz from CellParams.save) to bake in")
    ap.add_argument("--seed", type=nonneg_int("--seed"), default=1,
                    help="seed of the random parameters (without --params)")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # a bad argument, reported in one line
        return e.code
    try:
        axes = {a: (None if getattr(args, a) is None else parse_values(getattr(args, a), f"--{a}", a.upper()))
                for a in AXES}
        budget = _number(args.budget_us, "--budget-us (BUDGET)")
        opts = {"pnr": not args.no_pnr, "cache": not args.no_cache}
        if args.freq is not None:
            opts["freq"] = _number(args.freq, "--freq")
        if args.timeout is not None:
            opts["timeout"] = _number(args.timeout, "--timeout")
        if args.device is not None:
            opts["device"] = args.device
        cfg, q, weights = load_for_export(args.config, args.params, args.seed)
        points = plan(cfg, **axes)
        folder = output_dir(args.out, cfg)
    except ValueError as e:  # ConfigError is one
        print(f"error: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    result = explore(cfg, q, folder, points, synthesize_points=not args.no_synth, budget_us=budget,
                     synth_options=opts, weights=weights, log=lambda m: print(m, flush=True))
    print()
    print(markdown(result))
    print(f"wrote {', '.join(str(folder / f) for f in FILES)}  ({time.perf_counter() - t0:.1f} s)")
    failed = [r["label"] for r in result["rows"] if str(r.get("status", "")).startswith("failed")]
    return 1 if failed else 0


def _number(text, option: str) -> float:
    """A positive finite number from ``text``; ``ValueError`` naming ``option`` otherwise."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        v = None
    if v is None or not math.isfinite(v):
        raise ValueError(f"{option} must be a positive number, not {text!r}")
    return _positive(v, option, float)


if __name__ == "__main__":
    raise SystemExit(main())
