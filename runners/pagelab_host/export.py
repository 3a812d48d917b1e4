"""Runs as a table (`pagelab export --csv`) and the regressions `pagelab compare --fail-above` exits on."""
import csv
import io

from . import model, stats
from .analysis import Data

COLUMNS = ("run", "target", "label", "part", "name", "outcome", "class", "reason", "median_ns", "cv", "n",
           "ns_per_page")


def rows(runs):
    """One dict per probe result (part "conformance") and per benchmark instance (part "perf")."""
    out = []
    for run in runs:
        target = ((run.manifest or {}).get("target") or {})
        base = {"run": run.id, "target": target.get("spec", ""), "label": target.get("label", "")}
        for r in (run.conformance or {}).get("results", []):
            out.append(dict(base, part="conformance", name=r.get("id", ""), outcome=r.get("status", ""),
                            **{"class": r.get("class") or "", "reason": r.get("reason") or ""}))
        for key, b in model.benchmarks(run).items():
            row = dict(base, part="perf", name=key)
            if b.skipped:
                row.update(outcome="skipped", reason=b.skipped)
            elif b.times:
                pp, cv = b.per_page_times(), stats.cv(b.times)
                row.update(outcome="measured", median_ns="%.6g" % stats.median(b.times),
                           cv="%.4f" % cv if cv is not None else "", n=len(b.times),
                           ns_per_page="%.6g" % stats.median(pp) if pp else "")
            else:
                row.update(outcome="no data")
            out.append(row)
    return out


def csv_text(runs):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, restval="", lineterminator="\n")
    w.writeheader()
    for r in rows(runs):
        w.writerow(r)
    return buf.getvalue()


def regressions(runs, baseline, pct):
    """'bench: 1.2 µs -> 1.5 µs (+25.0%, ×1.25 [1.20, 1.31]) in RUN' for every benchmark whose median is
    more than pct percent above the baseline's, in any run; worst first. None when no benchmark was
    measured both in the baseline and in another run (nothing to judge: never a "no regression")."""
    data = Data(runs, baseline)
    found, judged = [], 0
    for row in data.costs:
        base = row.cells[baseline]
        for i, c in enumerate(row.cells):
            if i == baseline or c.ratio is None or not base.median:
                continue
            judged += 1
            if (c.ratio - 1.0) * 100.0 > pct:
                ci = " [%.2f, %.2f]" % (c.lo, c.hi) if c.lo is not None else ""
                found.append((c.ratio, "%s: %s -> %s (+%.1f%%, ×%.2f%s%s) in %s" % (
                    row.key, model.fmt_ns(base.median), model.fmt_ns(c.median), (c.ratio - 1.0) * 100.0, c.ratio,
                    ci, stats.mark(c.p), runs[i].id)))
    if not judged:
        return None
    return [text for _, text in sorted(found, key=lambda x: -x[0])]
