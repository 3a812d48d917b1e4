"""Reading run directories: the manifest, the conformance JSON, the perf JSON and the fuzz JSON.

Every problem with a file becomes one line naming the file and the problem;
what is valid is kept so reports work on partial runs.
"""
import json
import os
import re

from . import CONFORMANCE_SCHEMAS, MANIFEST_SCHEMAS
from .errors import UserError

FUZZ_SCHEMA = "pagelab.fuzz/1"  # pagelab-fuzz --json (lib/fuzz/main.c)
# differs: a behaviour (not a contract) the system does not have; observed: a record that asserts
# nothing. Neither is a failure.
STATUSES = ("pass", "fail", "differs", "skip", "xfail", "error", "timeout", "observed")
TIME_UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
# Google Benchmark's own fields; every other numeric field of an entry is a counter.
GB_FIELDS = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type",
    "repetitions", "repetition_index", "threads", "iterations", "real_time",
    "cpu_time", "time_unit", "items_per_second", "bytes_per_second", "label",
    "aggregate_name", "aggregate_unit", "error_occurred", "error_message",
    "skipped", "skip_message", "manual_time",
}


def read_json(path):
    """(object, None) or (None, 'path: problem')."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        return None, "%s: cannot read: %s" % (path, e.strerror)
    except UnicodeDecodeError:
        return None, "%s: not UTF-8 text" % path
    if not text.strip():
        return None, "%s: empty file" % path
    try:
        return json.loads(text), None
    except json.JSONDecodeError as e:
        # The error is on the last line: the file stops in the middle of a value.
        what = "truncated JSON" if "\n" not in text[e.pos:].rstrip() else "invalid JSON"
        return None, "%s: %s (line %d column %d: %s)" % (path, what, e.lineno, e.colno, e.msg)


def check_conformance(doc, path):
    if not isinstance(doc, dict):
        return "%s: not a JSON object" % path
    schema = doc.get("schema")
    if schema not in CONFORMANCE_SCHEMAS:
        return "%s: schema %r is not one of %s" % (path, schema, ", ".join(CONFORMANCE_SCHEMAS))
    if not isinstance(doc.get("results"), list):
        return "%s: no \"results\" list" % path
    for i, r in enumerate(doc["results"]):
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or r.get("status") not in STATUSES:
            return "%s: results[%d] has no id or an unknown status" % (path, i)
    return None


def check_perf(doc, path):
    if not isinstance(doc, dict):
        return "%s: not a JSON object" % path
    if not isinstance(doc.get("context"), dict) or not isinstance(doc.get("benchmarks"), list):
        return "%s: not Google Benchmark JSON (needs \"context\" and \"benchmarks\")" % path
    for i, b in enumerate(doc["benchmarks"]):
        if not isinstance(b, dict) or not isinstance(b.get("name"), str):
            return "%s: benchmarks[%d] has no name" % (path, i)
    return None


def check_fuzz(doc, path):
    if not isinstance(doc, dict):
        return "%s: not a JSON object" % path
    if doc.get("schema") != FUZZ_SCHEMA:
        return "%s: schema %r is not %s" % (path, doc.get("schema"), FUZZ_SCHEMA)
    if not isinstance(doc.get("findings"), list) or not isinstance(doc.get("sequences"), int):
        return "%s: no \"findings\" list or no \"sequences\" count" % path
    for i, f in enumerate(doc["findings"]):
        if not isinstance(f, dict) or not isinstance(f.get("signature"), str) or \
                not isinstance(f.get("minimal"), list):
            return "%s: findings[%d] has no signature or no minimal sequence" % (path, i)
    return None


class Run:
    """One run directory and what could be read from it."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.id = os.path.basename(self.path.rstrip("/"))
        self.label = self.id
        self.manifest = None
        self.conformance = None
        self.perf = None
        self.fuzz = None
        self.env_file = None
        self.problems = []

    @property
    def complete(self):
        return bool(self.manifest and self.manifest.get("complete"))

    def env(self):
        """The target's environment: env.json (runs before targets: the manifest's host_env), then what
        the suite reported from inside the target. The driving host (manifest "host") is never mixed in."""
        env = {}
        if isinstance(self.env_file, dict):
            env.update({k: v for k, v in self.env_file.items() if isinstance(v, (str, int, float, bool))})
        elif self.manifest:
            env.update(self.manifest.get("host_env") or {})
        if self.perf:
            ctx = self.perf.get("context", {})
            env.update({k: v for k, v in ctx.items() if isinstance(v, (str, int, float, bool))})
            env.update({k: ", ".join(map(str, v)) for k, v in ctx.items()
                        if isinstance(v, list) and all(isinstance(x, (str, int, float)) for x in v)})
            if isinstance(ctx.get("counters_unavailable"), dict):
                env["counters_unavailable"] = ", ".join(sorted(ctx["counters_unavailable"])) or "none"
        if self.conformance:
            env.update({k: v for k, v in (self.conformance.get("env") or {}).items()
                        if isinstance(v, (str, int, float, bool))})
        return env

    def page_size(self):
        for src in (self.perf and self.perf.get("context"), self.conformance and self.conformance.get("env")):
            if src and isinstance(src.get("page_size"), int) and src["page_size"] > 0:
                return src["page_size"]
        return 4096


