"""pagelab figures. Each function takes the runs' data and returns a list of
Figure records (empty when the runs hold nothing it can draw)."""
from collections import namedtuple

import numpy as np
import matplotlib.pyplot as plt
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from . import style

Figure = namedtuple("Figure", "name title caption files")
PREFERRED_SIZE = 2 << 20
FAULT_COUNTERS = ("page-faults", "minor-faults", "major-faults")


def _spread(xs):
    """Median and the distance to the 25th/75th percentiles, for error bars."""
    if not xs:
        return np.nan, (0.0, 0.0)
    med = float(np.median(xs))
    if len(xs) < 3:
        return med, (0.0, 0.0)
    q1, q3 = np.percentile(xs, [25, 75])
    return med, (med - q1, q3 - med)


def _ops(benches_per_run, area, need=lambda b: True):
    ops = []
    for benches in benches_per_run:
        for b in benches.values():
            if b.area == area and b.op not in ops and not b.skipped and b.times and need(b):
                ops.append(b.op)
    return ops


def _pick_size(benches_per_run, area, ops):
    """The size shown for one-size plots: 2 MiB when measured, else the most common."""
    sizes = {}
    for benches in benches_per_run:
        for b in benches.values():
            if b.area == area and b.op in ops and b.arg and b.times:
                sizes[b.arg] = sizes.get(b.arg, 0) + 1
    if not sizes:
        return None
    return PREFERRED_SIZE if PREFERRED_SIZE in sizes else max(sizes, key=lambda s: (sizes[s], s))


def _get(benches, area, op, arg):
    for b in benches.values():
        if b.area == area and b.op == op and b.arg == arg and b.times and not b.skipped:
            return b
    return None


def _legend_runs(ax, labels, **kw):
    if len(labels) < 2:
        return
    handles = [Patch(facecolor=style.colour(i), label=l) for i, l in enumerate(labels)]
    ax.legend(handles=handles, **kw)


def madvise_cost(data, out_dir, formats):
    """Per-page cost of each advice, one bar per run, re-touch stacked on top."""
    bpr = data.benches
    ops = [o for o in _ops(bpr, "madvise", lambda b: b.per_page_times()) if not o.endswith(("_retouch", "_cycle"))]
    size = _pick_size(bpr, "madvise", ops)
    if not ops or size is None:
        return []
    style.use()
    n = len(data.labels)
    fig, ax = plt.subplots(figsize=(style.DOUBLE_IN if len(ops) > 4 or len(ops) * n > 8 else style.COLUMN_IN, 2.8))
    width = 0.8 / n
    x = np.arange(len(ops))
    stacked = False
    for i, benches in enumerate(bpr):
        for j, op in enumerate(ops):
            b = _get(benches, "madvise", op, size)
            if b is None or not b.per_page_times():
                continue
            med, err = _spread(b.per_page_times())
            xi = x[j] - 0.4 + width * (i + 0.5)
            ax.bar(xi, med, width, color=style.colour(i), edgecolor="black", linewidth=0.3,
                   yerr=np.array([[err[0]], [err[1]]]), error_kw={"elinewidth": 0.6})
            rb = _get(benches, "madvise", op + "_retouch", size)
            if rb is not None and rb.per_page_times():
                rmed, rerr = _spread(rb.per_page_times())
                ax.bar(xi, rmed, width, bottom=med, color=style.colour(i), alpha=0.45, hatch="////",
                       edgecolor="black", linewidth=0.3, yerr=np.array([[rerr[0]], [rerr[1]]]),
                       error_kw={"elinewidth": 0.6})
                stacked = True
    ax.set_xticks(x)
    ax.set_xticklabels([o.replace("_", "\n") for o in ops])
    ax.set_ylabel("cost per page (ns)")
    ax.set_xlabel("advice (%s range)" % style.size_label(size))
    handles = [Patch(facecolor=style.colour(i), label=l) for i, l in enumerate(data.labels)] if n > 1 else []
    if stacked:
        handles.append(Patch(facecolor="white", edgecolor="black", label="the call"))
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="////", label="re-touch afterwards"))
    if handles:
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, borderaxespad=0.2)
    ax.grid(axis="x", visible=False)
    skipped = _skipped(data, "madvise")
    cap = ("Per-page cost of each madvise advice on a %s range (median, error bars: interquartile "
           "range over repetitions)%s%s." % (style.size_label(size), "; hatched: cost of touching the pages again"
                                             if stacked else "", "; not measured: " + "; ".join(skipped) if skipped else ""))
    return [Figure("madvise_cost", "madvise: cost per page", cap,
                   style.save(fig, out_dir, "madvise_cost", formats))]


