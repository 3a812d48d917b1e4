"""Reports in Markdown and as one self-contained HTML file (figures embedded)."""
import base64
import datetime
import html
import os

from . import findings, model, stats
from .analysis import Data
from .errors import warn
from .fsutil import atomic_write_json, atomic_write_text

FIGURE_FORMATS = ("pdf", "png")


def fmt_ns(ns):
    return "–" if ns is None else model.fmt_ns(ns)


def fmt_ratio(c):
    if c.ratio is None:
        return ""
    ci = " [%.2f, %.2f]" % (c.lo, c.hi) if c.lo is not None else ""
    return "×%.2f%s%s" % (c.ratio, ci, stats.mark(c.p))


def run_state(run):
    m = run.manifest
    if not m:
        return "no manifest"
    parts = ", ".join("%s: %s" % (k, v.get("status")) for k, v in (m.get("parts") or {}).items())
    return "%s (%s)" % ("complete" if m.get("complete") else "incomplete: " + str(m.get("state")), parts)


def system_summary(run):
    """'ppc64le, Linux 6.1.0-50-powerpc64le, 64 KiB pages, little-endian': the system the run saw."""
    env = run.env()
    ps = env.get("page_size")
    parts = [env.get("arch"), " ".join(str(x) for x in (env.get("os"), env.get("kernel")) if x),
             "%d KiB pages" % (ps // 1024) if isinstance(ps, int) and ps >= 1024 else None,
             "%s-endian" % env["byte_order"] if env.get("byte_order") else None]
    return ", ".join(p for p in parts if p) or "–"


def summary_text(summ):
    """'309 pass, 13 skip (10 unsupported, 3 prerequisite)' from a conformance summary."""
    classes = ", ".join("%d %s" % (v, k[5:]) for k, v in summ.items() if k.startswith("skip_") and v)
    parts = ["%s %s" % (v, k) + (" (%s)" % classes if k == "skip" and classes else "")
             for k, v in summ.items() if k != "total" and not k.startswith("skip_") and v]
    return ", ".join(parts) or "–"


def run_rows(data):
    """(label, run id with baseline mark, system, state, conformance summary, benchmark count) per run."""
    rows = []
    for i, r in enumerate(data.runs):
        summ = (r.conformance or {}).get("summary") or {}
        conf = summary_text(summ)
        mark = " (baseline)" if i == data.baseline and len(data.runs) > 1 else ""
        rows.append((data.labels[i], r.id, mark, system_summary(r), run_state(r), conf, len(data.benches[i])))
    return rows


def make_figures(data, fig_dir, formats=FIGURE_FORMATS):
    """Every figure the runs allow, into fig_dir; a figure that fails is reported and skipped."""
    from plots import figures
    os.makedirs(fig_dir, exist_ok=True)
    out = []
    for fn in figures.ALL:
        try:
            out += fn(data, fig_dir, formats)
        except (ValueError, KeyError, TypeError, IndexError, ZeroDivisionError) as e:
            warn("figure %s failed: %s: %s" % (fn.__name__, type(e).__name__, e))
    return out


def _cell_md(c):
    if c is None:
        return "—"
    s = "**%s**" % c["outcome"].upper() if c["status"] != "pass" else "pass"
    extra = c["semantics"] or (c["reason"] if c["status"] != "pass" else "")
    if c["measured"]:
        extra += " _(measured: %s)_" % c["measured"]
    return (s + (": " + extra if extra else "")).replace("|", "\\|")


def markdown(data, figures, title):
    L = ["# %s" % title, "", "Generated %s by `pagelab`." % _now(), "", "## Runs", "",
         "| | run | system | state | conformance | benchmarks |", "|---|---|---|---|---|---|"]
    L += ["| %s | `%s`%s | %s | %s | %s | %d |" % row for row in run_rows(data)]
    problems = [p for r in data.runs for p in r.problems]
    if problems:
        L += ["", "Problems found while reading:", ""] + ["- %s" % p for p in problems]
    L += findings.markdown(data.findings) + _matrix_md(data) + _costs_md(data) + _env_md(data)
    if figures:
        L += ["", "## Figures", ""]
        for f in figures:
            if "png" in f.files:
                L += ["![%s](figures/%s)" % (f.title, os.path.basename(f.files["png"])), "", "*%s*" % f.caption, ""]
    return "\n".join(L) + "\n"


def _matrix_md(data):
    m = data.matrix
    if not m.rows:
        return ["", "## Behaviour matrix", "", "No conformance results."]
    L = ["", "## Behaviour matrix", ""]
    head = ["| probe | " + " | ".join(data.labels) + " |", "|---" * (len(data.labels) + 1) + "|"]
    if len(data.runs) > 1:
        L += ["%d of %d probes differ between runs (marked ▶)%s." % (m.n_differ, len(m.rows), partial_note(m)), ""]
        if m.n_differ:
            L += ["### Probes that differ", ""] + head + [_row_md(r) for r in m.rows if r.differs]
            L += ["", "### All probes", ""]
    return L + head + [_row_md(r) for r in m.rows]


def partial_note(m):
    """How many probes only some runs have (— in the others: a system that does not build them)."""
    return "; %d are in some runs only (—)" % m.n_partial if m.n_partial else ""


def _row_md(r):
    return "| %s%s | %s |" % ("▶ " if r.differs else "", r.id, " | ".join(_cell_md(c) for c in r.cells))


def _costs_md(data):
    if not data.costs:
        return ["", "## Cost", "", "No benchmark results."]
    base = data.labels[data.baseline]
    L = ["", "## Cost", "", "Median time per iteration, cv and n per run%s. A sample that is not one clean "
         "mode says so: its modes (repetitions at each time) or outliers, and the counters that set them apart." % (
             "; ratio against %s with a 95%% bootstrap interval; * p<0.05, ** p<0.01 (%s)" % (base, stats.test_name())
             if len(data.runs) > 1 else "")]
    L += ["", "| benchmark | " + " | ".join(data.labels) + " |", "|---" * (len(data.labels) + 1) + "|"]
    for row in data.costs:
        L.append("| %s | %s |" % (row.key, " | ".join(_cost_cell_text(c) for c in row.cells)))
    L += _not_run_md(data) + _descriptions_md(data)
    if len(data.runs) > 1:
        L += ["", "Geometric mean of the ratios per area:", "",
              "| area | " + " | ".join(data.labels) + " |", "|---" * (len(data.labels) + 1) + "|"]
        for area, gm in sorted(data.geomeans.items()):
            L.append("| %s | %s |" % (area, " | ".join("baseline" if i == data.baseline else
                                                         ("×%.3f" % g if g else "–") for i, g in enumerate(gm))))
    return L


def _not_run_md(data):
    L = []
    for label, r in zip(data.labels, data.runs):
        missing = model.not_run(r)
        if missing:
            L += ["", "%s: %d benchmark(s) did not run (the run was interrupted; `pagelab run --resume` finishes "
                      "it): %s" % (label, len(missing), ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))]
    return L