def load_run(path):
    """A Run, or UserError when path is not a run directory at all."""
    if not os.path.exists(path):
        raise UserError("%s: no such file or directory" % path)
    if not os.path.isdir(path):
        raise UserError("%s: not a run directory (expected a directory holding manifest.json, "
                        "conformance.json or perf.json)" % path)
    run = Run(path)
    files = {n: os.path.join(run.path, n) for n in ("manifest.json", "conformance.json", "perf.json", "fuzz.json")}
    if not any(os.path.exists(p) for p in files.values()):
        raise UserError("%s: not a run directory (no manifest.json, conformance.json or perf.json)" % path)
    if os.path.exists(files["manifest.json"]):
        doc, err = read_json(files["manifest.json"])
        if err is None and (not isinstance(doc, dict) or doc.get("schema") not in MANIFEST_SCHEMAS):
            err = "%s: schema %r is not one of %s" % (files["manifest.json"], isinstance(doc, dict) and
                                                      doc.get("schema"), ", ".join(MANIFEST_SCHEMAS))
        run.manifest = doc if err is None else None
        if err:
            run.problems.append(err)
        elif not doc.get("complete"):
            run.problems.append("%s: run is marked incomplete (%s)" % (run.path, doc.get("state", "unknown")))
    if os.path.exists(os.path.join(run.path, "env.json")):
        doc, err = read_json(os.path.join(run.path, "env.json"))
        run.env_file = doc if isinstance(doc, dict) else None
        if err:
            run.problems.append(err)
    for name, check, attr in (("conformance.json", check_conformance, "conformance"),
                              ("perf.json", check_perf, "perf"), ("fuzz.json", check_fuzz, "fuzz")):
        if not os.path.exists(files[name]):
            continue
        doc, err = read_json(files[name])
        err = err or check(doc, files[name])
        if err:
            run.problems.append(err)
        else:
            setattr(run, attr, doc)
    return run


NAME_RE = re.compile(r"^\d+$")


def parse_name(name):
    """'area/op/arg[/modifier...]' -> (area, op, arg or None)."""
    parts = name.split("/")
    area = parts[0]
    op = parts[1] if len(parts) > 1 and not NAME_RE.match(parts[1]) else ""
    arg = None
    for p in parts[1:]:
        if NAME_RE.match(p):
            arg = int(p)
            break
    return area, op, arg


class Bench:
    """All samples of one benchmark instance in one run (times in ns per iteration)."""

    def __init__(self, key, page_size):
        self.key = key
        self.area, self.op, self.arg = parse_name(key)
        self.page_size = page_size
        self.times = []
        self.counters = {}
        self.per_item = False
        self.skipped = None
        self.from_aggregate = False
        self.distribution = None  # the harness's shape of the sample: modes and outliers

    def shape_note(self):
        """'bimodal: 3 at 1.2 µs, 2 at 4.5 µs (minor-faults 512 vs 1)' or 'outliers: ...'; '' for one clean mode."""
        d = self.distribution
        if not isinstance(d, dict) or d.get("shape") in (None, "unimodal"):
            return ""
        parts = []
        for m in d.get("modes") or []:
            why = " (%s)" % m["differs_by"] if m.get("differs_by") else ""
            parts.append("%s at %s%s" % (m.get("count"), fmt_ns(m.get("real_time")), why))
        for o in d.get("outliers") or []:
            parts.append("repetition %s ×%.2f (%s)" % (o.get("repetition"), o.get("ratio_to_main_mode") or 0,
                                                      o.get("differs_by") or "?"))
        return "%s: %s" % (d["shape"], ", ".join(parts))

    def pages(self):
        """Pages one iteration handles, from the "pages" counter of pb_per_page (items are
        pages), or None: the argument is not always a size (refalloc: block size, items are
        operations; tlb: a page or thread count), so it is never used to guess."""
        vals = self.counters.get("pages")
        if not self.per_item or not vals or len(set(vals)) != 1 or vals[0] <= 0:
            return None
        return vals[0]

    def per_page_times(self):
        """ns per page per sample, by the suite's rule, or [] when it does not apply."""
        pages = self.pages()
        if pages:
            return [t / pages for t in self.times]
        return list(self.counters.get("ns_per_page", []))

    def per_page_counter(self, name):
        pages = self.pages()
        vals = self.counters.get(name)
        if not vals or not pages:
            return []
        return [v / pages for v in vals]


