"""The report as one self-contained HTML file: inline style, figures as data: URIs."""
import os
import re

from . import model, stats
from .report import partial_note, cost_cell_parts, embed_png, esc, run_rows

CSS = """
body{font-family:system-ui,sans-serif;font-size:14px;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0;font-size:12px}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f2f2f2}tr.differs td,tr.differs th{background:#fff4d6}
td.pass{color:#006b4f}td.fail,td.error,td.timeout{color:#b03000;font-weight:bold}
td.skip{color:#777}td.xfail{color:#2c6e9b}td.differs{color:#8a5a00}td.observed{color:#555}td.absent{color:#aaa}
.sem{display:block;color:#444;font-size:11px}.meas{display:block;color:#999;font-size:10px}.sig{color:#b03000;font-weight:bold}
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:12px;color:#444}
.ratio{display:block}.ratio.slower{color:#b03000;font-weight:bold}.ratio.faster{color:#006b4f;font-weight:bold}
tr.area th{background:#e4e9f2;text-align:left}.problems{color:#b03000}.note{color:#555}
"""
# Lets a test (or a reader) see that every embedded figure decoded.
CHECK_JS = """
window.addEventListener('load',function(){var imgs=document.querySelectorAll('figure img'),ok=0;
for(var i=0;i<imgs.length;i++){if(imgs[i].complete&&imgs[i].naturalWidth>0)ok++;}
document.body.setAttribute('data-figures-loaded',ok);document.body.setAttribute('data-figures',imgs.length);});
"""


def _table(head, rows):
    out = ["<table><thead><tr>%s</tr></thead><tbody>" % "".join("<th>%s</th>" % esc(h) for h in head)]
    out += rows
    out.append("</tbody></table>")
    return "\n".join(out)


def _runs(data):
    rows = ["<tr><td>%s</td><td><code>%s</code>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td></tr>" % (
        esc(label), esc(rid), mark, esc(system), esc(state), esc(conf), n)
        for label, rid, mark, system, state, conf, n in run_rows(data)]
    out = ["<h2>Runs</h2>", _table(["", "run", "system", "state", "conformance", "benchmarks"], rows)]
    problems = [p for r in data.runs for p in r.problems]
    if problems:
        out.append("<ul class=problems>%s</ul>" % "".join("<li>%s</li>" % esc(p) for p in problems))
    return out


def _matrix(data):
    m = data.matrix
    out = ["<h2 id=matrix>Behaviour matrix</h2>"]
    if not m.rows:
        return out + ["<p class=note>No conformance results.</p>"]
    head = ["probe"] + data.labels
    if len(data.runs) > 1:
        out.append("<p>%d of %d probes differ between runs (highlighted)%s.</p>" % (m.n_differ, len(m.rows),
                                                                                   esc(partial_note(m))))
        if m.n_differ:
            out += ["<h3>Probes that differ</h3>", _table(head, [_matrix_row(r) for r in m.rows if r.differs]),
                    "<details><summary>All %d probes</summary>" % len(m.rows)]
    out.append("<div class=matrix>" + _table(head, [_matrix_row(r) for r in m.rows]) + "</div>")
    if len(data.runs) > 1 and m.n_differ:
        out.append("</details>")
    return out


def _matrix_row(r):
    cells = []
    for c in r.cells:
        if c is None:
            cells.append("<td class=absent>—</td>")
            continue
        extra = c["semantics"] or (c["reason"] if c["status"] != "pass" else "")
        meas = "<span class=meas>measured: %s</span>" % esc(c["measured"]) if c["measured"] else ""
        cells.append("<td class=%s>%s%s%s</td>" % (c["status"], esc(c["outcome"]),
                                                    "<span class=sem>%s</span>" % esc(extra) if extra else "", meas))
    return "<tr class='%s'><th>%s</th>%s</tr>" % ("differs" if r.differs else "", esc(r.id), "".join(cells))


def _findings(data):
    out = ["<h2 id=findings>Findings</h2>", "<p class=note>Each fail on each system: the probe, what its contract "
           "says, what the system did, and a reading (triaged in results/triage.json, else from the verdict "
           "class).</p>"]
    for s in data.findings:
        out.append("<h3>%s <code>%s</code></h3>" % (esc(s.target), esc(s.run_id)))
        if s.others:
            out.append("<p class=note>Not judged: %s (harness or environment; see the matrix).</p>" % esc(
                ", ".join("%d %s" % (n, k) for k, n in sorted(s.others.items()))))
        if not s.items:
            out.append("<p>No fails.</p>")
        else:
            rows = ["<tr><th>%s</th><td>%s</td><td>%s</td><td>%s%s</td></tr>" % (
                esc(f.probe), esc(f.contract or "—"), esc(f.did), esc(f.reading),
                "" if f.verdict == "untriaged" else " <b>(%s)</b>" % esc(f.verdict)) for f in s.items]
            out.append(_table(["probe", "contract", "what the system did", "reading"], rows))
        if s.differs:
            out.append("<p class=note>Behaviours that differ (%d): what Linux usually does and this system does "
                       "not; no contract promises them, so they are not failures.</p>" % len(s.differs))
            rows = ["<tr><th>%s</th><td>%s</td><td>%s</td></tr>" % (esc(f.probe), esc(f.contract or "—"), esc(f.did))
                    for f in s.differs]
            out.append(_table(["probe", "expected behaviour", "what the system did"], rows))
    return out


