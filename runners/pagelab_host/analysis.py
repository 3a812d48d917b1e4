"""What a report shows, computed once from the runs: the behaviour matrix,
the cost tables with ratios and significance, and the environments side by side."""
import os

from . import findings, model, stats
from .errors import warn

ENV_ORDER = ("os", "kernel", "kernel_version", "arch", "hostname", "platform", "page_size", "thp", "thp_defrag",
             "libc", "compiler", "virtualization", "cpu", "cpu_model", "governor", "aslr", "perf_event_paranoid",
             "pagelab_backend", "backend", "counters", "counters_unavailable", "counter_source")


class Row:
    def __init__(self, pid, cells, differs, partial=False):
        self.id = pid
        self.cells = cells
        self.differs = differs
        self.partial = partial  # some runs with results have no such probe (another OS family's interface)


class Matrix:
    def __init__(self, rows, runs_with_conformance):
        self.rows = rows
        self.runs_with_conformance = runs_with_conformance

    @property
    def n_differ(self):
        return sum(1 for r in self.rows if r.differs)

    @property
    def n_partial(self):
        return sum(1 for r in self.rows if r.partial)


def semantics(observed):
    """'contents after: zero; rss: dropped' from a probe's observed facts."""
    if not isinstance(observed, dict):
        return ""
    return "; ".join("%s: %s" % (str(k).replace("_", " "), v) for k, v in observed.items())


def outcome(r):
    """'skip (unsupported)', 'fail (not honoured)', 'pass': the status with its class."""
    cls = r.get("class")
    return "%s (%s)" % (r["status"], str(cls).replace("_", " ")) if cls else r["status"]


def cell(r):
    """A matrix cell. Only the outcome and the semantic observations ("observed") are compared;
    measurements ("measured": addresses, sizes, timings) are shown and never make runs differ.
    Results without "measured" (schema /1) count every observation as semantic."""
    return {"status": r["status"], "class": r.get("class") or "", "outcome": outcome(r),
            "reason": r.get("reason") or "", "semantics": semantics(r.get("observed")),
            "measured": semantics(r.get("measured")), "duration_ms": r.get("duration_ms")}


def behaviour_matrix(runs):
    order, table = [], []
    for run in runs:
        cells = {}
        for r in (run.conformance or {}).get("results", []):
            if r["id"] not in cells and r["id"] not in order:
                order.append(r["id"])
            cells[r["id"]] = cell(r)
        table.append(cells if run.conformance else None)
    with_conf = [t is not None for t in table]
    rows = []
    for pid in order:
        cells = [t.get(pid) if t is not None else None for t in table]
        # A run with no conformance at all does not make every probe "differ", and a probe a system
        # does not build (Windows has no madvise probes, Linux no VirtualAlloc ones) is shown apart.
        present = [c for c, ok in zip(cells, with_conf) if ok and c]
        partial = len(present) < sum(with_conf)
        rows.append(Row(pid, cells, len({(c["status"], c["class"], c["semantics"]) for c in present}) > 1, partial))
    return Matrix(rows, with_conf)


class CostCell:
    def __init__(self, bench):
        self.bench = bench
        self.median = stats.median(bench.times) if bench and bench.times else None
        self.cv = stats.cv(bench.times) if bench and bench.times else None
        self.n = len(bench.times) if bench else 0
        pp = bench.per_page_times() if bench else []
        self.per_page = stats.median(pp) if pp else None
        self.ratio = self.lo = self.hi = self.p = None
        self.test = ""


class CostRow:
    def __init__(self, key, cells):
        self.key = key
        self.area, self.op, self.arg = model.parse_name(key)
        self.cells = cells


def cost_table(runs, benches_per_run, baseline):
    keys = []
    for benches in benches_per_run:
        keys += [k for k in benches if k not in keys]
    rows = []
    for key in keys:
        cells = [CostCell(b.get(key)) for b in benches_per_run]
        base = cells[baseline]
        for i, c in enumerate(cells):
            if i == baseline or not c.median or not base.median:
                continue
            c.ratio, c.lo, c.hi, _ = stats.bootstrap_ratio(base.bench.times, c.bench.times)
            c.p, c.test = stats.significance(base.bench.times, c.bench.times)
        rows.append(CostRow(key, cells))
    _warn_missing(runs, benches_per_run, keys)
    return rows


def _warn_missing(runs, benches_per_run, keys):
    for run, benches in zip(runs, benches_per_run):
        if not run.perf:
            continue
        missing = [k for k in keys if k not in benches]
        path = os.path.join(run.path, "perf.json")
        if len(missing) > 3:
            warn("%s: %d benchmarks other runs have are missing (e.g. %s)" % (path, len(missing), missing[0]))
        for k in missing if len(missing) <= 3 else []:
            warn("%s: benchmark %s is missing (other runs have it)" % (path, k))


def area_geomeans(rows, n_runs, baseline):
    """{area: [geomean ratio per run or None]}."""
    out = {}
    for r in rows:
        out.setdefault(r.area, [[] for _ in range(n_runs)])
        for i, c in enumerate(r.cells):
            if i != baseline and c.ratio:
                out[r.area][i].append(c.ratio)
    return {a: [stats.geomean(v) if v else None for v in per] for a, per in out.items()}


def env_table(runs):
    envs = [r.env() for r in runs]
    keys = [k for k in ENV_ORDER if any(k in e for e in envs)]
    keys += sorted({k for e in envs for k in e} - set(keys))
    rows = []
    for k in keys:
        vals = [e.get(k) for e in envs]
        shown = ["" if v is None else str(v) for v in vals]
        rows.append((k, shown, len(set(shown)) > 1))
    return rows


def capability_table(runs):
    ops = []
    for r in runs:
        for op in ((r.conformance or {}).get("capabilities") or {}):
            if op not in ops:
                ops.append(op)
    rows = []
    for op in ops:
        cells = []
        for r in runs:
            c = ((r.conformance or {}).get("capabilities") or {}).get(op)
            cells.append("%s (%s)" % (c.get("impl", "?"), c.get("via", "")) if isinstance(c, dict) else "")
        rows.append((op, cells, len(set(cells)) > 1))
    return rows


class Data:
    """Everything a report or figure needs about a list of runs."""

    def __init__(self, runs, baseline=0):
        self.runs = runs
        self.labels = model.short_labels(runs)
        self.baseline = baseline
        self.benches = [model.benchmarks(r) for r in runs]
        self.matrix = behaviour_matrix(runs)
        self.costs = cost_table(runs, self.benches, baseline)
        self.geomeans = area_geomeans(self.costs, len(runs), baseline)
        self.env = env_table(runs)
        self.caps = capability_table(runs)
        self.findings = findings.collect(runs, self.labels)