def _entry_key(b):
    key = b.get("run_name") or b["name"]
    if b.get("run_type") == "aggregate" and key == b["name"]:
        key = re.sub(r"_(mean|median|stddev|cv)$", "", key)
    return key


def benchmarks(run):
    """{key: Bench} for a run's perf results (empty without perf)."""
    out = {}
    if not run.perf:
        return out
    ps = run.page_size()
    aggregates = {}
    for b in run.perf["benchmarks"]:
        key = _entry_key(b)
        bench = out.setdefault(key, Bench(key, ps))
        if b.get("error_occurred") or b.get("skipped"):
            bench.skipped = b.get("error_message") or b.get("skip_message") or "skipped"
            continue
        if b.get("run_type") == "aggregate":
            aggregates.setdefault(key, {})[b.get("aggregate_name")] = b
            continue
        _add_sample(bench, b)
    for key, aggs in aggregates.items():
        out[key].distribution = (aggs.get("median") or {}).get("distribution")
        # Only aggregates were reported: the median stands for the runs.
        if not out[key].times and ("median" in aggs or "mean" in aggs):
            _add_sample(out[key], aggs.get("median") or aggs["mean"])
            out[key].from_aggregate = True
    return out


def fmt_ns(ns):
    """'1.23 µs' for a time in ns; '?' for none."""
    if not isinstance(ns, (int, float)):
        return "?"
    for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= div:
            return "%.3g %s" % (ns / div, unit)
    return "%.3g ns" % ns


def descriptions(run):
    """{benchmark family: what it measures, from which state}, as the suite described them."""
    ctx = (run.perf or {}).get("context") or {}
    d = ctx.get("benchmark_descriptions")
    return {k: v for k, v in d.items() if isinstance(v, str)} if isinstance(d, dict) else {}


def not_run(run):
    """Benchmark instances the run planned and did not finish (an interrupted run), or []."""
    ctx = (run.perf or {}).get("context") or {}
    names = ctx.get("benchmarks_not_run")
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _add_sample(bench, b):
    unit = TIME_UNIT_NS.get(b.get("time_unit", "ns"), 1.0)
    rt = b.get("real_time")
    if not isinstance(rt, (int, float)):
        return
    bench.times.append(rt * unit)
    if "items_per_second" in b:
        bench.per_item = True
    for k, v in b.items():
        if k not in GB_FIELDS and isinstance(v, (int, float)) and not isinstance(v, bool):
            bench.counters.setdefault(k, []).append(float(v))


def find_runs(results_dir):
    """Run directories under results_dir, oldest first by name."""
    if not os.path.isdir(results_dir):
        return []
    out = []
    for n in sorted(os.listdir(results_dir)):
        p = os.path.join(results_dir, n)
        if os.path.isdir(p) and any(os.path.exists(os.path.join(p, f))
                                    for f in ("manifest.json", "conformance.json", "perf.json")):
            out.append(p)
    return out


TIME_PREFIX = re.compile(r"^\d{8}T\d{4,6}Z-")


def short_labels(runs):
    """The targets' labels when they tell the runs apart; else the run ids without the parts every run
    shares (time, host, kernel, accelerator)."""
    targets = [((r.manifest or {}).get("target") or {}).get("label") for r in runs]
    if len(runs) > 1 and all(targets) and len(set(targets)) == len(targets):
        return targets
    ids = [r.id for r in runs]
    split = [i.split("-") for i in ids]
    if len(runs) < 2:
        return ids
    if len({len(s) for s in split}) == 1:
        keep = [i for i in range(len(split[0])) if len({s[i] for s in split}) > 1]
        labels = ["-".join(s[i] for i in keep) or r for s, r in zip(split, ids)]
        if len(set(labels)) == len(labels):
            return labels
    # Ids of different shapes (e.g. kernels 6.1.0-56-amd64 and 6.12.117+deb12-amd64): drop the
    # leading time stamp, then dash-separated words all runs share at the start or the end.
    toks = [TIME_PREFIX.sub("", i).split("-") for i in ids]
    while all(len(t) > 1 for t in toks) and len({t[0] for t in toks}) == 1:
        toks = [t[1:] for t in toks]
    while all(len(t) > 1 for t in toks) and len({t[-1] for t in toks}) == 1:
        toks = [t[:-1] for t in toks]
    labels = ["-".join(t) for t in toks]
    return labels if len(set(labels)) == len(labels) else ids