def _costs(data):
    out = ["<h2 id=cost>Cost</h2>"]
    if not data.costs:
        return out + ["<p class=note>No benchmark results.</p>"]
    if len(data.runs) > 1:
        out.append("<p>Median time per iteration, cv and n; ratio against <b>%s</b> with a 95%% bootstrap interval; "
                   "<span class=sig>*</span> p&lt;0.05, <span class=sig>**</span> p&lt;0.01 (%s).</p>"
                   % (esc(data.labels[data.baseline]), esc(stats.test_name())))
    what = {}
    for r in data.runs:
        what.update(model.descriptions(r))
    rows, area = [], None
    for row in data.costs:
        if row.area != area:
            area = row.area
            rows.append("<tr class=area><th colspan=%d>%s</th></tr>" % (len(data.labels) + 1, esc(area)))
        sig = any(stats.mark(c.p) for c in row.cells)
        family = re.sub(r"/\d+$", "", row.key)
        rows.append("<tr class='%s'><th title='%s'>%s</th>%s</tr>" % (
            "differs" if sig else "", esc(what.get(family, "")), esc(row.key), "".join(_cost_td(c) for c in row.cells)))
    out.append(_table(["benchmark"] + data.labels, rows))
    out.append("<p class=note>Hover a benchmark for what it measures and from which state. A sample that is not "
               "one clean mode says so after its cv: its modes or outliers and the counters that set them apart.</p>")
    for label, r in zip(data.labels, data.runs):
        missing = model.not_run(r)
        if missing:
            out.append("<p class=note>%s: %d benchmark(s) did not run (interrupted; <code>pagelab run --resume</code> "
                       "finishes it): %s</p>" % (esc(label), len(missing), esc(", ".join(missing))))
    if len(data.runs) > 1:
        gm_rows = ["<tr><th>%s</th>%s</tr>" % (esc(a), "".join(
            "<td>%s</td>" % ("baseline" if i == data.baseline else ("×%.3f" % g if g else "–")) for i, g in enumerate(gm)))
            for a, gm in sorted(data.geomeans.items())]
        out += ["<p>Geometric mean of the ratios per area:</p>", _table(["area"] + data.labels, gm_rows)]
    return out


def _cost_td(c):
    base, ratio = cost_cell_parts(c)
    if not ratio:
        return "<td>%s</td>" % esc(base)
    cls = ("slower" if c.ratio > 1 else "faster") if stats.mark(c.p) else "same"
    return "<td>%s<span class='ratio %s'>%s</span></td>" % (esc(base), cls, esc(ratio))


def _env(data):
    rows = ["<tr class='%s'><th>%s</th>%s</tr>" % ("differs" if d else "", esc(k), "".join(
        "<td>%s</td>" % esc(v) for v in vals)) for k, vals, d in data.env]
    out = ["<h2 id=env>Environment</h2>", _table([""] + data.labels, rows)]
    if data.caps:
        rows = ["<tr class='%s'><th>%s</th>%s</tr>" % ("differs" if d else "", esc(op), "".join(
            "<td>%s</td>" % esc(c) for c in cells)) for op, cells, d in data.caps]
        out += ["<p>Capabilities (implementation and system call):</p>", _table(["operation"] + data.labels, rows)]
    return out


def _figures(figs):
    out = ["<h2 id=figures>Figures</h2>"]
    for f in figs:
        if "png" not in f.files:
            continue
        others = " ".join("<a href='figures/%s'>%s</a>" % (esc(os.path.basename(p)), esc(fmt))
                          for fmt, p in f.files.items() if fmt != "png")
        out.append("<figure id='fig-%s'><img alt='%s' src='%s'><figcaption>%s %s</figcaption></figure>" % (
            esc(f.name), esc(f.title), embed_png(f.files["png"]), esc(f.caption), others))
    return out


def render(data, figs, title, when):
    body = ["<h1>%s</h1>" % esc(title), "<p class=note>Generated %s by pagelab.</p>" % esc(when)]
    body += _runs(data) + _findings(data) + _matrix(data) + _costs(data) + _env(data) + _figures(figs)
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset='utf-8'><title>%s</title><style>%s</style>"
            "<script>%s</script></head><body>\n%s\n</body></html>\n" % (esc(title), CSS, CHECK_JS, "\n".join(body)))