def _size_axes(ax, sizes):
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ticks = sorted(sizes)
    if len(ticks) > 6:
        ticks = ticks[::2]
    ax.set_xticks(ticks)
    ax.set_xticklabels([style.size_label(t) for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    lo, hi = ax.get_ylim()
    # 1-2-5 ticks over a few decades; one per decade beyond that.
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if hi / max(lo, 1e-12) < 1e3 else (1.0,)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: "%g" % v))
    ax.yaxis.set_minor_locator(NullLocator())


# Areas whose argument is a size in bytes. tlb is not one (its argument counts threads or
# pages); refalloc's argument is a block size and one iteration is a batch of blocks.
SIZE_AREAS = ("fault", "zero", "madvise", "mmap", "mprotect", "mremap", "brk", "refalloc")
# (x label, y label, caption) where an area's iteration is not one call on arg bytes.
AXES = {
    "refalloc": ("block size (bytes)", "time per batch (µs)",
                 "refalloc: time per batch against block size, log-log; a batch allocates 16 MiB / block size "
                 "blocks (at least 16, at most 65536), writes every page and frees them all"),
}


def cost_vs_size(data, out_dir, formats, areas=SIZE_AREAS):
    """Per area: time per call against size, log-log, one panel per primitive, one line per run."""
    out = []
    for area in areas:
        ops = _ops(data.benches, area)
        # Derived variants (re-touch, cycle) are drawn elsewhere when the base operation is present.
        ops = [o for o in ops if _n_sizes(data.benches, area, o) >= 2 and
               not (o.endswith(("_retouch", "_cycle")) and o.rsplit("_", 1)[0] in ops)]
        if ops:
            out.append(_cost_vs_size_area(data, out_dir, formats, area, ops[:12]))
    return out


def _n_sizes(bpr, area, op):
    return len({b.arg for benches in bpr for b in benches.values()
                if b.area == area and b.op == op and b.arg and b.times and not b.skipped})