def _descriptions_md(data):
    what = {}
    for r in data.runs:
        what.update(model.descriptions(r))
    if not what:
        return []
    return ["", "What each benchmark measures, and from which state:", "", "| benchmark | measures |", "|---|---|"] + [
        "| %s | %s |" % (k, v.replace("|", "/")) for k, v in sorted(what.items())]


def _cost_cell_text(c):
    base, ratio = cost_cell_parts(c)
    return base + ("; " + ratio if ratio else "")


def cost_cell_parts(c):
    """(median, cv, n and per-page text; ratio text) of one cost cell."""
    return _cost_base_text(c), fmt_ratio(c)


def _cost_base_text(c):
    if c.bench is None:
        return "missing"
    if c.bench.skipped:
        return "skipped: " + c.bench.skipped.replace("|", "/")
    if c.median is None:
        return "no data"
    s = "%s (cv %s, n=%d)" % (fmt_ns(c.median), "%.1f%%" % (100 * c.cv) if c.cv is not None else "–", c.n)
    if c.per_page is not None:
        s += ", %s/page" % fmt_ns(c.per_page)
    shape = c.bench.shape_note()
    return s + ("; " + shape.replace("|", "/") if shape else "")


def _env_md(data):
    L = ["", "## Environment", "", "| | " + " | ".join(data.labels) + " |", "|---" * (len(data.labels) + 1) + "|"]
    for k, vals, diff in data.env:
        L.append("| %s%s | %s |" % ("▶ " if diff else "", k, " | ".join(v.replace("|", "/") for v in vals)))
    if data.caps:
        L += ["", "Capabilities (implementation and system call):", "",
              "| operation | " + " | ".join(data.labels) + " |", "|---" * (len(data.labels) + 1) + "|"]
        for op, cells, diff in data.caps:
            L.append("| %s%s | %s |" % ("▶ " if diff else "", op, " | ".join(cells)))
    return L


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def write_report(runs, out_dir, title, baseline=0, formats=FIGURE_FORMATS):
    """Figures, report.md and report.html in out_dir; returns the HTML path."""
    data = Data(runs, baseline)
    figs = []
    if formats:
        # The reports embed the PNGs.
        formats = tuple(formats) if "png" in formats else tuple(formats) + ("png",)
        figs = make_figures(data, os.path.join(out_dir, "figures"), formats)
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_text(os.path.join(out_dir, "report.md"), markdown(data, figs, title))
    atomic_write_json(os.path.join(out_dir, "findings.json"), findings.to_json(data.findings, _now()))
    from .htmlreport import render
    path = os.path.join(out_dir, "report.html")
    atomic_write_text(path, render(data, figs, title, _now()))
    return path


def embed_png(path):
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")


def esc(s):
    return html.escape(str(s), quote=True)