def _cost_vs_size_area(data, out_dir, formats, area, ops):
    style.use()
    ncols = min(3, len(ops))
    nrows = (len(ops) + ncols - 1) // ncols
    width = style.COLUMN_IN if ncols == 1 else style.DOUBLE_IN
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 0.4 + 1.9 * nrows), squeeze=False)
    for k, op in enumerate(ops):
        ax = axes[k // ncols][k % ncols]
        sizes = set()
        for i, benches in enumerate(data.benches):
            pts = sorted((b.arg, _spread([t / 1e3 for t in b.times])) for b in benches.values()
                         if b.area == area and b.op == op and b.arg and b.times and not b.skipped)
            if not pts:
                continue
            xs = [p[0] for p in pts]
            sizes.update(xs)
            ys = [p[1][0] for p in pts]
            err = np.array([[p[1][1][0] for p in pts], [p[1][1][1] for p in pts]])
            ax.errorbar(xs, ys, yerr=err, color=style.colour(i), marker=style.marker(i),
                        label=data.labels[i], elinewidth=0.6)
        _size_axes(ax, sizes)
        ax.set_title("%s/%s" % (area, op))
        xlabel, ylabel, _ = AXES.get(area, ("size (bytes)", "time per call (µs)", None))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    for k in range(len(ops), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    if len(data.labels) > 1:  # one run needs no legend: the caption names it
        axes[0][0].legend(loc="upper left")
    name = "size_%s" % area
    what = AXES.get(area, (None, None, "%s: time per call against size, log-log" % area))[2]
    cap = "%s (median over repetitions, error bars: interquartile range), one line per run." % what
    return Figure(name, "%s: cost against size" % area, cap, style.save(fig, out_dir, name, formats))


def fork_latency(data, out_dir, formats):
    """fork latency against the parent's memory size: a panel per area (fork, fork_wait), a line per run and variant."""
    areas = [a for a in ("fork", "fork_wait") if _ops(data.benches, a, lambda b: b.arg)]
    if not areas:
        return []
    style.use()
    fig, axes = plt.subplots(1, len(areas), figsize=(style.COLUMN_IN * len(areas), 2.6), squeeze=False)
    for ax, area in zip(axes[0], areas):
        # "fragmented" is swept over VMA counts, not bytes: it belongs in the cost tables, not on this axis.
        ops = [o for o in _ops(data.benches, area, lambda b: b.arg) if o != "fragmented"]
        _fork_panel(ax, data, area, ops)
    cap = ("Latency of fork%s against the parent's memory size (median, interquartile range): clean = mapped and "
           "read but never written, dirty = written, thp = huge pages; one colour per run. The fragmented-layout "
           "and spawn baselines are in the cost tables." % (" and of fork+wait" if len(areas) > 1 else ""))
    return [Figure("fork_latency", "fork latency against memory size", cap,
                   style.save(fig, out_dir, "fork_latency", formats))]


def _fork_panel(ax, data, area, ops):
    from matplotlib.lines import Line2D
    sizes = set()
    nonzero = [b.arg for benches in data.benches for b in benches.values()
               if b.area == area and b.op in ops and b.arg and b.times and not b.skipped]
    # 0 bytes cannot sit on a log axis: draw it one step left of the smallest size, labelled "0".
    zero_x = min(nonzero) / 16 if nonzero else 1
    for i, benches in enumerate(data.benches):
        for j, op in enumerate(ops):
            pts = sorted((b.arg or zero_x, _spread([t / 1e6 for t in b.times])) for b in benches.values()
                         if b.area == area and b.op == op and b.arg is not None and b.times and not b.skipped)
            if not pts:
                continue
            sizes.update(p[0] for p in pts)
            ax.errorbar([p[0] for p in pts], [p[1][0] for p in pts],
                        yerr=np.array([[p[1][1][0] for p in pts], [p[1][1][1] for p in pts]]),
                        color=style.colour(i), marker=style.marker(j),
                        linestyle=style.LINESTYLES[j % len(style.LINESTYLES)], elinewidth=0.6)
    _size_axes(ax, sizes)
    if zero_x in sizes:
        ticks = sorted(sizes)
        ax.set_xticks(ticks)
        ax.set_xticklabels(["0" if t == zero_x else style.size_label(t) for t in ticks])
    ax.set_xlabel("parent memory (bytes), %s" % area)
    ax.set_ylabel("latency (ms)")
    variants = [Line2D([], [], color="black", marker=style.marker(j), linestyle=style.LINESTYLES[j % 4], label=op)
                for j, op in enumerate(ops)]
    leg = ax.legend(handles=variants, loc="upper left")
    if len(data.labels) > 1:
        ax.add_artist(leg)
        _legend_runs(ax, data.labels, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, borderaxespad=0.2)


def _tlb_counter(bpr, rows):
    """A TLB-miss counter (dTLB-load-misses ...) that the plotted benchmarks have."""
    for benches in bpr:
        for area, op, size in rows:
            b = _get(benches, area, op, size)
            for k in (b.counters if b else ()):
                if "tlb" in k.lower() and "miss" in k.lower():
                    return k
    return None


def _fault_counter(bpr):
    for name in FAULT_COUNTERS:
        if any(name in b.counters for benches in bpr for b in benches.values()):
            return name
    return None


def counters_per_page(data, out_dir, formats):
    """Time, faults and TLB misses per page, side by side, for benchmarks that count them."""
    fc = _fault_counter(data.benches)
    if fc is None:
        return []
    rows = []
    for area in ("fault", "madvise", "zero", "mmap", "mprotect", "mremap", "tlb"):
        ops = [o for o in _ops(data.benches, area, lambda b: b.per_page_times() and b.per_page_counter(fc))
               if not o.endswith("_cycle")]
        rows += [(area, op, _pick_size(data.benches, area, [op])) for op in ops]
    if not rows:
        return []
    rows = rows[:20]
    tc = _tlb_counter(data.benches, rows)
    metrics = [("time per page (ns)", lambda b: b.per_page_times()),
               ("%s per page" % fc, lambda b: b.per_page_counter(fc))]
    if tc:
        metrics.append(("%s per page" % tc, lambda b: b.per_page_counter(tc)))
    style.use()
    fig, axes = plt.subplots(1, len(metrics), figsize=(style.DOUBLE_IN, 0.8 + 0.28 * len(rows) * max(1, len(data.labels) / 2)),
                             sharey=True)
    y = np.arange(len(rows))
    h = 0.8 / len(data.labels)
    for ax, (title, get) in zip(axes, metrics):
        ax.set_xlabel(title)
        ax.grid(axis="y", visible=False)
        for i, benches in enumerate(data.benches):
            for r, (area, op, size) in enumerate(rows):
                b = _get(benches, area, op, size)
                vals = get(b) if b is not None else []
                if not vals:
                    continue
                med, err = _spread(vals)
                ax.barh(y[r] - 0.4 + h * (i + 0.5), med, h, color=style.colour(i), edgecolor="black",
                        linewidth=0.3, xerr=np.array([[err[0]], [err[1]]]), error_kw={"elinewidth": 0.6})
    axes[0].set_yticks(y)
    # tlb's argument counts pages, not bytes.
    axes[0].set_yticklabels(["%s/%s/%s" % (a, o, "%d pages" % s if a == "tlb" else style.size_label(s))
                             for a, o, s in rows])
    axes[0].invert_yaxis()
    _legend_runs(axes[-1], data.labels, loc="lower right")
    cap = ("Per page: time and %s%s, for the benchmarks that count them (median, interquartile range)."
           % (fc, " and " + tc if tc else "; no TLB-miss counter was available in these runs (%s)" % _why_no_tlb(data)))
    return [Figure("counters_per_page", "faults and TLB misses per page", cap,
                   style.save(fig, out_dir, "counters_per_page", formats))]


def _skipped(data, area):
    """'op (reason)' for the benchmarks of an area that some run skipped."""
    return sorted({"%s (%s)" % (b.op, b.skipped.strip(": ")) for benches in data.benches for b in benches.values()
                   if b.area == area and b.skipped and not b.op.endswith(("_retouch", "_cycle"))})


def _why_no_tlb(data):
    for run in data.runs:
        why = ((run.perf or {}).get("context") or {}).get("counters_unavailable") or {}
        for k, v in why.items():
            if "tlb" in k.lower():
                return "%s: %s" % (k, v)
    return "not requested"


def pattern_init(data, out_dir, formats):
    """Pattern initialisation: time per call and RSS per method."""
    ops = _ops(data.benches, "pattern")
    if not ops:
        return []
    size = _pick_size(data.benches, "pattern", ops)
    rss_key = next((k for benches in data.benches for b in benches.values() if b.area == "pattern"
                    for k in b.counters if "rss" in k.lower()), None)
    style.use()
    fig, axes = plt.subplots(1, 2 if rss_key else 1, figsize=(style.DOUBLE_IN if rss_key else style.COLUMN_IN, 2.4),
                             squeeze=False)
    n = len(data.labels)
    x = np.arange(len(ops))
    per_page = all(b.per_page_times() for benches in data.benches for b in benches.values()
                   if b.area == "pattern" and b.times and not b.skipped)
    panels = [("cost per page (ns)", lambda b: b.per_page_times()) if per_page else
              ("time per call (µs)", lambda b: [t / 1e3 for t in b.times])]
    if rss_key:
        panels.append(("RSS growth (MiB)" if rss_key == "rss_bytes" else "%s (MiB)" % rss_key, lambda b: [v / (1 << 20) for v in b.counters.get(rss_key, [])]))
    for ax, (label, get) in zip(axes[0], panels):
        for i, benches in enumerate(data.benches):
            for j, op in enumerate(ops):
                b = _get(benches, "pattern", op, size) or next(
                    (c for c in benches.values() if c.area == "pattern" and c.op == op and c.times), None)
                vals = get(b) if b is not None else []
                if vals:
                    med, err = _spread(vals)
                    ax.bar(x[j] - 0.4 + 0.8 / n * (i + 0.5), med, 0.8 / n, color=style.colour(i),
                           edgecolor="black", linewidth=0.3, yerr=np.array([[err[0]], [err[1]]]))
        ax.set_xticks(x)
        ax.set_xticklabels([o.replace("_", "\n") for o in ops])
        ax.set_ylabel(label)
        ax.set_xlabel("method and access")
        ax.grid(axis="x", visible=False)
    _legend_runs(axes[0][0], data.labels, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, borderaxespad=0.2)
    skipped = _skipped(data, "pattern")
    cap = "Initialising memory to a pattern%s: time%s per method (median, interquartile range)%s." % (
        " (%s)" % style.size_label(size) if size else "", " and resident memory" if rss_key else "",
        "; not measured: " + "; ".join(skipped) if skipped else "")
    return [Figure("pattern_init", "pattern initialisation", cap, style.save(fig, out_dir, "pattern_init", formats))]


KINDS = ("private_anon", "shared_anon", "private_file", "shared_file", "thp", "")


def behaviour_heatmap(data, out_dir, formats, max_rows=40, max_panels=4):
    """The behaviour matrix as a heat map: few probes give a probe x run grid; many give, per run,
    a probe x mapping-kind grid, or with many runs a probe x run grid of each probe's variants.
    Rows that differ between runs are marked."""
    if not data.matrix.rows:
        return []
    style.use()
    if len(data.matrix.rows) <= max_rows:
        fig, how = _heatmap_by_probe(data), "per probe and run"
    elif len(data.runs) > max_panels:
        fig, how = _heatmap_by_family(data), ("per probe (rows) and run (columns); a probe with variants (mapping "
                                              "kinds, policies, modes) shows their most severe outcome")
    else:
        fig, how = _heatmap_by_kind(data), ("per probe (rows), mapping kind (columns) and run (panels); probes "
                                            "with other variants (policies, modes) show their most severe outcome "
                                            "in the (plain) column")
    cap = "Outcome of each conformance probe %s; ▶ marks probes whose outcome or observation differs between runs." % how
    return [Figure("behaviour_matrix", "behaviour matrix", cap, style.save(fig, out_dir, "behaviour_matrix", formats))]


def _status_grid(ax, grid, xlabels, ylabels):
    from matplotlib.colors import ListedColormap
    codes = list(style.STATUS_COLOURS)
    cmap = ListedColormap([style.STATUS_COLOURS[c] for c in codes])
    ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=len(codes) - 0.5, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(xlabels)))
    ax.set_xticklabels(xlabels, rotation=90 if max(map(len, xlabels)) > 6 else 0)
    ax.set_yticks(range(len(ylabels)))
    ax.set_yticklabels(ylabels, fontsize=5.5)
    ax.grid(False)
    for sp in ax.spines.values():
        sp.set_visible(False)
    ax.set_xticks(np.arange(-0.5, len(xlabels), 1), minor=True)
    ax.set_yticks(np.arange(-0.5, len(ylabels), 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.8)
    ax.tick_params(which="both", length=0)


def _status_legend(fig, ax, grid):
    codes = list(style.STATUS_COLOURS)
    used = sorted({codes[v] for v in np.asarray(grid).flat}, key=codes.index)
    ax.legend(handles=[Patch(facecolor=style.STATUS_COLOURS[c], edgecolor="#888888", linewidth=0.3, label=c)
                       for c in used], loc="upper left", bbox_to_anchor=(1.0, 1.0), title="outcome", title_fontsize=7)


def _heatmap_by_probe(data):
    rows = data.matrix.rows
    codes = list(style.STATUS_COLOURS)
    grid = np.array([[codes.index(c["status"] if c else "absent") for c in r.cells] for r in rows])
    n = len(data.labels)
    # Run labels longer than 6 characters stand on end below the grid: the figure makes room for them.
    longest = max(map(len, data.labels))
    below = 0.04 * longest if longest > 6 else 0.0
    fig, ax = plt.subplots(figsize=(min(style.DOUBLE_IN, 2.8 + 0.7 * n), 1.0 + 0.13 * len(rows) + below))
    _status_grid(ax, grid, data.labels, [("▶ " if r.differs else "") + r.id for r in rows])
    ax.set_xlabel("run")
    _status_legend(fig, ax, grid)
    return fig


def _fam_kind(probe_id):
    """(row, column): a mapping kind is a column; other variants (a policy, a mode) share the "(plain)" cell."""
    fam, _, kind = probe_id.partition("/")
    return (fam, kind) if kind in KINDS else (fam, "")


# When variants share a cell, it shows the most severe outcome among them.
SEVERITY = ("fail", "error", "timeout", "differs", "xfail", "pass", "observed", "skip", "absent")


def _families(rows):
    """Probe families in order, and those with a row that differs between runs."""
    fams, differs = [], set()
    for r in rows:
        fam, _ = _fam_kind(r.id)
        if fam not in fams:
            fams.append(fam)
        if r.differs:
            differs.add(fam)
    return fams, differs


def _most_severe(rows, run, key):
    """{key(row id): status code}: per cell the most severe outcome of the rows it gathers, in one run."""
    codes = list(style.STATUS_COLOURS)
    cell = {}
    for r in rows:
        c = r.cells[run]
        status = c["status"] if c else "absent"
        prev = cell.get(key(r.id))
        if prev is None or SEVERITY.index(status) < SEVERITY.index(codes[prev]):
            cell[key(r.id)] = codes.index(status)
    return cell


def _heatmap_by_family(data):
    codes = list(style.STATUS_COLOURS)
    fams, differs = _families(data.matrix.rows)
    cells = [_most_severe(data.matrix.rows, i, lambda pid: _fam_kind(pid)[0]) for i in range(len(data.runs))]
    grid = np.array([[c.get(f, codes.index("absent")) for c in cells] for f in fams])
    longest = max(map(len, data.labels))
    fig, ax = plt.subplots(figsize=(min(style.DOUBLE_IN, 3.0 + 0.22 * len(data.runs)),
                                    1.0 + 0.1 * len(fams) + 0.04 * longest))
    _status_grid(ax, grid, data.labels, [("▶ " if f in differs else "") + f for f in fams])
    ax.set_xlabel("run")
    _status_legend(fig, ax, grid)
    return fig


def _heatmap_by_kind(data):
    codes = list(style.STATUS_COLOURS)
    fams, differs = _families(data.matrix.rows)
    kinds = [k for k in KINDS if any(_fam_kind(r.id)[1] == k for r in data.matrix.rows)]
    n = len(data.labels)
    fig, axes = plt.subplots(1, n, figsize=(style.COLUMN_IN if n == 1 else style.DOUBLE_IN, 1.2 + 0.1 * len(fams)),
                             squeeze=False, sharey=True)
    for i, ax in enumerate(axes[0]):
        cell = _most_severe(data.matrix.rows, i, _fam_kind)
        grid = np.array([[cell.get((f, k), codes.index("absent")) for k in kinds] for f in fams])
        _status_grid(ax, grid, [k.replace("_", " ") or "(plain)" for k in kinds],
                     [("▶ " if f in differs else "") + f for f in fams])
        if n > 1:
            ax.set_title(data.labels[i])
    _status_legend(fig, axes[0][-1], [codes.index(c["status"]) if c else codes.index("absent")
                                      for r in data.matrix.rows for c in r.cells])
    return fig


ALL = (behaviour_heatmap, madvise_cost, cost_vs_size, fork_latency, counters_per_page, pattern_init)
